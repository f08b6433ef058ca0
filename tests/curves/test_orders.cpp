// Orders: bijection and inverse for every family over odd, even and degenerate sizes; Hilbert against
// the textbook 2D d2xy; Morton against bit interleaving; snake/tiles/residue properties; sequences;
// applying and un-applying an order to tensors.
#include <doctest/doctest.h>

#include <random>

#include "lib/curves/order.h"
#include "lib/error.h"

using namespace bsattn;
using namespace bsattn::curves;

namespace {

std::vector<Grid> sizes() {
  std::vector<Grid> g;
  const int64_t s[] = {1, 2, 3, 4, 5, 7, 8, 9, 16};
  for (int64_t t : {1, 2, 3, 5})
    for (int64_t h : s)
      for (int64_t w : s) g.push_back(make_grid(t, h, w, "test"));
  for (auto d : {std::array<int64_t, 3>{1, 1, 37}, {1, 37, 1}, {37, 1, 1}, {1, 1, 1}, {13, 30, 45}, {2, 17, 3}})
    g.push_back(make_grid(d[0], d[1], d[2], "test"));
  return g;
}

std::vector<OrderSpec> specs_for(const Grid& g) {
  std::vector<OrderSpec> v;
  for (const char* n : {"raster", "snake", "morton", "hilbert", "gilbert", "tiles", "residue:segment=12,rate=3",
                        "residue:segment=5,rate=5", "tiles:tile=1x1x1"})
    v.push_back(parse_order(n, g, 16, "test"));
  OrderSpec t = parse_order("tiles", g, 1, "test");
  t.tile = make_grid(std::min<int64_t>(2, g.t), std::min<int64_t>(3, g.h), std::min<int64_t>(2, g.w), "tile");
  v.push_back(t);
  return v;
}

// Chebyshev and L1 distance of two raster cells.
int64_t l1(const Grid& g, int64_t a, int64_t b) {
  auto c = [&](int64_t x) { return std::array<int64_t, 3>{x / (g.h * g.w), (x / g.w) % g.h, x % g.w}; };
  auto p = c(a), q = c(b);
  return std::abs(p[0] - q[0]) + std::abs(p[1] - q[1]) + std::abs(p[2] - q[2]);
}

// The classic d2xy of the 2D Hilbert curve on an n x n square (n a power of two), written here
// independently of the library's n-dimensional transform.
void d2xy(int64_t n, int64_t d, int64_t& x, int64_t& y) {
  int64_t t = d;
  x = y = 0;
  for (int64_t s = 1; s < n; s *= 2) {
    int64_t rx = 1 & (t / 2), ry = 1 & (t ^ rx);
    if (ry == 0) {
      if (rx == 1) {
        x = s - 1 - x;
        y = s - 1 - y;
      }
      std::swap(x, y);
    }
    x += s * rx;
    y += s * ry;
    t /= 4;
  }
}

}  // namespace

TEST_CASE("every order is a bijection with a correct inverse over many sizes") {
  int checked = 0;
  for (const Grid& g : sizes()) {
    for (const OrderSpec& s : specs_for(g)) {
      CAPTURE(g.str());
      CAPTURE(s.str());
      Perm p = grid_order(s, g);
      REQUIRE(int64_t(p.size()) == g.size());
      std::vector<int> seen(size_t(g.size()), 0);
      for (int64_t v : p) {
        REQUIRE(v >= 0);
        REQUIRE(v < g.size());
        ++seen[size_t(v)];
      }
      for (int c : seen) REQUIRE(c == 1);
      Perm inv = inverse_permutation(p);
      for (size_t i = 0; i < p.size(); ++i) REQUIRE(inv[size_t(p[i])] == int64_t(i));
      ++checked;
    }
  }
  CHECK(checked > 3000);
}

