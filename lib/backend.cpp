#include "lib/backend.h"

#include "lib/error.h"

namespace bsattn {

namespace {
// Constant-initialized, so registration at any point of static initialization finds it ready.
GpuBackend* registered = nullptr;
}  // namespace

void register_gpu_backend(GpuBackend* backend) { registered = backend; }

GpuBackend* gpu_backend() { return registered; }

GpuBackend& require_gpu_backend() {
  if (!registered) throw RuntimeFailure("this bsattn was built without CUDA; use --backend cpu");
  return *registered;
}

bool gpu_available() { return registered && registered->available(); }

GpuQuality gpu_evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const GpuQualityOptions& opt) {
  return require_gpu_backend().evaluate_mask(p, mask, in, opt);
}

}  // namespace bsattn
