// fp16 instantiations of the forward kernel family (kernels/attention_fwd.cuh).
#include "kernels/attention_fwd.cuh"
#include "kernels/attention_fwd.h"

namespace bsattn::cuda {
void launch_attention_fwd_f16(const FwdParams& p, const std::string& v, cudaStream_t s) {
  fwd::launch_typed<__half>(p, v, s);
}
}  // namespace bsattn::cuda
