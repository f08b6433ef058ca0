// The forward kernel family's host entry (kernels/attention_fwd.cuh holds the kernel and its log).
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/fwd_params.h"
#include "lib/attention.h"

namespace bsattn::cuda {

std::vector<std::string> fwd_variants();  // the names; "" (the default) resolves per problem and GPU
// The variant "" runs for this problem on the current GPU: wg-tma-ws-ppf on sm_90 (H100/H200) for block_q
// 128 with block_kv a multiple of 128 and softmax; fa2-v4-w4-h elsewhere for block_q 128 with softmax;
// fa2-w8 otherwise (block_q 64, SiLU). A non-empty variant is returned as is.
std::string resolve_fwd_variant(const FwdParams& p, const std::string& variant);
int device_cc();        // compute capability of the current device, major * 10 + minor
int device_sm_count();  // its multiprocessor count
// wg-tma-ws*: a block of WS_SCHED_WORDS on the current device, its two counters zero: next item, finished
// CTAs, two spare words, then two item slots of 4 words per CTA (at most WS_MAX_CTAS CTAs)
constexpr int WS_MAX_CTAS = 1024, WS_SCHED_WORDS = 4 + 8 * WS_MAX_CTAS;
unsigned* ws_sched_block();
// UsageError when the kernel cannot run this problem (head_dim, block sizes, variant).
void check_fwd_supported(const FwdParams& p, const std::string& variant);
void launch_attention_fwd(const FwdParams& p, ElemType dtype, const std::string& variant, cudaStream_t stream);

// Per-dtype instantiations (attention_fwd_bf16.cu, attention_fwd_f16.cu).
void launch_attention_fwd_bf16(const FwdParams& p, const std::string& variant, cudaStream_t stream);
void launch_attention_fwd_f16(const FwdParams& p, const std::string& variant, cudaStream_t stream);

}  // namespace bsattn::cuda
