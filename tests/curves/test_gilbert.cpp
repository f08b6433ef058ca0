// The Gilbert guarantee: every step face-adjacent whenever the grid has an even side (and, with our
// construction, also when all sides are odd; the requirement is at most one diagonal step there).
#include <doctest/doctest.h>

#include "lib/curves/order.h"

using namespace bsattn::curves;

namespace {
struct StepCount {
  int64_t face = 0, diagonal = 0, jump = 0;
};
StepCount steps(const Grid& g, const Perm& p) {
  StepCount s;
  for (size_t i = 1; i < p.size(); ++i) {
    int64_t a = p[i - 1], b = p[i];
    int64_t dt = std::abs(a / (g.h * g.w) - b / (g.h * g.w)), dh = std::abs((a / g.w) % g.h - (b / g.w) % g.h),
            dw = std::abs(a % g.w - b % g.w);
    if (dt + dh + dw == 1) ++s.face;
    else if (std::max({dt, dh, dw}) == 1) ++s.diagonal;
    else ++s.jump;
  }
  return s;
}
void check_grid(int64_t t, int64_t h, int64_t w) {
  Grid g = make_grid(t, h, w, "test");
  Perm p = gilbert_order(g);
  CAPTURE(g.str());
  REQUIRE(int64_t(p.size()) == g.size());
  inverse_permutation(p);  // throws unless a permutation
  StepCount s = steps(g, p);
  bool has_even = t % 2 == 0 || h % 2 == 0 || w % 2 == 0;
  if (has_even) {
    REQUIRE(s.diagonal + s.jump == 0);
  } else {
    REQUIRE(s.jump == 0);
    REQUIRE(s.diagonal <= 1);
  }
  REQUIRE(p[0] == 0);  // starts in a corner
}
}  // namespace

TEST_CASE("gilbert: face-adjacent Hamiltonian path on every cuboid up to 14x14x14") {
  for (int64_t t = 1; t <= 14; ++t)
    for (int64_t h = 1; h <= 14; ++h)
      for (int64_t w = 1; w <= 14; ++w) check_grid(t, h, w);
}

TEST_CASE("gilbert: sizes where the original gilbert3d needs diagonal steps, and larger grids") {
  check_grid(45, 30, 13);
  check_grid(13, 30, 45);
  check_grid(30, 45, 13);
  check_grid(13, 45, 30);
  check_grid(49, 60, 90);
  check_grid(15, 27, 33);  // all odd
  check_grid(3, 101, 7);
  check_grid(2, 3, 151);
  check_grid(1, 1, 1000);
  check_grid(1, 999, 1);
  check_grid(999, 1, 1);
  for (int64_t h = 1; h <= 40; ++h)
    for (int64_t w = 1; w <= 40; ++w) check_grid(1, h, w);  // 2D rectangles
}

TEST_CASE("gilbert on power-of-two squares stays local like Hilbert: every 2x2 aligned quad is contiguous") {
  for (int64_t n : {4, 8, 16}) {
    Grid g = make_grid(1, n, n, "test");
    Perm p = gilbert_order(g);
    for (size_t i = 0; i < p.size(); i += 4) {
      int64_t qh = (p[i] / n) / 2, qw = (p[i] % n) / 2;
      for (size_t k = 1; k < 4; ++k) REQUIRE(((p[i + k] / n) / 2 == qh && (p[i + k] % n) / 2 == qw));
    }
  }
}

TEST_CASE("gilbert on power-of-two cubes: every aligned 2x2x2 octant is contiguous") {
  for (int64_t n : {4, 8}) {
    Grid g = make_grid(n, n, n, "test");
    Perm p = gilbert_order(g);
    for (size_t i = 0; i < p.size(); i += 8) {
      int64_t q = g.index(p[i] / (n * n) / 2, (p[i] / n) % n / 2, p[i] % n / 2);
      for (size_t k = 1; k < 8; ++k)
        REQUIRE(g.index(p[i + k] / (n * n) / 2, (p[i + k] / n) % n / 2, p[i + k] % n / 2) == q);
    }
  }
}
