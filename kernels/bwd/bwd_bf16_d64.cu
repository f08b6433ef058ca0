// The backward kernels for bf16 inputs and head dim 64.
#include "kernels/bwd/launch.cuh"

namespace bsattn::cuda::bwd {
void launch_bf16_d64(const BwdParams& p, const BwdConfig& c, cudaStream_t s) { launch_bwd<__nv_bfloat16, 64>(p, c, s); }
}  // namespace bsattn::cuda::bwd
