// Defining properties of the generic patterns, on several sizes including ones that are not
// multiples of the block and q_len != kv_len. References are plain loops written here.
#include <cmath>
#include <cstdio>

#include "lib/error.h"
#include "lib/mask_io.h"
#include "lib/mask_stats.h"
#include "tests/patterns/pattern_check.h"

using namespace bsattn;
using namespace bsattn::test;

namespace {
// Sizes: (q_len, kv_len, block_q, block_kv); tails and q != kv included.
const std::vector<std::array<int64_t, 4>> kSizes = {
    {256, 256, 32, 32}, {1000, 1000, 64, 64}, {333, 777, 32, 16}, {777, 333, 16, 32}, {130, 130, 128, 128}};

int64_t diag_of(const MaskShape& s, int64_t i) {  // plain restatement of the aligned diagonal block
  int64_t key = std::min(s.q_len, (i + 1) * s.block_q) - 1 + s.kv_len - s.q_len;
  return key < 0 ? -1 : std::min(key / s.block_kv, s.mk() - 1);
}
int64_t mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }
}  // namespace

TEST_CASE("local: exactly the blocks within the radius (blocks and tokens)") {
  for (auto& z : kSizes)
    for (int64_t w : {0, 1, 3}) {
      auto s = shape_of(z[0], z[1], z[2], z[3]);
      auto m = gen("local:window=" + std::to_string(w), s);
      auto ref = block_reference(s, [&](int64_t i, int64_t j) { return std::abs(j - diag_of(s, i)) <= w; });
      CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
      for (bool causal : {false, true}) {
        int64_t wt = w * 37 + 5;  // token radius, not a multiple of any block
        auto mt = gen("local:unit=tokens,window=" + std::to_string(wt), s, causal);
        auto reft = token_reference(s, causal, [&](int64_t q, int64_t k) {
          return std::abs(k - (q + s.kv_len - s.q_len)) <= wt;
        });
        CHECK(diff_count(head_of(mt, 0), reft, s.mk()) == 0);
      }
    }
}

TEST_CASE("random: exact row counts, density within tolerance, diagonal always kept, seeded") {
  for (auto& z : kSizes)
    for (bool causal : {false, true})
      for (double density : {0.1, 0.37, 0.8}) {
        auto s = shape_of(z[0], z[1], z[2], z[3], 3, 2);
        auto m = gen("random:density=" + std::to_string(density), s, causal, 42);
        auto g = m.geometry();
        int64_t kept = 0, possible = 0;
        for (int64_t b = 0; b < s.batch; ++b)
          for (int64_t h = 0; h < s.heads; ++h)
            for (int64_t i = 0; i < s.mq(); ++i) {
              int64_t vis = 0, n = 0;
              for (int64_t j = 0; j < s.mk(); ++j) {
                bool visible = !causal || g.causal_visible(i, j);
                vis += visible;
                if (m.at(b, h, i, j)) {
                  CHECK(visible);
                  ++n;
                }
              }
              if (vis == 0) continue;
              // Density definition: round(density * visible blocks of the row), at least the diagonal.
              CHECK(n == std::max<int64_t>(1, std::llround(density * double(vis))));
              if (diag_of(s, i) >= 0) CHECK(m.at(b, h, i, diag_of(s, i)));
              kept += n;
              possible += vis;
            }
        // Overall density: rounding moves each row by at most 0.5 block, the at-least-the-diagonal rule
        // by at most 1, so the total is within one block per row of density * visible blocks.
        double rows = double(s.batch * s.heads * s.mq());
        CHECK(std::abs(double(kept) - density * double(possible)) <= rows);
      }
  auto s = shape_of(4096, 4096, 64, 64, 2);
  auto a = gen("random:density=0.3", s, false, 7), b = gen("random:density=0.3", s, false, 7);
  auto c = gen("random:density=0.3", s, false, 8), d = gen("random:density=0.3,seed=7", s, false, 99);
  CHECK(a.bits == b.bits);
  CHECK(a.bits != c.bits);
  CHECK(a.bits == d.bits);  // the pattern's own seed overrides the run's
  CHECK(head_of(a, 0) != head_of(a, 1));  // heads draw different blocks
  // Uniformity: every off-diagonal block is drawn about equally often over the rows (64 rows, 63 candidates,
  // 18 draws each: mean column count 18.3; a 5-sigma band of a binomial(64, 0.29) is [7, 30]).
  for (int64_t j = 0; j < s.mk(); ++j) {
    int64_t col = 0;
    for (int64_t i = 0; i < s.mq(); ++i) col += a.at(0, 0, i, j);
    CHECK(col >= 7);
    CHECK(col <= 30);
  }
}

