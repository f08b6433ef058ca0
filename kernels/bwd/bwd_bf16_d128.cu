// The backward kernels for bf16 inputs and head dim 128.
#include "kernels/bwd/launch.cuh"

namespace bsattn::cuda::bwd {
void launch_bf16_d128(const BwdParams& p, const BwdConfig& c, cudaStream_t s) { launch_bwd<__nv_bfloat16, 128>(p, c, s); }
}  // namespace bsattn::cuda::bwd
