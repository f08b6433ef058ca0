// ViT, SAM and video patterns: brute-force token-pair checks on small grids, with the identity order
// and with non-identity token orders (a seeded random permutation, and a boustrophedon order), with
// block sizes that do not divide the sequence.
#include <cmath>

#include "lib/error.h"
#include "tests/patterns/pattern_check.h"

using namespace bsattn;
using namespace bsattn::test;

namespace {
struct Cell {
  bool prefix;
  int64_t t, y, x;
};
// Grid coordinates of every sequence position under `order` (identity when null).
std::vector<Cell> cells_of(int64_t prefix, int64_t T, int64_t H, int64_t W, const std::vector<int64_t>* order) {
  int64_t n = prefix + T * H * W;
  std::vector<Cell> c(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    int64_t r = order ? (*order)[size_t(p)] : p;
    if (r < prefix) {
      c[size_t(p)] = {true, 0, 0, 0};
    } else {
      int64_t g = r - prefix;
      c[size_t(p)] = {false, g / (H * W), g / W % H, g % W};
    }
  }
  return c;
}

// Runs `check(order_or_null, label)` with no order, a random permutation and a snake order.
template <class F>
void with_orders(int64_t prefix, int64_t T, int64_t H, int64_t W, F check) {
  auto rnd = random_order(prefix + T * H * W, 1234);
  auto snake = snake_order(prefix, T, H, W);
  check(nullptr, "identity");
  check(&rnd, "random permutation");
  check(&snake, "snake");
}

bool near(const Cell& a, const Cell& b, int64_t rt, int64_t ry, int64_t rx) {
  return std::abs(a.t - b.t) <= rt && std::abs(a.y - b.y) <= ry && std::abs(a.x - b.x) <= rx;
}
}  // namespace

TEST_CASE("vit-spatial: exact 2D neighbourhood with CLS dense, any token order") {
  for (int64_t block : {16, 24, 64})
    for (auto radius : {std::pair<int64_t, int64_t>{1, 1}, {2, 0}}) {
      const int64_t cls = 2, H = 7, W = 9, n = cls + H * W;  // 65 tokens
      with_orders(cls, 1, H, W, [&](const std::vector<int64_t>* order, const char* label) {
        CAPTURE(label);
        CAPTURE(block);
        auto s = shape_of(n, n, block, block);
        auto m = gen("vit-spatial:grid=7x9,cls=2,radius=" + std::to_string(radius.first) + "," + std::to_string(radius.second), s,
                     false, 1, order);
        auto c = cells_of(cls, 1, H, W, order);
        auto ref = token_reference(s, false, [&](int64_t q, int64_t k) {
          return c[q].prefix || c[k].prefix || near(c[q], c[k], 0, radius.first, radius.second);
        });
        CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
      });
    }
}

TEST_CASE("vit-spatial: sizes from img/patch; lengths checked") {
  MaskRequest r;
  r.shape = shape_of(0, 0, 64, 64, 12, 4);
  r.pattern = parse_pattern("vit-spatial:img=224,patch=16,radius=1", "--pattern");
  REQUIRE(resolve_natural_lengths(r));
  CHECK(r.shape.q_len == 197);
  CHECK(r.shape.kv_len == 197);
  auto m = generate_mask(r);
  CHECK(m.shape.mq() == 4);
  CHECK_THROWS_WITH_AS(gen("vit-spatial:img=224,patch=16", shape_of(200, 200, 64, 64)), doctest::Contains("197"), UsageError);
  CHECK_THROWS_AS(gen("vit-spatial:img=224,patch=15", shape_of(200, 200, 64, 64)), UsageError);
}

TEST_CASE("vit-strided: grid row + grid column; vit-multiscale and vit-hybrid per head") {
  const int64_t cls = 1, H = 6, W = 11, n = cls + H * W;
  with_orders(cls, 1, H, W, [&](const std::vector<int64_t>* order, const char* label) {
    CAPTURE(label);
    auto s = shape_of(n, n, 8, 8, 3);
    auto c = cells_of(cls, 1, H, W, order);
    auto m = gen("vit-strided:grid=6x11", s, false, 1, order);
    auto ref = token_reference(s, false, [&](int64_t q, int64_t k) {
      return c[q].prefix || c[k].prefix || c[q].y == c[k].y || c[q].x == c[k].x;
    });
    CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
    auto ms = gen("vit-multiscale:grid=6x11,radii=0,1,3", s, false, 1, order);
    auto hy = gen("vit-hybrid:grid=6x11,dense_heads=1,radius=2", s, false, 1, order);
    for (int64_t h = 0; h < 3; ++h) {
      int64_t r = std::vector<int64_t>{0, 1, 3}[size_t(h)];
      auto refh = token_reference(s, false, [&](int64_t q, int64_t k) { return c[q].prefix || c[k].prefix || near(c[q], c[k], 0, r, r); });
      CHECK(diff_count(head_of(ms, h), refh, s.mk()) == 0);
      auto refy = token_reference(s, false, [&](int64_t q, int64_t k) {
        return h == 0 || c[q].prefix || c[k].prefix || near(c[q], c[k], 0, 2, 2);
      });
      CHECK(diff_count(head_of(hy, h), refy, s.mk()) == 0);
    }
  });
}