TEST_CASE("streaming: sink blocks and local blocks exactly") {
  for (auto& z : kSizes)
    for (int64_t sink : {0, 1, 3})
      for (int64_t local : {1, 2, 5}) {
        auto s = shape_of(z[0], z[1], z[2], z[3]);
        auto m = gen("streaming:sink=" + std::to_string(sink) + ",local=" + std::to_string(local), s);
        auto ref = block_reference(s, [&](int64_t i, int64_t j) {
          int64_t d = diag_of(s, i);
          return j < sink || (j <= d && j > d - local);
        });
        CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
        CHECK(m.heads[0].type == HeadType::Streaming);
        CHECK(m.heads[0].sink_blocks == sink);
        CHECK(m.heads[0].local_blocks == local);
      }
}

TEST_CASE("dense and causal") {
  auto s = shape_of(333, 777, 32, 16);
  auto d = gen("dense", s);
  CHECK(std::count(d.bits.begin(), d.bits.end(), 1) == s.cells());
  CHECK(d.heads[0].type == HeadType::Dense);
  auto c = gen("causal", s);
  CHECK(c.causal);
  auto ref = token_reference(s, true, [](int64_t, int64_t) { return true; });
  CHECK(diff_count(head_of(c, 0), ref, s.mk()) == 0);
}

TEST_CASE("dilated: diagonal + offsets = off (mod r) within window*r, per-head offsets") {
  for (auto& z : kSizes) {
    auto s = shape_of(z[0], z[1], z[2], z[3], 4);
    auto m = gen("dilated:rates=1,3,window=2,per_head_offset=true", s);
    for (int64_t h = 0; h < 4; ++h) {
      auto ref = block_reference(s, [&](int64_t i, int64_t j) {
        int64_t delta = j - diag_of(s, i);
        if (delta == 0) return true;
        for (int64_t r : {1, 3})
          if (std::abs(delta) <= 2 * r && mod(delta - h % r, r) == 0) return true;
        return false;
      });
      CHECK(diff_count(head_of(m, h), ref, s.mk()) == 0);
    }
  }
}

TEST_CASE("strided: Sparse Transformer local + strided columns") {
  for (auto& z : kSizes) {
    auto s = shape_of(z[0], z[1], z[2], z[3]);
    auto m = gen("strided:stride=3", s);
    auto ref = block_reference(s, [&](int64_t i, int64_t j) {
      int64_t delta = j - diag_of(s, i);
      return std::abs(delta) < 3 || mod(delta, 3) == 0;
    });
    CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
  }
}

TEST_CASE("fixed: DeepSpeed local windows + per-head global blocks") {
  for (auto& z : kSizes)
    for (bool horizontal : {false, true}) {
      auto s = shape_of(z[0], z[1], z[2], z[3], 3);
      const int64_t L = 4, G = 1, P = 3;
      auto m = gen("fixed:num_local_blocks=4,num_global_blocks=1,num_different_global_patterns=3,horizontal_global=" +
                       std::string(horizontal ? "true" : "false"),
                   s);
      for (int64_t h = 0; h < 3; ++h) {
        int64_t p = h % P;
        auto global = [&](int64_t j) {
          int64_t ws = j / L * L, len = std::min(L, s.mk() - ws), off = j - ws;
          return len == L ? (off >= L - (p + 1) * G && off < L - p * G) : off >= len - G;
        };
        auto ref = block_reference(s, [&](int64_t i, int64_t j) {
          int64_t d = diag_of(s, i);
          return (d >= 0 && d / L == j / L) || global(j) || (horizontal && d >= 0 && global(d));
        });
        CHECK(diff_count(head_of(m, h), ref, s.mk()) == 0);
      }
    }
  CHECK_THROWS_AS(gen("fixed:num_local_blocks=4,num_global_blocks=2,num_different_global_patterns=3", shape_of(512, 512, 32, 32)),
                  UsageError);
}

