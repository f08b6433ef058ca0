// The forward kernels for f16 inputs and head dim 64.
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_f16_d64(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__half, 64>(p, c, s); }
}  // namespace bsattn::cuda::fwd
