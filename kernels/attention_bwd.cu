// The backward family's host entry: the support check and the dispatch of a launch to the
// instantiation of its dtype and head dim with the configuration select_bwd_config picks.
#include "kernels/attention_bwd.h"

#include "kernels/attention_fwd.h"  // device_cc
#include "lib/error.h"

namespace bsattn::cuda {

void check_bwd_supported(const BwdParams& p, const std::string& kernel) {
  int count = 0;
  const bool gpu = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  if (!gpu) cudaGetLastError();  // clear the error left by a machine without a GPU
  select_bwd_config(p, gpu ? device_cc() : 0, kernel);
}

BwdConfig resolve_bwd_config(const BwdParams& p, const std::string& kernel) {
  return select_bwd_config(p, device_cc(), kernel);
}

void launch_attention_bwd(const BwdParams& p, ElemType t, cudaStream_t s, const std::string& kernel) {
  if (t == ElemType::F32)
    throw UsageError("the CUDA kernels take bf16 or f16 inputs, got f32 (convert, or use --backend cpu)");
  const BwdConfig c = select_bwd_config(p, device_cc(), kernel);
  const bool bf16 = t == ElemType::BF16;
  if (p.head_dim == 64) return bf16 ? bwd::launch_bf16_d64(p, c, s) : bwd::launch_f16_d64(p, c, s);
  return bf16 ? bwd::launch_bf16_d128(p, c, s) : bwd::launch_f16_d128(p, c, s);
}

}  // namespace bsattn::cuda
