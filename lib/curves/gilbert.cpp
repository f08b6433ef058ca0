// Generalized Hilbert ("gilbert") order for arbitrary rectangles and cuboids.
//
// Construction (ours; the template follows the published generalized Hilbert idea): a cuboid is
// given by a corner p and three axis vectors a (major), b, c. The path starts at p and ends at
// p + (|a|-1) * unit(a), the corner next to p along a. A cuboid is cut into 2, 3 or 5 sub-cuboids,
// each again entered at a corner and left at the corner next to it along its own major axis, so the
// pieces join with face-adjacent steps:
//   split a      : [0,α) then [α,w)                                      (long, thin cuboids)
//   split a,b    : up b on [0,α), across [β,h) on the whole width, down on [α,w)   (2D Hilbert step)
//   split a,c    : the same in the a-c plane
//   split a,b,c  : five pieces, the 3D Hilbert step.
// Colour cells by the parity of x+y+z: a face-adjacent path alternates colours, so a piece of N cells
// whose endpoints lie |a|-1 apart along a can only be filled if |a| is even or N is odd (all sides
// odd). The widely copied gilbert3d picks the split points by a fixed rule and so creates pieces that
// violate this (e.g. on 45x30x13), which forces diagonal steps. Here the split points are chosen near
// the halves (preferring even halves, as the 2D algorithm does) by a memoised search over a few
// candidates per side: a plan for sizes (w,h,d) is the candidate whose pieces have the fewest
// non-face-adjacent steps in total (0 whenever one exists; pieces with |a| = 1 and N > 1 cannot end
// next to where they start and are never used). Sizes repeat heavily across the recursion (pieces
// are near-halves), so the search visits few distinct sizes; a plan is looked up per piece.
// When no split works (e.g. 3x2 with the path required to end next to its start) a snake with the
// end cell moved last is used; it only occurs inside pieces of parity-impossible sizes, which the
// search avoids whenever the grid has an even side (then that side is the major axis) or all sides
// are odd. tests/curves checks adjacency over many sizes, 45x30x13 included.
#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "lib/curves/order.h"
#include "lib/error.h"

