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

void check_gpu_adaptive(const AttentionProblem& p, const GpuAdaptiveConfig& c) {
  if (p.varlen()) throw UsageError("adaptive GPU selection takes fixed-length batches (no cu_seqlens)");
  if (p.dtype == ElemType::F32) throw UsageError("adaptive GPU selection takes bf16 or f16 Q/K (--dtype bf16 or f16)");
  if (p.head_dim < 1 || p.head_dim > 1024)
    throw UsageError("adaptive GPU selection: head_dim = " + std::to_string(p.head_dim) + " (allowed: 1..1024)");
  if (c.level != 1 && c.level != 2 && c.level != 4 && c.level != 8)
    throw UsageError("adaptive GPU selection: pooling level " + std::to_string(c.level) + " (allowed: 1, 2, 4, 8)");
  if (c.top_k < 1) throw UsageError("adaptive GPU selection: top_k = " + std::to_string(c.top_k) + " (allowed: >= 1)");
  if (!(c.mass > 0 && c.mass <= 1))
    throw UsageError("adaptive GPU selection: mass = " + std::to_string(c.mass) + " (allowed: 0 < mass <= 1)");
  for (int l : c.levels)
    if (l < 1 || l > 1024) throw UsageError("adaptive GPU selection: pooling levels must be in 1..1024");
  MaskShape{p.batch, p.heads_q, p.q_len, p.kv_len, c.block_q, c.block_kv}.validate();
}

BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const GpuAdaptiveConfig& c,
                            GpuAdaptiveTiming* timing) {
  check_gpu_adaptive(p, c);
  GpuBackend& gpu = require_gpu_backend();
  if (!gpu.available()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
  return gpu.adaptive_mask(p, in, c, timing);
}

}  // namespace bsattn
