// The mask model: statistics on hand-computed cases, algebra against element-wise references, block
// size conversion (conservative), and exact round trips through CSR, .npy and .json.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "lib/error.h"
#include "lib/mask_algebra.h"
#include "lib/mask_io.h"
#include "lib/mask_stats.h"
#include "lib/npy.h"
#include "lib/rng.h"

using namespace bsattn;

namespace {
MaskShape shape(int64_t q, int64_t k, int64_t bq, int64_t bk, int64_t h = 1, int64_t b = 1) {
  MaskShape s;
  s.q_len = q;
  s.kv_len = k;
  s.block_q = bq;
  s.block_kv = bk;
  s.heads = h;
  s.batch = b;
  return s;
}
BlockMask random_mask(const MaskShape& s, double p, uint64_t seed, bool causal = false) {
  BlockMask m(s);
  Rng rng(seed);
  for (auto& b : m.bits) b = rng.uniform() < p;
  m.causal = causal;
  m.apply_causal();
  m.normalize_head_types();
  return m;
}
}  // namespace

TEST_CASE("stats: hand-computed causal case with tails") {
  // q_len = kv_len = 5, blocks of 2: 3x3 blocks, the last ones hold one token.
  BlockMask m(shape(5, 5, 2, 2));
  m.causal = true;
  m.set(0, 0, 0, 0);  // pairs q0:k0, q1:k0..1 -> 3
  m.set(0, 0, 2, 0);  // q4 x k0..1 -> 2
  m.set(0, 0, 2, 2);  // q4 x k4 -> 1
  auto st = mask_stats(m);
  CHECK(st.computed_pairs == 6);
  CHECK(st.dense_pairs == 15);  // 5*6/2
  CHECK(st.kept_blocks == 3);
  // Density: kept / visible blocks; the visible ones are (0,0), (1,0..1), (2,0..2): 6 of 9.
  CHECK(st.visible_blocks == 6);
  CHECK(st.density == doctest::Approx(3.0 / 6));
  CHECK(st.bitmap_fill == doctest::Approx(3.0 / 9));
  CHECK(st.heads[0].density == doctest::Approx(3.0 / 6));
  CHECK(st.heads[0].pair_density == doctest::Approx(6.0 / 15));
  CHECK(st.pair_density() == doctest::Approx(6.0 / 15));
  auto& h = st.heads[0];
  CHECK(h.row_min == 0);
  CHECK(h.row_max == 2);
  CHECK(h.row_mean == doctest::Approx(1.0));
  CHECK(h.empty_rows == 1);
  CHECK(st.empty_rows == 1);
  CHECK(h.diag_coverage == doctest::Approx(2.0 / 3));
  CHECK(h.bandwidth == 2);
}

TEST_CASE("stats: q_len != kv_len, bottom-right aligned causal, partial last key block") {
  // q_len 3, kv_len 7, blocks of 4: 1x2 blocks. Causal offset 4: q0 sees k0..4, q1 k0..5, q2 k0..6.
  BlockMask m(shape(3, 7, 4, 4));
  std::fill(m.bits.begin(), m.bits.end(), uint8_t(1));
  m.causal = true;
  CHECK(mask_stats(m).computed_pairs == 12 + 6);
  m.causal = false;
  CHECK(mask_stats(m).computed_pairs == 12 + 9);
  // Query longer than keys: the first queries see nothing under causal.
  BlockMask n(shape(9, 4, 2, 2));
  std::fill(n.bits.begin(), n.bits.end(), uint8_t(1));
  n.causal = true;
  // offset -5: q5 sees k0, q6 k0..1, q7 k0..2, q8 k0..3 -> 1+2+3+4
  CHECK(mask_stats(n).computed_pairs == 10);
  CHECK(n.geometry().diag_block(0) == -1);
  n.apply_causal();
  CHECK(n.at(0, 0, 0, 0) == false);
  CHECK(n.at(0, 0, 3, 0) == true);  // q6, q7
}

TEST_CASE("stats: per head over a batch") {
  BlockMask m(shape(256, 256, 64, 64, 2, 3));
  for (int64_t b = 0; b < 3; ++b) m.set(b, 1, 1, 2);
  auto st = mask_stats(m);
  CHECK(st.heads[0].kept_blocks == 0);
  CHECK(st.heads[0].empty_rows == 12);
  CHECK(st.heads[1].kept_blocks == 3);
  CHECK(st.heads[1].density == doctest::Approx(3.0 / 48));
  CHECK(st.heads[1].computed_pairs == 3 * 64 * 64);
  CHECK(forward_flops(st.computed_pairs, 128) == doctest::Approx(4.0 * 128 * 3 * 64 * 64));
}