TEST_CASE("vit-random: CLS rows and columns full, diagonal kept, row counts at the density") {
  const int64_t cls = 3, n = cls + 20 * 20;
  auto order = random_order(n, 9);
  for (auto* ord : std::vector<const std::vector<int64_t>*>{nullptr, &order}) {
    auto s = shape_of(n, n, 16, 16, 2);
    auto m = gen("vit-random:grid=20x20,cls=3,density=0.3", s, false, 3, ord);
    auto c = cells_of(cls, 1, 20, 20, ord);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t p = 0; p < n; ++p)
        if (c[p].prefix)
          for (int64_t j = 0; j < s.mk(); ++j) {
            CHECK(m.at(0, h, p / 16, j));
            CHECK(m.at(0, h, j, p / 16));
          }
    for (int64_t i = 0; i < s.mq(); ++i) {
      CHECK(m.at(0, 0, i, i));
      int64_t kept = 0;
      for (int64_t j = 0; j < s.mk(); ++j) kept += m.at(0, 0, i, j);
      CHECK(kept >= std::llround(0.3 * double(s.mk())));
    }
  }
}

TEST_CASE("sam-prompt: prompt rows and columns fully set, image-to-image at the density") {
  for (int64_t prompt : {1, 5, 40})
    for (int64_t block : {16, 64}) {
      const int64_t H = 16, W = 16, n = prompt + H * W;
      auto order = random_order(n, 77);
      for (auto* ord : std::vector<const std::vector<int64_t>*>{nullptr, &order}) {
        auto s = shape_of(n, n, block, block);
        auto m = gen("sam-prompt:grid=16x16,prompt=" + std::to_string(prompt) + ",density=0.25", s, false, 11, ord);
        auto c = cells_of(prompt, 1, H, W, ord);
        for (int64_t p = 0; p < n; ++p)
          if (c[p].prefix)
            for (int64_t j = 0; j < s.mk(); ++j) {
              CHECK(m.at(0, 0, p / block, j));  // prompt tokens attend to all
              CHECK(m.at(0, 0, j, p / block));  // all attend to prompt tokens
            }
        for (int64_t i = 0; i < s.mq(); ++i) {
          int64_t kept = 0;
          for (int64_t j = 0; j < s.mk(); ++j) kept += m.at(0, 0, i, j);
          CHECK(kept >= std::max<int64_t>(1, std::llround(0.25 * double(s.mk()))));
          CHECK(m.at(0, 0, i, i));
        }
      }
    }
}

