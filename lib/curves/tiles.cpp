// Tiles: the grid cut into t x h x w tiles (partial tiles at the far edges), tiles visited in raster
// order of tiles and cells in raster order inside a tile: the layout of Sliding Tile Attention / VSA.
#include <algorithm>

#include "lib/curves/order.h"
#include "lib/error.h"

namespace bsattn::curves {

Perm tile_order(const Grid& g, const Grid& tile) {
  if (tile.t < 1 || tile.h < 1 || tile.w < 1) throw UsageError("tiles: tile sides must be >= 1");
  if (tile.t > g.t || tile.h > g.h || tile.w > g.w)
    throw UsageError("tiles: tile " + tile.str() + " is larger than the grid " + g.str());
  Perm p;
  p.reserve(size_t(g.size()));
  for (int64_t t0 = 0; t0 < g.t; t0 += tile.t)
    for (int64_t h0 = 0; h0 < g.h; h0 += tile.h)
      for (int64_t w0 = 0; w0 < g.w; w0 += tile.w)
        for (int64_t t = t0; t < std::min(g.t, t0 + tile.t); ++t)
          for (int64_t h = h0; h < std::min(g.h, h0 + tile.h); ++h)
            for (int64_t w = w0; w < std::min(g.w, w0 + tile.w); ++w) p.push_back(g.index(t, h, w));
  return p;
}

}  // namespace bsattn::curves
