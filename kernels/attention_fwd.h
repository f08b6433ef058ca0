// The forward kernel family's host entry. The family lives in kernels/fwd/: block iteration (block.cuh),
// masking (mask.cuh), score functions (softmax.cuh), epilogue (epilogue.cuh), scheduling
// (scheduler.cuh), the main loops (mainloop_sm80.cuh, mainloop_sm90.cuh), the choice of configuration
// (config.h: select_config) and the launch (launch.cuh; one instantiation file per dtype x head dim).
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/fwd/config.h"
#include "kernels/fwd_params.h"
#include "lib/attention.h"

namespace bsattn::cuda {

std::vector<std::string> fwd_variants();  // the kernels' names (fwd_kernel_names); "" picks per problem
// The name of the kernel that runs p on the current GPU (select_config's choice).
std::string resolve_fwd_variant(const FwdParams& p, const std::string& variant);
int device_cc();        // compute capability of the current device, major * 10 + minor
int device_sm_count();  // its multiprocessor count
// sm90-ws: a block of WS_SCHED_WORDS on the current device, its two counters zero: next item, finished
// CTAs, two spare words, then two item slots of 4 words per CTA (at most WS_MAX_CTAS CTAs)
constexpr int WS_MAX_CTAS = 1024, WS_SCHED_WORDS = 4 + 8 * WS_MAX_CTAS;
unsigned* ws_sched_block();
// UsageError when no kernel (or not the named one) can run p: select_config with the current GPU's
// compute capability when there is a GPU, without an architecture check otherwise.
void check_fwd_supported(const FwdParams& p, const std::string& variant);
void launch_attention_fwd(const FwdParams& p, ElemType dtype, const std::string& variant, cudaStream_t stream);

namespace fwd {
// One per dtype x head dim (kernels/fwd/fwd_<dtype>_d<D>.cu).
void launch_bf16_d64(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
void launch_bf16_d128(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
void launch_f16_d64(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
void launch_f16_d128(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
void launch_bf16_d256(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
void launch_f16_d256(const FwdParams& p, const FwdConfig& c, cudaStream_t s);
}  // namespace fwd

}  // namespace bsattn::cuda