TEST_CASE("global-local and longformer: token-level global rows/columns + window") {
  for (auto& z : kSizes)
    for (bool causal : {false, true}) {
      auto s = shape_of(z[0], z[1], z[2], z[3]);
      auto m = gen("global-local:global=21,window=45", s, causal);
      auto ref = token_reference(s, causal, [&](int64_t q, int64_t k) {
        return q < 21 || k < 21 || std::abs(k - (q + s.kv_len - s.q_len)) <= 45;
      });
      CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
      auto lf = gen("longformer:window=50,global=0,77,120", s, causal);
      auto reflf = token_reference(s, causal, [&](int64_t q, int64_t k) {
        auto g = [](int64_t t) { return t == 0 || t == 77 || t == 120; };
        return g(q) || g(k) || std::abs(k - (q + s.kv_len - s.q_len)) <= 25;
      });
      CHECK(diff_count(head_of(lf, 0), reflf, s.mk()) == 0);
    }
}

TEST_CASE("bigbird: window, global rows/columns, exactly `random` extra blocks per row") {
  for (auto& z : kSizes)
    for (bool causal : {false, true}) {
      auto s = shape_of(z[0], z[1], z[2], z[3], 2);
      auto m = gen("bigbird:window=1,global=2,random=3", s, causal, 5);
      auto g = m.geometry();
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < s.mq(); ++i) {
          int64_t fixed = 0, n = 0, vis = 0;
          for (int64_t j = 0; j < s.mk(); ++j) {
            bool visible = !causal || g.causal_visible(i, j);
            bool structural = std::abs(j - diag_of(s, i)) <= 1 || i < 2 || j < 2;
            vis += visible;
            fixed += visible && structural;
            if (visible && structural) CHECK(m.at(0, h, i, j));
            n += m.at(0, h, i, j);
          }
          CHECK(n == std::min(vis, fixed + 3));
        }
    }
}

TEST_CASE("prefix-lm: prefix seen by all, causal after it; rejects --causal") {
  for (auto& z : kSizes) {
    auto s = shape_of(z[0], z[1], z[2], z[3]);
    auto m = gen("prefix-lm:prefix=70", s);
    auto ref = token_reference(s, false, [&](int64_t q, int64_t k) { return k < 70 || k <= q + s.kv_len - s.q_len; });
    CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
  }
  CHECK_THROWS_AS(gen("prefix-lm:prefix=70", shape_of(256, 256, 32, 32), true), UsageError);
}

TEST_CASE("document: block-diagonal by lengths, optionally causal inside") {
  std::vector<int64_t> len = {100, 37, 1, 300, 562};  // sums to 1000
  std::vector<int64_t> doc(1000);
  for (int64_t d = 0, t = 0; d < 5; ++d)
    for (int64_t k = 0; k < len[size_t(d)]; ++k) doc[size_t(t++)] = d;
  for (int64_t b : {16, 64, 100})
    for (bool ci : {false, true}) {
      auto s = shape_of(1000, 1000, b, b);
      auto m = gen(std::string("document:lengths=100,37,1,300,562,causal_inside=") + (ci ? "true" : "false"), s);
      auto ref = token_reference(s, false, [&](int64_t q, int64_t k) { return doc[q] == doc[k] && (!ci || k <= q); });
      CHECK(diff_count(head_of(m, 0), ref, s.mk()) == 0);
    }
  CHECK_THROWS_AS(gen("document:lengths=100,200", shape_of(1000, 1000, 64, 64)), UsageError);
  CHECK_THROWS_AS(gen("document:lengths=500,500", shape_of(1000, 900, 64, 64)), UsageError);
}

TEST_CASE("hybrid and multiscale: per-head shapes") {
  auto s = shape_of(1000, 1000, 64, 64, 5);
  auto m = gen("hybrid:dense_heads=2,sink=1,local=3", s);
  for (int64_t h = 0; h < 5; ++h) {
    if (h < 2) {
      CHECK(m.heads[h].type == HeadType::Dense);
      CHECK(std::count(m.head_bits(0, h), m.head_bits(0, h) + s.head_cells(), 1) == s.head_cells());
    } else {
      CHECK(m.heads[h].type == HeadType::Streaming);
      auto ref = block_reference(s, [&](int64_t i, int64_t j) { return j < 1 || (j <= diag_of(s, i) && j > diag_of(s, i) - 3); });
      CHECK(diff_count(head_of(m, h), ref, s.mk()) == 0);
    }
  }
  CHECK_THROWS_AS(gen("hybrid:dense_heads=6", s), UsageError);
  auto ms = gen("multiscale:radii=0,2,5", s);
  for (int64_t h = 0; h < 5; ++h) {
    int64_t r = std::vector<int64_t>{0, 2, 5}[size_t(h % 3)];
    auto ref = block_reference(s, [&](int64_t i, int64_t j) { return std::abs(j - diag_of(s, i)) <= r; });
    CHECK(diff_count(head_of(ms, h), ref, s.mk()) == 0);
  }
}

