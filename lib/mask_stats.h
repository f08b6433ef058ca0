// Statistics of a block mask that every later part quotes (density, computed pairs, FLOPs).
// One definition of density everywhere (docs/density.md): `density` = kept blocks / visible blocks,
// where a block is visible when causal leaves at least one of its (q,k) pairs (every block when not
// causal); dense attention, causal or not, has density 1. `pair_density` = computed (q,k) pairs / the
// pairs dense attention computes (causal applied), the FLOP ratio to dense. `bitmap_fill` = kept / all
// Mq*Mk blocks, the share of ones in the .npy bitmap.
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
  double density = 0;          // kept / visible blocks (over the batch)
  double pair_density = 0;     // computed / dense pairs
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
  int64_t visible_blocks = 0;      // blocks with a pair causal allows (all when not causal), over batch and heads
  double density = 0;              // kept / visible blocks
  double bitmap_fill = 0;          // kept / all blocks
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
