#include "kernels/quality_cuda.h"

#include "kernels/attention_runner.h"
#include "kernels/dense_reference.h"
#include "lib/error.h"

namespace bsattn::cuda {

GpuQuality evaluate_mask_cuda(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                              const GpuQualityOptions& o) {
  if (p.score != ScoreFn::Softmax)
    throw UsageError("--backend cuda: analyze computes recall from the softmax log-sum-exp; for --score silu use --backend cpu");
  if (p.dtype == ElemType::F32) throw UsageError("--backend cuda: analyze takes bf16 or f16 inputs");
  if (in.silu_bias) throw UsageError("--backend cuda: analyze takes no SiLU bias");
  if (p.varlen()) throw UsageError("--backend cuda: analyze takes fixed-length batches (no cu_seqlens)");
  p.validate(mask);
  const BlockMask dense = dense_mask_like(mask.shape, mask.causal);
  AttentionOptions run;
  run.backend = Backend::Cuda;
  run.kernel = o.kernel;
  AttentionRunner::check_supported(p, mask, run);
  AttentionRunner::check_supported(p, dense, run);
  if (!gpu_present()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");

  GpuQuality q;
  AttentionResult sparse;
  {
    AttentionRunner r(AttentionRunner::Checked{}, p, mask, in, run);
    q.kernel = r.kernel_name();
    r.launch();
    sparse = r.result();
  }
  AttentionResult full;
  const size_t es = elem_size(p.dtype);
  const size_t scores = size_t(p.q_len) * size_t(p.kv_len);
  if (scores * (4 + es) <= o.max_dense_reference_bytes) {
    full = gpu_dense_reference(p, dense, in);
    q.dense_path = "cublas-reference";
  } else {
    AttentionRunner r(AttentionRunner::Checked{}, p, dense, in, run);
    r.launch();
    full = r.result();
    q.dense_path = "fused-dense";
  }
  q.report = quality_report(p, mask, sparse.out.data(), full.out.data(), recall_from_lse(sparse.lse, full.lse));
  return q;
}

}  // namespace bsattn::cuda
