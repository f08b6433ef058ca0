// Residue-class order for LongNet-style dilated attention: with dilation rate r inside segments of w
// tokens, the tokens a dilated head attends among (same p mod r) become one contiguous run of w/r
// tokens, so the dilated pattern is dense diagonal blocks instead of touching every block.
#include <algorithm>

#include "lib/curves/order.h"
#include "lib/error.h"

namespace bsattn::curves {

Perm residue_order(int64_t n, int64_t segment, int64_t rate) {
  if (n < 0 || segment < 1 || rate < 1) throw UsageError("residue order: segment and rate must be >= 1");
  Perm p;
  p.reserve(size_t(n));
  for (int64_t s0 = 0; s0 < n; s0 += segment) {
    int64_t len = std::min(segment, n - s0);
    // New position q lists the residue classes in turn: class c holds s0 + c, c + r, c + 2r, ...
    for (int64_t c = 0; c < rate; ++c)
      for (int64_t p_in = c; p_in < len; p_in += rate) p.push_back(s0 + p_in);
  }
  return p;
}

}  // namespace bsattn::curves
