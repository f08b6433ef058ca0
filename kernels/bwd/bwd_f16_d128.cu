// The backward kernels for f16 inputs and head dim 128.
#include "kernels/bwd/launch.cuh"

namespace bsattn::cuda::bwd {
void launch_f16_d128(const BwdParams& p, const BwdConfig& c, cudaStream_t s) { launch_bwd<__half, 128>(p, c, s); }
}  // namespace bsattn::cuda::bwd
