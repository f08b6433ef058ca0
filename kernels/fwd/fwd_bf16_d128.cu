// The forward kernels for bf16 inputs and head dim 128.
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_bf16_d128(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__nv_bfloat16, 128>(p, c, s); }
}  // namespace bsattn::cuda::fwd