namespace bsattn::curves {

namespace {

struct Vec {
  int64_t x = 0, y = 0, z = 0;  // x: w axis, y: h axis, z: t axis
};
Vec operator+(Vec a, Vec b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
Vec operator*(int64_t s, Vec a) { return {s * a.x, s * a.y, s * a.z}; }
Vec operator-(Vec a) { return {-a.x, -a.y, -a.z}; }
int64_t length(Vec v) { return std::abs(v.x) + std::abs(v.y) + std::abs(v.z); }  // axis-aligned
Vec unit(Vec v) { return {(v.x > 0) - (v.x < 0), (v.y > 0) - (v.y < 0), (v.z > 0) - (v.z < 0)}; }

enum class Split : int8_t { Single, Line, Fallback, A, AB, AC, ABC };

struct Plan {
  Split split = Split::Single;
  int64_t alpha = 0, beta = 0, gamma = 0;
  int64_t cost = 0;  // non-face-adjacent steps inside the piece
};

constexpr int64_t kImpossible = int64_t(1) << 40;

// Split points near n/2, the even one first (even pieces along a major axis always fill exactly).
std::vector<int64_t> half_candidates(int64_t n) {
  int64_t m = n / 2;
  bool odd = (m % 2) == 1 && n > 2;
  int64_t first = odd ? m + 1 : m, second = odd ? m : m + 1;
  std::vector<int64_t> out;
  for (int64_t v : {first, second, m - 1, m + 2, m - 2})
    if (v >= 1 && v <= n - 1 && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  return out;
}

struct Size3 {
  int64_t a, b, c;
};

// Local coordinates (i along a, j along b, k along c) of the fallback path: a snake through the
// cuboid with the end cell (w-1,0,0) moved to the last position.
std::vector<Size3> fallback_path(int64_t w, int64_t h, int64_t d) {
  std::vector<Size3> cells;
  cells.reserve(size_t(w * h * d));
  int64_t row = 0;
  for (int64_t i = 0; i < w; ++i)
    for (int64_t jj = 0; jj < h; ++jj, ++row) {
      int64_t j = (i % 2 == 0) ? jj : h - 1 - jj;
      for (int64_t kk = 0; kk < d; ++kk) {
        int64_t k = (row % 2 == 0) ? kk : d - 1 - kk;
        if (!(i == w - 1 && j == 0 && k == 0)) cells.push_back({i, j, k});
      }
    }
  cells.push_back({w - 1, 0, 0});
  return cells;
}

int64_t fallback_cost(int64_t w, int64_t h, int64_t d) {
  auto cells = fallback_path(w, h, d);
  int64_t bad = 0;
  for (size_t i = 1; i < cells.size(); ++i) {
    int64_t l1 = std::abs(cells[i].a - cells[i - 1].a) + std::abs(cells[i].b - cells[i - 1].b) +
                 std::abs(cells[i].c - cells[i - 1].c);
    bad += l1 != 1;
  }
  return bad;
}

class Planner {
 public:
  const Plan& get(int64_t w, int64_t h, int64_t d) {
    uint64_t key = (uint64_t(w) << 42) | (uint64_t(h) << 21) | uint64_t(d);
    auto it = memo_.find(key);
    if (it != memo_.end()) return it->second;
    Plan p = make(w, h, d);
    return memo_.emplace(key, p).first->second;
  }
  int64_t cost(Size3 s) {
    if (s.a < 1 || s.b < 1 || s.c < 1) return kImpossible;
    if (s.a == 1 && s.b * s.c > 1) return kImpossible;  // would have to end where it starts
    return get(s.a, s.b, s.c).cost;
  }

 private:
  // Sum of piece costs, stopping early once it cannot beat `best`.
  // In the first pass (parity_only) pieces that cannot be filled face-adjacently by the colouring
  // argument are rejected before they are planned, so impossible sizes are only searched when no
  // split of the parent avoids them.
  template <size_t N>
  int64_t total(const Size3 (&pieces)[N], int64_t best) {
    int64_t sum = 0;
    for (auto& s : pieces) {
      if (s.a < 1 || s.b < 1 || s.c < 1 || (s.a == 1 && s.b * s.c > 1)) return kImpossible;
      if (parity_only_ && s.a % 2 == 1 && (s.b * s.c) % 2 == 0) return kImpossible;
    }
    for (auto& s : pieces) {
      sum += cost(s);
      if (sum >= best) return kImpossible;
    }
    return sum;
  }

  Plan make(int64_t w, int64_t h, int64_t d) {
    Plan best;
    if (w * h * d == 1) return best;  // Single
    if (h == 1 && d == 1) {
      best.split = Split::Line;
      return best;
    }
    best.split = Split::Fallback;
    best.cost = kImpossible;  // splits first; the snake fallback only when none fills exactly
    // Preferred strategy by aspect ratio, as in the Hilbert template: cut a long major axis in two;
    // else cut b (or c) when it dominates the other; else the full 3D step. The others follow as
    // alternatives when the preferred one cannot fill exactly.
    static const Split kLong[] = {Split::A, Split::AB, Split::AC, Split::ABC};
    static const Split kWideB[] = {Split::AB, Split::ABC, Split::AC, Split::A};
    static const Split kWideC[] = {Split::AC, Split::ABC, Split::AB, Split::A};
    static const Split kCube[] = {Split::ABC, Split::AB, Split::AC, Split::A};
    const Split* order = kCube;
    if (2 * w > 3 * h && 2 * w > 3 * d) order = kLong;
    else if (3 * h > 4 * d) order = kWideB;
    else if (3 * d > 4 * h) order = kWideC;
    auto consider = [&](Split s, int64_t al, int64_t be, int64_t ga, int64_t c) {
      if (c < best.cost) best = {s, al, be, ga, c};
    };
    auto ca = half_candidates(w), cb = half_candidates(h), cc = half_candidates(d);
    const bool saved = parity_only_;
    for (int pass = 0; pass < 8; ++pass) {
      parity_only_ = pass < 4;
      Split s = order[pass % 4];
      if (best.cost == 0) break;
      switch (s) {
        case Split::A:
          for (int64_t al : ca) {
            Size3 p[] = {{al, h, d}, {w - al, h, d}};
            consider(s, al, 0, 0, total(p, best.cost));
          }
          break;
        case Split::AB:
          for (int64_t be : cb)
            for (int64_t al : ca) {
              if (best.cost == 0) break;
              Size3 p[] = {{be, d, al}, {w, h - be, d}, {be, d, w - al}};
              consider(s, al, be, 0, total(p, best.cost));
            }
          break;
        case Split::AC:
          for (int64_t ga : cc)
            for (int64_t al : ca) {
              if (best.cost == 0) break;
              Size3 p[] = {{ga, al, h}, {w, h, d - ga}, {ga, w - al, h}};
              consider(s, al, 0, ga, total(p, best.cost));
            }
          break;
        case Split::ABC:
          for (int64_t be : cb)
            for (int64_t ga : cc)
              for (int64_t al : ca) {
                if (best.cost == 0) break;
                Size3 p[] = {{be, ga, al}, {d, al, h - be}, {w, be, d - ga}, {d, w - al, h - be}, {be, ga, w - al}};
                consider(s, al, be, ga, total(p, best.cost));
              }
          break;
        default: break;
      }
    }
    parity_only_ = saved;
    if (best.cost > 0) {
      int64_t fb = fallback_cost(w, h, d);
      if (fb < best.cost) best = {Split::Fallback, 0, 0, 0, fb};
    }
    return best;
  }

  std::unordered_map<uint64_t, Plan> memo_;
  bool parity_only_ = false;
};

class Walker {
 public:
  Walker(const Grid& g, Perm& out) : g_(g), out_(out) {}
  void walk(Vec p, Vec a, Vec b, Vec c) {
    int64_t w = length(a), h = length(b), d = length(c);
    Vec da = unit(a), db = unit(b), dc = unit(c);
    const Plan pl = planner_.get(w, h, d);
    const int64_t al = pl.alpha, be = pl.beta, ga = pl.gamma;
    switch (pl.split) {
      case Split::Single: emit(p); break;
      case Split::Line:
        for (int64_t i = 0; i < w; ++i) emit(p + i * da);
        break;
      case Split::Fallback:
        for (auto& s : fallback_path(w, h, d)) emit(p + s.a * da + s.b * db + s.c * dc);
        break;
      case Split::A:
        walk(p, al * da, b, c);
        walk(p + al * da, (w - al) * da, b, c);
        break;
      case Split::AB:
        walk(p, be * db, c, al * da);
        walk(p + be * db, a, (h - be) * db, c);
        walk(p + (w - 1) * da + (be - 1) * db, -(be * db), c, -((w - al) * da));
        break;
      case Split::AC:
        walk(p, ga * dc, al * da, b);
        walk(p + ga * dc, a, b, (d - ga) * dc);
        walk(p + (w - 1) * da + (ga - 1) * dc, -(ga * dc), -((w - al) * da), b);
        break;
      case Split::ABC:
        walk(p, be * db, ga * dc, al * da);
        walk(p + be * db, c, al * da, (h - be) * db);
        walk(p + (be - 1) * db + (d - 1) * dc, a, -(be * db), -((d - ga) * dc));
        walk(p + (w - 1) * da + be * db + (d - 1) * dc, -c, -((w - al) * da), (h - be) * db);
        walk(p + (w - 1) * da + (be - 1) * db, -(be * db), ga * dc, -((w - al) * da));
        break;
    }
  }

 private:
  void emit(Vec v) { out_.push_back(g_.index(v.z, v.y, v.x)); }
  const Grid& g_;
  Perm& out_;
  Planner planner_;
};

}  // namespace

Perm gilbert_order(const Grid& g) {
  Perm out;
  out.reserve(size_t(g.size()));
  // Major axis: the longest even side (a face-adjacent path then exists), else the longest side.
  Vec axis[3] = {{0, 0, g.t}, {0, g.h, 0}, {g.w, 0, 0}};
  int64_t side[3] = {g.t, g.h, g.w};
  int major = -1;
  for (int i = 0; i < 3; ++i)
    if (side[i] % 2 == 0 && (major < 0 || side[i] > side[major])) major = i;
  if (major < 0)
    for (int i = 0; i < 3; ++i)
      if (major < 0 || side[i] > side[major]) major = i;
  int o1 = (major + 1) % 3, o2 = (major + 2) % 3;
  if (side[o2] > side[o1]) std::swap(o1, o2);
  Walker walker(g, out);
  walker.walk(Vec{}, axis[major], axis[o1], axis[o2]);
  if (int64_t(out.size()) != g.size())
    throw RuntimeFailure("gilbert order: internal error, visited " + std::to_string(out.size()) + " of " +
                         std::to_string(g.size()) + " cells");
  return out;
}

}  // namespace bsattn::curves