TEST_CASE("raster is the identity; snake steps are all face-adjacent") {
  for (const Grid& g : sizes()) {
    Perm r = raster_order(g);
    for (size_t i = 0; i < r.size(); ++i) REQUIRE(r[i] == int64_t(i));
    Perm s = snake_order(g);
    REQUIRE(s[0] == 0);
    for (size_t i = 1; i < s.size(); ++i) REQUIRE(l1(g, s[i - 1], s[i]) == 1);
  }
}

TEST_CASE("hilbert on power-of-two squares equals the textbook d2xy (up to the axis naming)") {
  for (int64_t n : {2, 4, 8, 16, 32, 64}) {
    Grid g = make_grid(1, n, n, "test");
    Perm p = hilbert_order(g);
    // The library's first axis (h) may play d2xy's x or y: decide from the first step, then check all.
    int64_t x, y;
    d2xy(n, 1, x, y);
    bool h_is_x = (p[1] / n) == x && (p[1] % n) == y;
    for (int64_t d = 0; d < n * n; ++d) {
      d2xy(n, d, x, y);
      int64_t h = h_is_x ? x : y, w = h_is_x ? y : x;
      REQUIRE(p[size_t(d)] == h * n + w);
    }
  }
}

TEST_CASE("hilbert on power-of-two cubes is a face-adjacent path; padded grids skip outside cells") {
  for (int64_t n : {2, 4, 8, 16}) {
    Grid g = make_grid(n, n, n, "test");
    Perm p = hilbert_order(g);
    for (size_t i = 1; i < p.size(); ++i) REQUIRE(l1(g, p[i - 1], p[i]) == 1);
  }
  // 5x6x7 is the 8-cube's order restricted to the cells inside.
  Grid big = make_grid(8, 8, 8, "test"), g = make_grid(5, 6, 7, "test");
  Perm full = hilbert_order(big), sub = hilbert_order(g);
  Perm expect;
  for (int64_t c : full) {
    int64_t t = c / 64, h = (c / 8) % 8, w = c % 8;
    if (t < 5 && h < 6 && w < 7) expect.push_back(g.index(t, h, w));
  }
  CHECK(sub == expect);
}

TEST_CASE("morton equals bit interleaving on the padded cube, cells outside skipped") {
  Grid g = make_grid(3, 5, 6, "test");  // padded to 8x8x8
  Perm p = morton_order(g);
  Perm expect;
  for (int64_t code = 0; code < 512; ++code) {
    int64_t t = 0, h = 0, w = 0;
    for (int b = 0; b < 3; ++b) {
      w |= ((code >> (3 * b)) & 1) << b;
      h |= ((code >> (3 * b + 1)) & 1) << b;
      t |= ((code >> (3 * b + 2)) & 1) << b;
    }
    if (t < 3 && h < 5 && w < 6) expect.push_back(g.index(t, h, w));
  }
  CHECK(p == expect);
}

TEST_CASE("tiles: raster order of tiles, raster inside, partial tiles at the edges") {
  Grid g = make_grid(1, 3, 5, "test");
  Perm p = tile_order(g, make_grid(1, 2, 2, "tile"));
  // tiles (rows 0-1) x (cols 0-1, 2-3, 4), then row 2 likewise.
  Perm expect = {0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14};
  CHECK(p == expect);
  CHECK(auto_tile(make_grid(13, 30, 45, "g"), 128).str() == "4x4x8");
  CHECK(auto_tile(make_grid(13, 30, 45, "g"), 64).str() == "4x4x4");
  CHECK_THROWS_AS(tile_order(g, make_grid(1, 4, 2, "tile")), UsageError);
}