TEST_CASE("sam-hierarchical, sam-hybrid: non-overlapping windows per head; sam-region: focus regions") {
  const int64_t P = 3, H = 12, W = 10, n = P + H * W;
  with_orders(P, 1, H, W, [&](const std::vector<int64_t>* order, const char* label) {
    CAPTURE(label);
    auto s = shape_of(n, n, 16, 16, 3);
    auto c = cells_of(P, 1, H, W, order);
    auto hier = gen("sam-hierarchical:grid=12x10,prompt=3,windows=3,5,12", s, false, 1, order);
    for (int64_t h = 0; h < 3; ++h) {
      int64_t w = std::vector<int64_t>{3, 5, 12}[size_t(h)];
      auto ref = token_reference(s, false, [&](int64_t q, int64_t k) {
        return c[q].prefix || c[k].prefix || (c[q].y / w == c[k].y / w && c[q].x / w == c[k].x / w);
      });
      CHECK(diff_count(head_of(hier, h), ref, s.mk()) == 0);
    }
    auto hyb = gen("sam-hybrid:grid=12x10,prompt=3,dense_heads=1,window=4", s, false, 1, order);
    CHECK(hyb.heads[0].type == HeadType::Dense);
    auto refw = token_reference(s, false, [&](int64_t q, int64_t k) {
      return c[q].prefix || c[k].prefix || (c[q].y / 4 == c[k].y / 4 && c[q].x / 4 == c[k].x / 4);
    });
    CHECK(diff_count(head_of(hyb, 1), refw, s.mk()) == 0);
    auto reg = gen("sam-region:grid=12x10,prompt=3,points=2,3,margin=1,boxes=8,6,10,9,radius=1", s, false, 1, order);
    auto in_region = [&](const Cell& a) {
      return !a.prefix && ((std::abs(a.y - 2) <= 1 && std::abs(a.x - 3) <= 1) || (a.y >= 8 && a.y <= 10 && a.x >= 6 && a.x <= 9));
    };
    auto refr = token_reference(s, false, [&](int64_t q, int64_t k) {
      return c[q].prefix || c[k].prefix || in_region(c[q]) || in_region(c[k]) || near(c[q], c[k], 0, 1, 1);
    });
    CHECK(diff_count(head_of(reg, 0), refr, s.mk()) == 0);
  });
  auto s = shape_of(n, n, 16, 16);
  CHECK_THROWS_AS(gen("sam-region:grid=12x10,prompt=3", s), UsageError);
  CHECK_THROWS_AS(gen("sam-region:grid=12x10,prompt=3,points=12,0", s), UsageError);
  CHECK_THROWS_AS(gen("sam-region:grid=12x10,prompt=3,points=1", s), UsageError);
}

TEST_CASE("sam-cross: decoder-to-encoder cross attention with Mq != Mk") {
  const int64_t H = 16, W = 14, n = H * W, T = 7;
  auto order = random_order(n, 5);
  for (auto* ord : std::vector<const std::vector<int64_t>*>{nullptr, &order}) {
    MaskRequest r;
    r.shape = shape_of(0, 0, 4, 16);
    r.pattern = parse_pattern("sam-cross:grid=16x14,tokens=7,points=3,4,margin=1,stride=5", "--pattern");
    r.token_order = ord;
    REQUIRE(resolve_natural_lengths(r));
    CHECK(r.shape.q_len == T);
    CHECK(r.shape.kv_len == n);
    auto m = generate_mask(r);
    CHECK(m.shape.mq() == 2);
    CHECK(m.shape.mk() == 14);
    auto s = m.shape;
    auto ref = token_reference(s, false, [&](int64_t, int64_t k) {
      int64_t c = ord ? (*ord)[size_t(k)] : k;
      int64_t y = c / W, x = c % W;
      return (std::abs(y - 3) <= 1 && std::abs(x - 4) <= 1) || (y % 5 == 0 && x % 5 == 0);
    });
    CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
  }
}

TEST_CASE("video-3d: a block pair is kept exactly when some token pair is within the 3D radius") {
  const int64_t text = 5, T = 4, H = 6, W = 7, n = text + T * H * W;  // 173 tokens
  for (int64_t block : {16, 32, 50})
    for (auto r : {std::array<int64_t, 3>{1, 1, 1}, {0, 2, 1}, {2, 0, 3}})
      with_orders(text, T, H, W, [&](const std::vector<int64_t>* order, const char* label) {
        CAPTURE(label);
        CAPTURE(block);
        auto s = shape_of(n, n, block, block);
        auto m = gen("video-3d:grid=4x6x7,text=5,radius=" + std::to_string(r[0]) + "," + std::to_string(r[1]) + "," +
                         std::to_string(r[2]),
                     s, false, 1, order);
        auto c = cells_of(text, T, H, W, order);
        auto ref = token_reference(s, false, [&](int64_t q, int64_t k) {
          return c[q].prefix || c[k].prefix || near(c[q], c[k], r[0], r[1], r[2]);
        });
        CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
      });
  // Different query and key blocks.
  auto s = shape_of(n, n, 16, 40);
  auto m = gen("video-3d:grid=4x6x7,text=5,radius=1", s);
  auto c = cells_of(text, T, H, W, nullptr);
  auto ref = token_reference(s, false, [&](int64_t q, int64_t k) { return c[q].prefix || c[k].prefix || near(c[q], c[k], 1, 1, 1); });
  CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
}

