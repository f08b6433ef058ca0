// Statistics of a block mask that every later part quotes (density, computed pairs, FLOPs).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/mask.h"

namespace bsattn {

struct HeadStats {
  int64_t head = 0;
  HeadType type = HeadType::Sparse;
  int64_t kept_blocks = 0;     // over the batch
  double density = 0;          // kept / (B * Mq * Mk)
  int64_t row_min = 0, row_max = 0;  // kept blocks per row
  double row_mean = 0;
  int64_t empty_rows = 0;      // rows (over the batch) with no kept block
  double diag_coverage = 0;    // share of rows whose diagonal block is kept (rows with a diagonal)
  int64_t bandwidth = 0;       // max |j - diag(i)| over kept blocks
  int64_t computed_pairs = 0;  // exact, causal and tails counted
};

struct MaskStats {
  std::vector<HeadStats> heads;
  int64_t kept_blocks = 0;
  double density = 0;              // kept / all blocks
  double causal_density = 0;       // kept / blocks visible under causal (== density when not causal)
  int64_t computed_pairs = 0;      // summed over batch and heads (a batch-1 mask counts once)
  int64_t dense_pairs = 0;         // all pairs the same attention would compute densely (causal applied)
  int64_t empty_rows = 0;
  double pair_density() const { return dense_pairs ? double(computed_pairs) / double(dense_pairs) : 0; }
};

MaskStats mask_stats(const BlockMask& m);
nlohmann::json to_json(const MaskStats& s);

// Forward FLOPs = 4 * head_dim * computed pairs (DESIGN.md); backward = 2.5x forward.
inline double forward_flops(int64_t computed_pairs, int64_t head_dim) {
  return 4.0 * double(head_dim) * double(computed_pairs);
}

}  // namespace bsattn
