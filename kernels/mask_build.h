// GPU mask building: bitmap -> row CSR / column CSR, and the heavy step of content-adaptive selectors
// (block mean-pooling of Q and K at several levels, pooled scores, per-row top-k + cumulative-mass
// threshold). Host API with plain C++ types; the device-side entry points are in mask_build_device.h.
#pragma once
#include <cstdint>
#include <vector>

#include "lib/attention.h"
#include "lib/backend.h"
#include "lib/mask.h"

namespace bsattn::cuda {

// Same results as row_csr / column_csr in lib/mask.h, computed on the GPU (tests compare them).
BlockCSR gpu_row_csr(const BlockMask& m);
BlockCSR gpu_column_csr(const BlockMask& m);

// The selection's parameters and timings are lib/backend.h's (the registry's plain types).
using AdaptiveSelectConfig = GpuAdaptiveConfig;
using AdaptiveSelectTiming = GpuAdaptiveTiming;

// Builds a sparse mask from Q/K on the GPU (fixed-length batches; heads of K broadcast by GQA),
// selecting at pooling level c.level (check_gpu_adaptive's limits).
// `in` holds host Q/K of p.dtype (bf16/f16). Timing (CUDA events) is filled when non-null.
BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const AdaptiveSelectConfig& c,
                            AdaptiveSelectTiming* timing = nullptr);

}  // namespace bsattn::cuda