TEST_CASE("algebra: union, intersection, difference, complement, causal restriction") {
  for (bool causal : {false, true}) {
    auto s = shape(1000, 700, 64, 32, 3, 2);
    auto a = random_mask(s, 0.4, 1, causal), b = random_mask(s, 0.5, 2, causal);
    auto g = a.geometry();
    auto u = mask_union(a, b), in = mask_intersection(a, b), d = mask_difference(a, b), c = mask_complement(a);
    for (size_t k = 0; k < a.bits.size(); ++k) {
      CHECK(u.bits[k] == (a.bits[k] | b.bits[k]));
      CHECK(in.bits[k] == (a.bits[k] & b.bits[k]));
      CHECK(d.bits[k] == (a.bits[k] & !b.bits[k]));
      int64_t j = int64_t(k) % s.mk(), i = int64_t(k) / s.mk() % s.mq();
      bool visible = !causal || g.causal_visible(i, j);
      CHECK(c.bits[k] == (visible && !a.bits[k]));
    }
    CHECK(mask_union(a, mask_complement(a)).heads[0].type == HeadType::Dense);
  }
  auto s = shape(512, 512, 64, 64);
  auto full = random_mask(s, 2.0, 3);  // every block
  CHECK(full.heads[0].type == HeadType::Dense);
  auto cr = causal_restrict(full);
  CHECK(cr.causal);
  CHECK(cr.heads[0].type == HeadType::Dense);  // dense causal
  for (int64_t i = 0; i < s.mq(); ++i)
    for (int64_t j = 0; j < s.mk(); ++j) CHECK(cr.at(0, 0, i, j) == (j <= i));
  CHECK_THROWS_AS(mask_union(full, random_mask(shape(512, 512, 32, 32), 0.5, 4)), UsageError);
}

TEST_CASE("algebra: assign_head and broadcast_batch") {
  auto s = shape(300, 300, 32, 32, 4);
  auto a = random_mask(s, 0.3, 5), b = random_mask(s, 0.6, 6);
  auto before = a;
  assign_head(a, 2, b, 0);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < s.mq(); ++i)
      for (int64_t j = 0; j < s.mk(); ++j) CHECK(a.at(0, h, i, j) == (h == 2 ? b.at(0, 0, i, j) : before.at(0, h, i, j)));
  CHECK_THROWS_AS(assign_head(a, 4, b, 0), UsageError);
  CHECK_THROWS_AS(assign_head(a, 0, random_mask(shape(300, 300, 64, 64), 0.5, 1), 0), UsageError);
  auto bc = broadcast_batch(b, 3);
  CHECK(bc.shape.batch == 3);
  for (int64_t x = 0; x < 3; ++x)
    CHECK(std::equal(b.bits.begin(), b.bits.end(), bc.bits.begin() + x * int64_t(b.bits.size())));
  CHECK_THROWS_AS(broadcast_batch(bc, 2), UsageError);
}

TEST_CASE("convert_block_size: 64 -> 128 takes the union, 128 -> 64 splits, round trip is conservative") {
  for (int64_t len : {1024, 1000, 333}) {
    auto s = shape(len, len + 77, 64, 64, 2);
    auto fine = random_mask(s, 0.15, uint64_t(len));
    auto coarse = convert_block_size(fine, 128, 128);
    CHECK(coarse.shape.mq() == (len + 127) / 128);
    // Reference: a coarse block is kept when a fine block overlapping its tokens is kept.
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t I = 0; I < coarse.shape.mq(); ++I)
        for (int64_t J = 0; J < coarse.shape.mk(); ++J) {
          bool any = false;
          for (int64_t i = 0; i < s.mq(); ++i)
            for (int64_t j = 0; j < s.mk(); ++j)
              if (i * 64 < (I + 1) * 128 && I * 128 < (i + 1) * 64 && j * 64 < (J + 1) * 128 && J * 128 < (j + 1) * 64)
                any |= fine.at(0, h, i, j);
          CHECK(coarse.at(0, h, I, J) == any);
        }
    auto back = convert_block_size(coarse, 64, 64);
    CHECK(back.shape == fine.shape);
    for (size_t k = 0; k < fine.bits.size(); ++k)
      if (fine.bits[k]) CHECK(back.bits[k]);  // conservative: nothing kept is lost
    CHECK(convert_block_size(back, 128, 128).bits == coarse.bits);
    // Every fine block of `back` is kept exactly when its parent is.
    for (int64_t i = 0; i < s.mq(); ++i)
      for (int64_t j = 0; j < s.mk(); ++j) CHECK(back.at(0, 1, i, j) == coarse.at(0, 1, i / 2, j / 2));
  }
}

