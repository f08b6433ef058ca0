// analyze --backend cuda: the quality of a block mask (lib/quality/quality.h) computed on the GPU.
// The sparse output comes from the fused forward kernel; the dense output from the GPU dense
// reference (cuBLAS, S x S scores per head) while its buffers fit `max_dense_reference_bytes`, else
// from the fused kernel with every head dense. Recall is exp(LSE_sparse - LSE_dense) per row, so no
// S x S pass is needed for it.
#pragma once
#include <cstddef>
#include <string>

#include "lib/attention.h"
#include "lib/quality/quality.h"

namespace bsattn::cuda {

struct CudaQualityOptions {
  std::string kernel;                              // forward variant ("" = the default)
  size_t max_dense_reference_bytes = size_t(8) << 30;  // S x S f32 scores + 16-bit P of one head
};
struct CudaQuality {
  QualityReport report;
  std::string kernel;      // the variant the sparse pass ran
  std::string dense_path;  // "cublas-reference" or "fused-dense"
};

// p.dtype bf16 or f16 (host buffers of that type), softmax only (UsageError otherwise: recall from the
// LSE needs softmax). RuntimeFailure without a GPU or on CUDA errors.
CudaQuality evaluate_mask_cuda(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                               const CudaQualityOptions& o = {});

}  // namespace bsattn::cuda
