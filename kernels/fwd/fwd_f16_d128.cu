// The forward kernels for f16 inputs and head dim 128.
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_f16_d128(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__half, 128>(p, c, s); }
}  // namespace bsattn::cuda::fwd
