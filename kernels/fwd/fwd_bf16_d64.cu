// The forward kernels for bf16 inputs and head dim 64.
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_bf16_d64(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__nv_bfloat16, 64>(p, c, s); }
}  // namespace bsattn::cuda::fwd
