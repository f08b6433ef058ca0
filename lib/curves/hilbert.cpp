// Hilbert order on the enclosing power-of-two cube (cells outside the grid skipped), in as many
// dimensions as the grid has sides > 1. The index of a point comes from Skilling's transform
// ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004): undo the excess rotations, Gray-encode,
// then read the transposed index bit-plane by bit-plane.
#include <algorithm>

#include "lib/curves/order.h"
#include "lib/curves/sort_by_key.h"

namespace bsattn::curves {

uint64_t hilbert_index(const int64_t* xin, int n, int bits) {
  if (bits == 0) return 0;
  uint64_t x[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i) x[i] = uint64_t(xin[i]);
  const uint64_t top = uint64_t(1) << (bits - 1);
  for (uint64_t q = top; q > 1; q >>= 1) {
    uint64_t p = q - 1;
    for (int i = 0; i < n; ++i) {
      if (x[i] & q) {
        x[0] ^= p;  // invert the low bits
      } else {      // exchange the low bits of x[0] and x[i]
        uint64_t t = (x[0] ^ x[i]) & p;
        x[0] ^= t;
        x[i] ^= t;
      }
    }
  }
  for (int i = 1; i < n; ++i) x[i] ^= x[i - 1];
  uint64_t t = 0;
  for (uint64_t q = top; q > 1; q >>= 1)
    if (x[n - 1] & q) t ^= q - 1;
  for (int i = 0; i < n; ++i) x[i] ^= t;
  uint64_t h = 0;
  for (int b = bits - 1; b >= 0; --b)
    for (int i = 0; i < n; ++i) h = (h << 1) | ((x[i] >> b) & 1);
  return h;
}

Perm hilbert_order(const Grid& g) {
  // Only the sides > 1 take part (a 1x1xN grid is a line, a 1xHxW grid a 2D Hilbert curve).
  int64_t sides[3] = {g.t, g.h, g.w};
  int axes[3], n = 0, bits = 0;
  for (int a = 0; a < 3; ++a)
    if (sides[a] > 1) {
      axes[n++] = a;
      bits = std::max(bits, bits_for(sides[a]));
    }
  std::vector<uint64_t> key(size_t(g.size()));
  if (n == 0) return raster_order(g);
  int64_t c[3], x[3];
  for (c[0] = 0; c[0] < g.t; ++c[0])
    for (c[1] = 0; c[1] < g.h; ++c[1])
      for (c[2] = 0; c[2] < g.w; ++c[2]) {
        for (int i = 0; i < n; ++i) x[i] = c[axes[i]];
        key[size_t(g.index(c[0], c[1], c[2]))] = hilbert_index(x, n, bits);
      }
  return order_by_key(key);
}

}  // namespace bsattn::curves
