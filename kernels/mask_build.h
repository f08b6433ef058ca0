// GPU mask building: bitmap -> row CSR / column CSR, and the heavy step of content-adaptive selectors
// (block mean-pooling of Q and K at several levels, pooled scores, per-row top-k + cumulative-mass
// threshold). Host API with plain C++ types; the device-side entry points are in mask_build_device.h.
#pragma once
#include <cstdint>
#include <vector>

#include "lib/attention.h"
#include "lib/mask.h"

namespace bsattn::cuda {

// Same results as row_csr / column_csr in lib/mask.h, computed on the GPU (tests compare them).
BlockCSR gpu_row_csr(const BlockMask& m);
BlockCSR gpu_column_csr(const BlockMask& m);

struct AdaptiveSelectConfig {
  int64_t block_q = 128, block_kv = 128;
  std::vector<int> levels = {1, 2, 4, 8};  // pooling levels (in blocks) computed; selection uses level 1
  int top_k = 4;            // always keep the k highest-scoring key blocks of a row
  double mass = 0.9;        // and the fewest blocks whose pooled softmax mass reaches this
  bool causal = false;
  bool keep_diagonal = true;  // keep each row's diagonal block (causal) / block i (non-causal)
};

struct AdaptiveSelectTiming {
  double pool_ms = 0, score_ms = 0, select_ms = 0, csr_ms = 0, total_ms = 0;
};

// Builds a sparse mask from Q/K on the GPU (fixed-length batches; heads of K broadcast by GQA).
// `in` holds host Q/K of p.dtype (bf16/f16). Timing (CUDA events) is filled when non-null.
BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const AdaptiveSelectConfig& c,
                            AdaptiveSelectTiming* timing = nullptr);

}  // namespace bsattn::cuda
