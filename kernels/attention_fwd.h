// The forward kernel family's host entry (kernels/attention_fwd.cuh holds the kernel and its log).
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/fwd_params.h"
#include "lib/attention.h"

namespace bsattn::cuda {

std::vector<std::string> fwd_variants();  // the names; "" (the default) resolves per problem and GPU
// The variant "" runs for this problem on the current GPU: wg-tma-ws on sm_90 (H100/H200) for block_q
// 128 with block_kv a multiple of 128 and softmax; fa2-v4-w4-h elsewhere for block_q 128 with softmax;
// fa2-w8 otherwise (block_q 64, SiLU). A non-empty variant is returned as is.
std::string resolve_fwd_variant(const FwdParams& p, const std::string& variant);
int device_cc();        // compute capability of the current device, major * 10 + minor
int device_sm_count();  // its multiprocessor count
// wg-tma-ws: a block of WS_SCHED_WORDS on the current device, its two counters zero: next item, finished
// CTAs, two spare words, then two item slots of 4 words per CTA (at most WS_MAX_CTAS CTAs)
constexpr int WS_MAX_CTAS = 1024, WS_SCHED_WORDS = 4 + 8 * WS_MAX_CTAS;
unsigned* ws_sched_block();
// wg-tma-ws draws its work items (query tiles) in the order FwdParams::item_order gives. The runner
// builds it once per mask: the tile count of every item (ws_item_tile_counts, on the GPU from the row
// CSR; synchronizes `stream`), then ws_draw_order.
int ws_item_count(const FwdParams& p);  // query tiles of block_q rows x heads x sequences
std::vector<int32_t> ws_item_tile_counts(const FwdParams& p, cudaStream_t stream);
// Item numbers in drawing order: within each run of `group` items (group = all, or one head's query
// tiles to keep that head's K/V in L2) the items with more tiles come first; equal counts keep their
// natural order.
std::vector<int32_t> ws_draw_order(const std::vector<int32_t>& counts, int group);
// UsageError when the kernel cannot run this problem (head_dim, block sizes, variant).
void check_fwd_supported(const FwdParams& p, const std::string& variant);
void launch_attention_fwd(const FwdParams& p, ElemType dtype, const std::string& variant, cudaStream_t stream);

// Per-dtype instantiations (attention_fwd_bf16.cu, attention_fwd_f16.cu).
void launch_attention_fwd_bf16(const FwdParams& p, const std::string& variant, cudaStream_t stream);
void launch_attention_fwd_f16(const FwdParams& p, const std::string& variant, cudaStream_t stream);

}  // namespace bsattn::cuda
