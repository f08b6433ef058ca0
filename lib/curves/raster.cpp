// Raster (identity) and snake (boustrophedon) orders.
#include <numeric>

#include "lib/curves/order.h"

namespace bsattn::curves {

Perm raster_order(const Grid& g) {
  Perm p(size_t(g.size()));
  std::iota(p.begin(), p.end(), int64_t(0));
  return p;
}

// Rows alternate direction and so do frames, so every step is face-adjacent: the row counter runs
// over all rows of all frames (its parity picks the w direction), frame parity picks the h direction.
Perm snake_order(const Grid& g) {
  Perm p;
  p.reserve(size_t(g.size()));
  int64_t row = 0;
  for (int64_t t = 0; t < g.t; ++t) {
    for (int64_t k = 0; k < g.h; ++k, ++row) {
      int64_t h = (t % 2 == 0) ? k : g.h - 1 - k;
      for (int64_t j = 0; j < g.w; ++j) {
        int64_t w = (row % 2 == 0) ? j : g.w - 1 - j;
        p.push_back(g.index(t, h, w));
      }
    }
  }
  return p;
}

}  // namespace bsattn::curves
