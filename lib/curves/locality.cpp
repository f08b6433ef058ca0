// Locality metrics of a token order (see locality.h for the definitions).
#include "lib/curves/locality.h"

#include <algorithm>
#include <cmath>

#include "lib/error.h"

namespace bsattn::curves {

std::string WindowRadius::str() const {
  return std::to_string(t) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

WindowRadius parse_radius(const std::string& text, const Grid& g, const std::string& what) {
  std::vector<int64_t> v;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == 'x') {
      int64_t r = parse_int(text.substr(start, i - start), what);
      if (r < 0) throw UsageError(what + ": radius '" + text + "' must be >= 0");
      v.push_back(r);
      start = i + 1;
    }
  WindowRadius r;
  if (v.size() == 1) r = {g.t > 1 ? v[0] : 0, v[0], v[0]};
  else if (v.size() == 3) r = {v[0], v[1], v[2]};
  else if (v.size() == 2 && g.t == 1) r = {0, v[0], v[1]};
  else throw UsageError(what + ": radius '" + text + "' must be R, RTxRHxRW (or RHxRW on a 2D grid)");
  return r;
}

nlohmann::json LocalityMetrics::to_json() const {
  nlohmann::json w = nlohmann::json::array();
  for (auto& c : windows)
    w.push_back({{"radius", c.radius.str()}, {"kept_blocks", c.kept_blocks}, {"grid_blocks", c.grid_blocks},
                 {"block_density", c.block_density}, {"computed_pairs", c.computed_pairs},
                 {"useful_pairs", c.useful_pairs}, {"useful_share", c.useful_share},
                 {"token_density", c.token_density}});
  return {{"tokens", tokens},
          {"block", block},
          {"grid_offset", grid_offset},
          {"steps", steps},
          {"face_step_share", share(face_steps)},
          {"diagonal_step_share", share(diagonal_steps)},
          {"jump_step_share", share(jump_steps)},
          {"longest_step", longest_step},
          {"blocks", blocks},
          {"bbox_per_token", bbox_per_token},
          {"radius_of_gyration", radius_of_gyration},
          {"surface_per_token", surface_per_token},
          {"neighbour_blocks", neighbour_blocks},
          {"face_pairs", face_pairs},
          {"same_block_face_pairs", same_block_face_pairs},
          {"same_block_share", same_block_share},
          {"windows", w}};
}

namespace {
struct Coord {
  int64_t t, h, w;
};
}  // namespace

LocalityMetrics locality_metrics(const Grid& g, const Perm& perm, int64_t block, int64_t grid_offset,
                                 const std::vector<WindowRadius>& radii) {
  if (block < 1) throw UsageError("locality: block must be >= 1");
  if (grid_offset < 0) throw UsageError("locality: grid offset must be >= 0");
  if (int64_t(perm.size()) != g.size())
    throw UsageError("locality: order has " + std::to_string(perm.size()) + " cells, grid has " +
                     std::to_string(g.size()));
  check_permutation(perm, "locality order");
  const int64_t n = g.size();
  LocalityMetrics m;
  m.tokens = n;
  m.block = block;
  m.grid_offset = grid_offset;
  auto coord = [&](int64_t c) { return Coord{c / (g.h * g.w), (c / g.w) % g.h, c % g.w}; };

  // Steps between consecutive grid tokens.
  for (int64_t i = 1; i < n; ++i) {
    Coord a = coord(perm[size_t(i - 1)]), b = coord(perm[size_t(i)]);
    int64_t dt = std::abs(a.t - b.t), dh = std::abs(a.h - b.h), dw = std::abs(a.w - b.w);
    int64_t cheb = std::max({dt, dh, dw}), l1 = dt + dh + dw;
    ++m.steps;
    if (l1 == 1) ++m.face_steps;
    else if (cheb == 1) ++m.diagonal_steps;
    else ++m.jump_steps;
    m.longest_step = std::max(m.longest_step, std::sqrt(double(dt * dt + dh * dh + dw * dw)));
  }

  // Block of every cell (local ids 0..blocks-1).
  const int64_t first_block = grid_offset / block;
  m.blocks = (grid_offset + n - 1) / block - first_block + 1;
  std::vector<int64_t> blk(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) blk[size_t(perm[size_t(i)])] = (grid_offset + i) / block - first_block;
  std::vector<int64_t> cnt(size_t(m.blocks), 0);
  for (int64_t i = 0; i < n; ++i) ++cnt[size_t((grid_offset + i) / block - first_block)];

  // Per block: bounding box, centroid, spread.
  struct Acc {
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, hi[3] = {-1, -1, -1};
    double s[3] = {0, 0, 0}, ss = 0;
    int64_t surface = 0, touched = 0;
  };
  std::vector<Acc> acc(size_t(m.blocks));
  for (int64_t c = 0; c < n; ++c) {
    Coord x = coord(c);
    Acc& a = acc[size_t(blk[size_t(c)])];
    int64_t v[3] = {x.t, x.h, x.w};
    for (int k = 0; k < 3; ++k) {
      a.lo[k] = std::min(a.lo[k], v[k]);
      a.hi[k] = std::max(a.hi[k], v[k]);
      a.s[k] += double(v[k]);
      a.ss += double(v[k]) * double(v[k]);
    }
  }
  // Face-neighbour pairs (each unordered pair once, via +t, +h, +w).
  for (int64_t c = 0; c < n; ++c) {
    Coord x = coord(c);
    const int64_t nb[3] = {x.t + 1 < g.t ? c + g.h * g.w : -1, x.h + 1 < g.h ? c + g.w : -1, x.w + 1 < g.w ? c + 1 : -1};
    for (int64_t o : nb) {
      if (o < 0) continue;
      ++m.face_pairs;
      int64_t bc = blk[size_t(c)], bo = blk[size_t(o)];
      if (bc == bo) ++m.same_block_face_pairs;
      else {
        ++acc[size_t(bc)].surface;
        ++acc[size_t(bo)].surface;
      }
    }
  }
  m.same_block_share = m.face_pairs ? double(m.same_block_face_pairs) / double(m.face_pairs) : 1.0;
  // Distinct blocks touched by the 26-neighbourhood, grid positions visited block by block.
  std::vector<int64_t> stamp(size_t(m.blocks), -1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t b = (grid_offset + i) / block - first_block;
    Coord x = coord(perm[size_t(i)]);
    for (int64_t t = std::max<int64_t>(0, x.t - 1); t <= std::min(g.t - 1, x.t + 1); ++t)
      for (int64_t h = std::max<int64_t>(0, x.h - 1); h <= std::min(g.h - 1, x.h + 1); ++h)
        for (int64_t w = std::max<int64_t>(0, x.w - 1); w <= std::min(g.w - 1, x.w + 1); ++w) {
          int64_t o = blk[size_t(g.index(t, h, w))];
          if (stamp[size_t(o)] != b) {
            stamp[size_t(o)] = b;
            ++acc[size_t(b)].touched;
          }
        }
  }
  for (int64_t b = 0; b < m.blocks; ++b) {
    const Acc& a = acc[size_t(b)];
    double k = double(cnt[size_t(b)]), wgt = k / double(n);
    double vol = 1;
    double mean_sq = 0;
    for (int d = 0; d < 3; ++d) {
      vol *= double(a.hi[d] - a.lo[d] + 1);
      mean_sq += (a.s[d] / k) * (a.s[d] / k);
    }
    double rg2 = std::max(0.0, a.ss / k - mean_sq);
    m.bbox_per_token += wgt * vol / k;
    m.radius_of_gyration += wgt * std::sqrt(rg2);
    m.surface_per_token += wgt * double(a.surface) / k;
    m.neighbour_blocks += wgt * double(a.touched);
  }

  // Window coverage: every key block a query block's windows reach.
  for (const WindowRadius& r : radii) {
    if (r.t < 0 || r.h < 0 || r.w < 0) throw UsageError("locality: window radius must be >= 0");
    WindowCoverage wc;
    wc.radius = r;
    wc.grid_blocks = m.blocks;
    std::fill(stamp.begin(), stamp.end(), -1);
    for (int64_t i = 0; i < n; ++i) {
      int64_t b = (grid_offset + i) / block - first_block;
      Coord x = coord(perm[size_t(i)]);
      int64_t t0 = std::max<int64_t>(0, x.t - r.t), t1 = std::min(g.t - 1, x.t + r.t);
      int64_t h0 = std::max<int64_t>(0, x.h - r.h), h1 = std::min(g.h - 1, x.h + r.h);
      int64_t w0 = std::max<int64_t>(0, x.w - r.w), w1 = std::min(g.w - 1, x.w + r.w);
      wc.useful_pairs += (t1 - t0 + 1) * (h1 - h0 + 1) * (w1 - w0 + 1);
      for (int64_t t = t0; t <= t1; ++t)
        for (int64_t h = h0; h <= h1; ++h) {
          const int64_t* row = blk.data() + g.index(t, h, 0);
          for (int64_t w = w0; w <= w1; ++w) {
            int64_t o = row[w];
            if (stamp[size_t(o)] != b) {
              stamp[size_t(o)] = b;
              ++wc.kept_blocks;
              wc.computed_pairs += cnt[size_t(b)] * cnt[size_t(o)];
            }
          }
        }
    }
    wc.block_density = double(wc.kept_blocks) / (double(m.blocks) * double(m.blocks));
    wc.useful_share = wc.computed_pairs ? double(wc.useful_pairs) / double(wc.computed_pairs) : 0.0;
    wc.token_density = double(wc.useful_pairs) / (double(n) * double(n));
    m.windows.push_back(wc);
  }
  return m;
}

}  // namespace bsattn::curves
