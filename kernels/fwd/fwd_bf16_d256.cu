// The forward kernels for bf16 inputs and head dim 256 (sm90-ws on Hopper, sm80-general elsewhere).
#include "kernels/fwd/launch.cuh"

namespace bsattn::cuda::fwd {
void launch_bf16_d256(const FwdParams& p, const FwdConfig& c, cudaStream_t s) { launch_fwd<__nv_bfloat16, 256>(p, c, s); }
}  // namespace bsattn::cuda::fwd
