// analyze --backend cuda: the quality of a block mask (lib/quality/quality.h) computed on the GPU,
// GpuBackend::evaluate_mask of lib/backend.h. The sparse output comes from the fused forward kernel;
// the dense output from the GPU dense reference (cuBLAS, S x S scores per head) while its buffers fit
// `max_dense_reference_bytes`, else from the fused kernel with every head dense. Recall is
// exp(LSE_sparse - LSE_dense) per row, so no S x S pass is needed for it.
#pragma once
#include "lib/attention.h"
#include "lib/backend.h"

namespace bsattn::cuda {

// p.dtype bf16 or f16 (host buffers of that type), softmax only (UsageError otherwise: recall from the
// LSE needs softmax). Everything is checked once, before any GPU work; RuntimeFailure without a GPU
// or on CUDA errors.
GpuQuality evaluate_mask_cuda(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                              const GpuQualityOptions& o = {});

}  // namespace bsattn::cuda