TEST_CASE("video-sta: tile windows shifted inward at borders, tile-major or given order") {
  const int64_t text = 3, T = 5, H = 6, W = 9, n = text + T * H * W;  // partial tiles on every axis
  const int64_t tt = 2, ty = 4, tx = 4, wt = 3, wy = 1, wx = 2;
  int64_t nt[3] = {(T + tt - 1) / tt, (H + ty - 1) / ty, (W + tx - 1) / tx};
  auto in_window = [](int64_t a, int64_t b, int64_t ntiles, int64_t w) {  // key tile b in the window of query tile a
    int64_t start = std::max<int64_t>(0, std::min(a - w / 2, std::max<int64_t>(0, ntiles - w)));
    return b >= start && b < start + w;
  };
  auto allowed = [&](const Cell& q, const Cell& k) {
    return q.prefix || k.prefix ||
           (in_window(q.t / tt, k.t / tt, nt[0], wt) && in_window(q.y / ty, k.y / ty, nt[1], wy) &&
            in_window(q.x / tx, k.x / tx, nt[2], wx));
  };
  // Tile-major order, written out here independently: prefix, then tiles in raster order.
  std::vector<int64_t> tiled;
  for (int64_t k = 0; k < text; ++k) tiled.push_back(k);
  for (int64_t a = 0; a < nt[0]; ++a)
    for (int64_t b = 0; b < nt[1]; ++b)
      for (int64_t d = 0; d < nt[2]; ++d)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
              if (t / tt == a && y / ty == b && x / tx == d) tiled.push_back(text + (t * H + y) * W + x);
  REQUIRE(int64_t(tiled.size()) == n);
  for (int64_t block : {16, 33}) {
    auto s = shape_of(n, n, block, block);
    std::string spec = "video-sta:grid=5x6x9,text=3,tile=2,4,4,window=3,1,2";
    auto m = gen(spec, s);  // default layout: tile-major
    auto c = cells_of(text, T, H, W, &tiled);
    auto ref = token_reference(s, false, [&](int64_t q, int64_t k) { return allowed(c[q], c[k]); });
    CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
    with_orders(text, T, H, W, [&](const std::vector<int64_t>* order, const char* label) {
      CAPTURE(label);
      auto mo = gen(spec + (order ? "" : ",layout=raster"), s, false, 1, order);
      auto co = cells_of(text, T, H, W, order);
      auto refo = token_reference(s, false, [&](int64_t q, int64_t k) { return allowed(co[q], co[k]); });
      CHECK(diff_count(head_of(mo, 0), refo, s.mk()) == 0);
    });
  }
}

TEST_CASE("video-radial: spatial window halves as frame distance doubles") {
  const int64_t text = 4, T = 9, H = 8, W = 8, n = text + T * H * W;
  auto radius_at = [](int64_t r, int64_t d) -> int64_t {  // -1: frame skipped
    int64_t width = 2 * r + 1;
    for (int64_t lim = 2; lim <= d; lim *= 2) width /= 2;
    return width >= 1 ? (width - 1) / 2 : -1;
  };
  CHECK(radius_at(3, 0) == 3);
  CHECK(radius_at(3, 1) == 3);
  CHECK(radius_at(3, 2) == 1);  // width 7 -> 3
  CHECK(radius_at(3, 4) == 0);  // width 1
  CHECK(radius_at(3, 8) == -1);  // width 0: skipped
  for (int64_t block : {32, 45})
    with_orders(text, T, H, W, [&](const std::vector<int64_t>* order, const char* label) {
      CAPTURE(label);
      auto s = shape_of(n, n, block, block);
      auto m = gen("video-radial:grid=9x8x8,text=4,radius=3,2", s, false, 1, order);
      auto c = cells_of(text, T, H, W, order);
      auto ref = token_reference(s, false, [&](int64_t q, int64_t k) {
        if (c[q].prefix || c[k].prefix) return true;
        int64_t d = std::abs(c[q].t - c[k].t), ry = radius_at(3, d), rx = radius_at(2, d);
        return ry >= 0 && rx >= 0 && std::abs(c[q].y - c[k].y) <= ry && std::abs(c[q].x - c[k].x) <= rx;
      });
      CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
    });
}

TEST_CASE("grid patterns reject orders of the wrong size or with repeats") {
  auto s = shape_of(173, 173, 16, 16);
  std::vector<int64_t> short_order(100, 0), repeated(173, 0);
  CHECK_THROWS_AS(gen("video-3d:grid=4x6x7,text=5", s, false, 1, &short_order), UsageError);
  CHECK_THROWS_AS(gen("video-3d:grid=4x6x7,text=5", s, false, 1, &repeated), UsageError);
  CHECK_THROWS_AS(gen("video-3d:grid=4x6,text=5", s), UsageError);
  CHECK_THROWS_AS(gen("video-3d:grid=4x6x7,text=5,radius=1,2", s), UsageError);
}
