// Morton / Z-order: bits of (t, h, w) interleaved on the enclosing power-of-two cube; cells outside
// the grid are skipped, which is what sorting the grid's cells by their code does.
#include <algorithm>

#include "lib/curves/order.h"
#include "lib/curves/sort_by_key.h"

namespace bsattn::curves {

Perm morton_order(const Grid& g) {
  int bits = std::max({bits_for(g.t), bits_for(g.h), bits_for(g.w)});
  std::vector<uint64_t> key(size_t(g.size()));
  for (int64_t t = 0; t < g.t; ++t)
    for (int64_t h = 0; h < g.h; ++h)
      for (int64_t w = 0; w < g.w; ++w) {
        uint64_t code = 0;
        for (int b = bits - 1; b >= 0; --b)
          code = (code << 3) | (uint64_t((t >> b) & 1) << 2) | (uint64_t((h >> b) & 1) << 1) | uint64_t((w >> b) & 1);
        key[size_t(g.index(t, h, w))] = code;
      }
  return order_by_key(key);
}

}  // namespace bsattn::curves
