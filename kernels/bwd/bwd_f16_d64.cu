// The backward kernels for f16 inputs and head dim 64.
#include "kernels/bwd/launch.cuh"

namespace bsattn::cuda::bwd {
void launch_f16_d64(const BwdParams& p, const BwdConfig& c, cudaStream_t s) { launch_bwd<__half, 64>(p, c, s); }
}  // namespace bsattn::cuda::bwd