TEST_CASE("head map: ranges get their own patterns; parsing errors") {
  MaskRequest r;
  r.shape = shape_of(512, 512, 64, 64, 4);
  r.head_map = parse_head_map("0-1=dense;2=local:window=1;3-3=streaming:sink=1,local=2", 4);
  auto m = generate_mask(r);
  CHECK(m.heads[0].type == HeadType::Dense);
  CHECK(m.heads[1].type == HeadType::Dense);
  CHECK(m.heads[2].type == HeadType::Sparse);
  CHECK(m.heads[3].type == HeadType::Streaming);
  CHECK(m.spec["head_map"].get<std::string>().find("2-2=local:unit=blocks,window=1") != std::string::npos);
  CHECK_THROWS_WITH_AS(parse_head_map("0-2=dense;2-3=dense", 4), doctest::Contains("assigned twice"), UsageError);
  CHECK_THROWS_WITH_AS(parse_head_map("0-1=dense;3=dense", 4), doctest::Contains("head 2 is not assigned"), UsageError);
  CHECK_THROWS_WITH_AS(parse_head_map("0-4=dense", 4), doctest::Contains("outside heads 0-3"), UsageError);
  CHECK_THROWS_WITH_AS(parse_head_map("3-1=dense", 4), doctest::Contains("reversed"), UsageError);
  CHECK_THROWS_WITH_AS(parse_head_map("0-3", 4), doctest::Contains("RANGE=SPEC"), UsageError);
  CHECK_THROWS_WITH_AS(parse_head_map("a-3=dense", 4), doctest::Contains("not an integer"), UsageError);
  r.pattern = parse_pattern("dense", "--pattern");
  CHECK_THROWS_AS(generate_mask(r), UsageError);  // both --pattern and --head-map
}

TEST_CASE("bad parameters are usage errors naming the parameter") {
  auto s = shape_of(512, 512, 64, 64);
  CHECK_THROWS_WITH_AS(gen("local:window=-1", s), doctest::Contains("'window'"), UsageError);
  CHECK_THROWS_WITH_AS(gen("random:density=1.5", s), doctest::Contains("'density'"), UsageError);
  CHECK_THROWS_WITH_AS(gen("random:density=nan", s), doctest::Contains("'density'"), UsageError);
  CHECK_THROWS_WITH_AS(gen("local:radius=2", s), doctest::Contains("no parameter 'radius'"), UsageError);
  CHECK_THROWS_WITH_AS(gen("nosuch", s), doctest::Contains("unknown pattern"), UsageError);
  CHECK_THROWS_WITH_AS(gen("local:unit=pixels", s), doctest::Contains("allowed: blocks, tokens"), UsageError);
  CHECK_THROWS_AS(gen("prefix-lm", s), UsageError);  // required parameter
}

TEST_CASE("custom: a mask from .json or .npy, checked against the sizes") {
  auto s1 = shape_of(1000, 900, 64, 64, 1);
  auto src = gen("random:density=0.4", s1, false, 3);
  save_mask("custom_src.json", src);
  save_mask("custom_src.npy", src);
  auto s = shape_of(1000, 900, 64, 64, 3, 2);
  for (const char* f : {"custom_src.json", "custom_src.npy"}) {
    auto m = gen(std::string("custom:file=") + f, s);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h) CHECK(head_of(m, h, b) == head_of(src, 0));  // one head broadcast
  }
  CHECK_THROWS_WITH_AS(gen("custom:file=custom_src.json", shape_of(1000, 1000, 64, 64)), doctest::Contains("kv_len=900"),
                       UsageError);
  CHECK_THROWS_AS(gen("custom:file=custom_src.npy", shape_of(1000, 2000, 64, 64)), UsageError);
  CHECK_THROWS_AS(gen("custom:file=no_such_mask.npy", s), UsageError);
  CHECK_THROWS_AS(gen("custom", s), UsageError);
  std::remove("custom_src.json");
  std::remove("custom_src.npy");
}
