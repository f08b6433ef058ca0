// Hand-computed cases for the numbers issue 21's helpers produce: varlen offsets, per-sequence mask
// statistics (lib/varlen), HSTU's timestamp bucket (lib/hstu), NSA's spec (lib/nsa).
#include <doctest/doctest.h>

#include "lib/error.h"
#include "lib/hstu/hstu.h"
#include "lib/nsa/nsa.h"
#include "lib/varlen/varlen.h"

using namespace bsattn;

TEST_CASE("varlen offsets: parsed, checked") {
  CHECK(parse_seqlens("3,5", "--seqlens") == std::vector<int32_t>{0, 3, 8});
  CHECK(max_seqlen({0, 3, 8, 9}) == 5);
  CHECK_THROWS_AS(parse_seqlens("3,,5", "--seqlens"), UsageError);
  CHECK_THROWS_AS(parse_seqlens("3,0", "--seqlens"), UsageError);
  CHECK_THROWS_AS(parse_seqlens("3,-1", "--seqlens"), UsageError);
  CHECK_THROWS_AS(check_cu_seqlens({0, 3, 3}, "x"), UsageError);  // an empty sequence
  CHECK_THROWS_AS(check_cu_seqlens({1, 3}, "x"), UsageError);     // not starting at 0
  CHECK_THROWS_AS(check_cu_seqlens({0}, "x"), UsageError);
  CHECK_THROWS_AS(check_cu_seqlens({0, int64_t(1) << 31}, "x"), UsageError);
}

TEST_CASE("varlen mask statistics count each sequence's own blocks and pairs") {
  // Sequences of 5 and 3 tokens, block 4, diagonal blocks only, not causal, one head:
  // sequence 0 has 2x2 blocks, (0,0) with 16 pairs and (1,1) with 1 kept; sequence 1 one block of 9 pairs.
  std::vector<BlockMask> per;
  for (int64_t len : {5, 3}) {
    MaskShape s;
    s.heads = 1, s.q_len = s.kv_len = len, s.block_q = s.block_kv = 4;
    BlockMask m(s);
    for (int64_t i = 0; i < s.mq(); ++i) m.set(0, 0, i, i);
    per.push_back(m);
  }
  BlockMask m = embed_sequence_masks(per, 5);
  CHECK(m.shape.batch == 2);
  MaskStats st = varlen_mask_stats(m, {0, 5, 8});
  CHECK(st.kept_blocks == 3);
  CHECK(st.visible_blocks == 5);
  CHECK(st.density == doctest::Approx(3.0 / 5));
  CHECK(st.computed_pairs == 16 + 1 + 9);
  CHECK(st.dense_pairs == 25 + 9);
  CHECK(st.heads[0].row_mean == doctest::Approx(3.0 / 3));
  // The crop of sequence 1 is its own 1x1-block mask.
  BlockMask c = crop_sequence_mask(m, 1, 3);
  CHECK(c.shape.q_len == 3);
  CHECK(c.at(0, 0, 0, 0));
}

TEST_CASE("HSTU timestamp bucket: floor(ln(max(|dt|,1)) / 0.301), clamped") {
  CHECK(hstu_ts_bucket(0, 100) == 0);
  CHECK(hstu_ts_bucket(1, 100) == 0);
  CHECK(hstu_ts_bucket(2, 100) == 2);       // ln 2 / 0.301 = 2.30
  CHECK(hstu_ts_bucket(-1000, 100) == 22);  // ln 1000 / 0.301 = 22.95
  CHECK(hstu_ts_bucket(1e9, 10) == 9);      // 68.8, clamped to the last bucket
}

TEST_CASE("NSA spec: defaults, ranges") {
  NsaParams p = parse_nsa_spec("topn=4", "--nsa");
  CHECK(p.block == 64);
  CHECK(p.stride == 32);
  CHECK(p.topn == 4);
  CHECK(p.qblock == 1);
  CHECK_THROWS_AS(parse_nsa_spec("block=16,stride=32", "--nsa"), UsageError);
  CHECK_THROWS_AS(parse_nsa_spec("blocks=16", "--nsa"), UsageError);
  CHECK_THROWS_AS(parse_nsa_spec("topn=0", "--nsa"), UsageError);
}