TEST_CASE("residue order: p -> (p mod r)*(w/r) + p div r, dilated attention becomes diagonal blocks") {
  const int64_t w = 64, r = 4, n = 3 * w;
  Perm p = residue_order(n, w, r);
  Perm inv = inverse_permutation(p);
  for (int64_t q = 0; q < n; ++q) {
    int64_t s0 = (q / w) * w, pp = q - s0;
    REQUIRE(inv[size_t(q)] == s0 + (pp % r) * (w / r) + pp / r);
  }
  // Dilated attention with rate r inside a segment: q attends k iff same segment and q = k (mod r).
  // After reordering, every attending pair falls in one diagonal block of w/r tokens.
  const int64_t b = w / r;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t qi = p[size_t(i)], kj = p[size_t(j)];
      bool attends = qi / w == kj / w && (qi % w) % r == (kj % w) % r;
      REQUIRE(attends == (i / b == j / b));
    }
  // A last partial segment keeps the residue grouping.
  CHECK(residue_order(7, 8, 2) == Perm{0, 2, 4, 6, 1, 3, 5});
  CHECK_THROWS_AS(parse_order("residue:segment=10,rate=4", make_grid(1, 1, 10, "g"), 0, "--order"), UsageError);
}

TEST_CASE("sequences keep the text part in place at the head or the tail") {
  Grid g = make_grid(2, 3, 4, "test");
  OrderSpec s = parse_order("gilbert", g, 8, "test");
  Perm gp = grid_order(s, g);
  SequenceLayout head{g, 5, true}, tail{g, 5, false};
  Perm ph = sequence_order(s, head), pt = sequence_order(s, tail);
  REQUIRE(ph.size() == 29);
  for (int64_t i = 0; i < 5; ++i) CHECK(ph[size_t(i)] == i);
  for (int64_t i = 0; i < 24; ++i) CHECK(ph[size_t(5 + i)] == 5 + gp[size_t(i)]);
  for (int64_t i = 0; i < 24; ++i) CHECK(pt[size_t(i)] == gp[size_t(i)]);
  for (int64_t i = 24; i < 29; ++i) CHECK(pt[size_t(i)] == i);
  CHECK_THROWS_AS(sequence_order(s, SequenceLayout{g, -1, true}), UsageError);
}

TEST_CASE("apply_token_order / unapply_token_order over [B,S,inner] buffers") {
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd;
  const int64_t B = 2, S = 29, inner = 6;
  Grid g = make_grid(2, 3, 4, "test");
  Perm perm = sequence_order(parse_order("hilbert", g, 8, "t"), SequenceLayout{g, 5, true});
  std::vector<float> x(size_t(B * S * inner));
  for (auto& v : x) v = nd(rng);
  std::vector<float> y = apply_token_order(x, B, S, inner, perm);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t k = 0; k < inner; ++k)
        REQUIRE(y[size_t((b * S + i) * inner + k)] == x[size_t((b * S + perm[size_t(i)]) * inner + k)]);
  std::vector<float> back(x.size(), std::nanf(""));  // poisoned
  unapply_token_order(y.data(), back.data(), B, S, inner, perm);
  CHECK(back == x);
  CHECK_THROWS_AS(apply_token_order(x, B, S - 1, inner, perm), UsageError);
  Perm bad = perm;
  bad[3] = bad[4];
  CHECK_THROWS_AS(apply_token_order(x, B, S, inner, bad), UsageError);
}

TEST_CASE("grid and order parsing reject bad input with UsageError") {
  CHECK(parse_grid("13x30x45", "--grid").size() == 17550);
  CHECK(parse_grid("30x45", "--grid").is_2d);
  for (const char* bad : {"0x30x45", "13x-1x45", "13x30x45x2", "", "13xx45", "axb", "5"})
    CHECK_THROWS_AS(parse_grid(bad, "--grid"), UsageError);
  Grid g = make_grid(2, 2, 2, "g");
  CHECK_THROWS_AS(parse_order("peano", g, 8, "--order"), UsageError);
  CHECK_THROWS_AS(parse_order("tiles:tile=0x2x2", g, 8, "--order"), UsageError);
  CHECK_THROWS_AS(parse_order("residue", g, 8, "--order"), UsageError);
  CHECK_THROWS_AS(parse_order("gilbert:foo=1", g, 8, "--order"), UsageError);
  CHECK(split_order_list("raster,residue:segment=8,rate=2,tiles:tile=1x2x2") ==
        std::vector<std::string>{"raster", "residue:segment=8,rate=2", "tiles:tile=1x2x2"});
}
