// Shared by the orders defined by a code per cell (Morton, Hilbert): sort cells by their code.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "lib/curves/order.h"

namespace bsattn::curves {

// Number of bits needed for coordinates 0..side-1.
inline int bits_for(int64_t side) {
  int b = 0;
  while ((int64_t(1) << b) < side) ++b;
  return b;
}

// key[c] = code of raster cell c (distinct codes); returns the cells sorted by code.
inline Perm order_by_key(const std::vector<uint64_t>& key) {
  std::vector<std::pair<uint64_t, int64_t>> kv(key.size());
  for (size_t c = 0; c < key.size(); ++c) kv[c] = {key[c], int64_t(c)};
  std::sort(kv.begin(), kv.end());
  Perm p(key.size());
  for (size_t i = 0; i < kv.size(); ++i) p[i] = kv[i].second;
  return p;
}

}  // namespace bsattn::curves