TEST_CASE("row and column CSR: exact, ascending, and rebuild the mask") {
  auto s = shape(1000, 900, 64, 128, 3, 2);
  auto m = random_mask(s, 0.3, 9);
  auto r = row_csr(m), c = column_csr(m);
  CHECK(r.counts_shape == std::vector<int64_t>{2, 3, s.mq()});
  CHECK(r.indices_shape == std::vector<int64_t>{2, 3, s.mq(), s.mk()});
  CHECK(c.indices_shape == std::vector<int64_t>{2, 3, s.mk(), s.mq()});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h) {
      for (int64_t i = 0; i < s.mq(); ++i) {
        int64_t row = (b * 3 + h) * s.mq() + i, n = 0;
        for (int64_t j = 0; j < s.mk(); ++j)
          if (m.at(b, h, i, j)) CHECK(r.indices[size_t(row * s.mk() + n++)] == j);
        CHECK(r.num_blocks[size_t(row)] == n);
      }
      for (int64_t j = 0; j < s.mk(); ++j) {
        int64_t col = (b * 3 + h) * s.mk() + j, n = 0;
        for (int64_t i = 0; i < s.mq(); ++i)
          if (m.at(b, h, i, j)) CHECK(c.indices[size_t(col * s.mq() + n++)] == i);
        CHECK(c.num_blocks[size_t(col)] == n);
      }
    }
  CHECK(mask_from_row_csr(s, r, "csr").bits == m.bits);
  auto bad = r;
  bad.indices[1] = bad.indices[0];  // not ascending (row 0 has >= 2 entries with this seed)
  REQUIRE(r.num_blocks[0] >= 2);
  CHECK_THROWS_WITH_AS(mask_from_row_csr(s, bad, "csr"), doctest::Contains("ascending"), UsageError);
  bad = r;
  bad.num_blocks[0] = int32_t(s.mk() + 1);
  CHECK_THROWS_AS(mask_from_row_csr(s, bad, "csr"), UsageError);
}

TEST_CASE("files: .npy, CSR and .json round trips are exact") {
  auto s = shape(1000, 1000, 64, 64, 3, 2);
  auto m = random_mask(s, 0.3, 10, true);
  m.heads[1] = HeadInfo{HeadType::Dense, 0, 0};
  std::fill(m.head_bits(0, 1), m.head_bits(0, 1) + s.head_cells(), uint8_t(1));
  std::fill(m.head_bits(1, 1), m.head_bits(1, 1) + s.head_cells(), uint8_t(1));
  m.apply_causal();
  m.normalize_head_types();
  REQUIRE(m.heads[1].type == HeadType::Dense);
  m.spec = {{"pattern", "test"}, {"seed", 10}};
  save_mask_json("rt.json", m);
  auto j = load_mask("rt.json");
  CHECK(j == m);
  CHECK(j.spec == m.spec);
  MaskSizesHint hint;
  hint.q_len = 1000;
  hint.kv_len = 1000;
  hint.block_q = 64;
  hint.block_kv = 64;
  hint.causal = true;
  save_mask_npy("rt.npy", m);
  CHECK(load_mask("rt.npy", hint) == m);
  save_mask_csr("rt_csr", m);
  CHECK(load_mask("rt_csr", hint) == m);
  auto num = read_npy("rt_csr_kv_num_blocks.npy");
  CHECK(num.dtype == DType::Int32);
  CHECK(num.shape == std::vector<int64_t>{2, 3, s.mq()});
  // Sizes that do not fit the file are rejected.
  MaskSizesHint wrong = hint;
  wrong.q_len = 2000;
  CHECK_THROWS_WITH_AS(load_mask("rt.npy", wrong), doctest::Contains("blocks per head"), UsageError);
  for (auto* f : {"rt.json", "rt.npy", "rt_csr_kv_num_blocks.npy", "rt_csr_kv_indices.npy", "rt_csr_q_num_blocks.npy",
                  "rt_csr_q_indices.npy"})
    std::remove(f);
}

TEST_CASE("files: corrupt .json masks are usage errors") {
  auto s = shape(256, 256, 64, 64, 2);
  auto m = random_mask(s, 0.5, 11);
  auto j = mask_to_json(m);
  CHECK(mask_from_json(j, "x") == m);
  auto bad = j;
  bad["bitmap"]["data"] = "AAAA";
  CHECK_THROWS_WITH_AS(mask_from_json(bad, "x"), doctest::Contains("bytes"), UsageError);
  bad = j;
  bad["bitmap"]["data"] = "!!!!";
  CHECK_THROWS_WITH_AS(mask_from_json(bad, "x"), doctest::Contains("base64"), UsageError);
  bad = j;
  bad["schema"] = "other";
  CHECK_THROWS_AS(mask_from_json(bad, "x"), UsageError);
  bad = j;
  bad["head_types"][0]["type"] = "dense";  // bitmap is not full
  if (m.heads[0].type != HeadType::Dense) CHECK_THROWS_WITH_AS(mask_from_json(bad, "x"), doctest::Contains("dense"), UsageError);
  bad = j;
  bad.erase("q_len");
  CHECK_THROWS_AS(mask_from_json(bad, "x"), UsageError);
  bad = j;
  bad["block_q"] = 0;
  CHECK_THROWS_AS(mask_from_json(bad, "x"), UsageError);
  std::ofstream("notjson.json") << "{";
  CHECK_THROWS_AS(load_mask("notjson.json"), UsageError);
  std::remove("notjson.json");
}

TEST_CASE("shape validation names the field") {
  CHECK_THROWS_WITH_AS(BlockMask(shape(0, 10, 4, 4)), doctest::Contains("q_len"), UsageError);
  CHECK_THROWS_WITH_AS(BlockMask(shape(10, 10, 4, -1)), doctest::Contains("block_kv"), UsageError);
  CHECK_THROWS_WITH_AS(shape(1 << 30, 1 << 30, 1, 1).validate(), doctest::Contains("too large"), UsageError);
}
