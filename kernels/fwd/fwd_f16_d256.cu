// The forward kernels for f16 inputs and head dim 256 (sm90-ws on Hopper, sm80-general elsewhere).
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_f16_d256(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__half, 256>(p, c, s); }
}  // namespace bsattn::cuda::fwd
