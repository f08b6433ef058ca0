// lib/render: block classes against token-level pair counts, max-pooling, head lists, colormap and
// ticks, attention maps against a plain float64 softmax written here, schema checks.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "lib/error.h"
#include "lib/render/attention_map.h"
#include "lib/render/colormap.h"
#include "lib/render/json_plots.h"
#include "lib/render/mask_render.h"
#include "lib/render/plot.h"

using namespace bsattn;
using namespace bsattn::render;

namespace {
BlockMask random_mask(const MaskShape& s, bool causal, double density, uint64_t seed) {
  BlockMask m(s);
  m.causal = causal;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& b : m.bits) b = u(rng) < density;
  return m;
}
// Visible (q,k) pairs of block (i,j), counted token by token.
int64_t count_pairs(const MaskShape& s, bool causal, int64_t i, int64_t j) {
  int64_t n = 0;
  for (int64_t q = i * s.block_q; q < std::min(s.q_len, (i + 1) * s.block_q); ++q)
    for (int64_t k = j * s.block_kv; k < std::min(s.kv_len, (j + 1) * s.block_kv); ++k)
      n += !causal || k <= q + s.kv_len - s.q_len;
  return n;
}
}  // namespace

TEST_CASE("classify_row matches token-level pair counts (tails, causal, q_len != kv_len)") {
  for (auto sizes : {std::array<int64_t, 4>{100, 100, 16, 16}, std::array<int64_t, 4>{70, 131, 16, 8},
                     std::array<int64_t, 4>{131, 70, 8, 16}, std::array<int64_t, 4>{64, 64, 16, 16}}) {
    for (bool causal : {false, true}) {
      MaskShape s;
      s.heads = 2;
      s.q_len = sizes[0];
      s.kv_len = sizes[1];
      s.block_q = sizes[2];
      s.block_kv = sizes[3];
      BlockMask m = random_mask(s, causal, 0.5, 7 + uint64_t(causal));
      std::vector<uint8_t> row(size_t(s.mk()));
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < s.mq(); ++i) {
          classify_row(m, 0, h, i, row.data());
          for (int64_t j = 0; j < s.mk(); ++j) {
            int64_t pairs = count_pairs(s, causal, i, j);
            BlockClass want;
            if (m.at(0, h, i, j)) want = pairs == s.block_q * s.block_kv ? BlockClass::Kept : BlockClass::Partial;
            else want = pairs == 0 && causal ? BlockClass::Hidden : BlockClass::Empty;
            CAPTURE(i);
            CAPTURE(j);
            CHECK(int(row[size_t(j)]) == int(want));
          }
        }
    }
  }
}

TEST_CASE("max-pooling keeps an isolated kept block and counts every kept block once") {
  MaskShape s;
  s.q_len = s.kv_len = 2048 * 16;
  s.block_q = s.block_kv = 16;
  BlockMask m(s);
  m.set(0, 0, 1234, 567);
  int64_t kept = 0;
  auto cls = pool_head_classes(m, 0, 0, 97, 61, &kept);
  CHECK(kept == 1);
  int found = 0;
  for (int y = 0; y < 61; ++y)
    for (int x = 0; x < 97; ++x)
      if (cls[size_t(y * 97 + x)] == uint8_t(BlockClass::Kept)) {
        ++found;
        CHECK(x == 567 * 97 / 2048);
        CHECK(y == 1234 * 61 / 2048);
      }
  CHECK(found == 1);
  // Upsampling: each block covers whole cells; the random mask's classes come back block by block.
  MaskShape t;
  t.q_len = 50;
  t.kv_len = 70;
  t.block_q = t.block_kv = 10;
  BlockMask r = random_mask(t, true, 0.5, 3);
  auto up = pool_head_classes(r, 0, 0, 7 * 9, 5 * 9, &kept);
  std::vector<uint8_t> row(7);
  int64_t want_kept = 0;
  for (int64_t i = 0; i < 5; ++i) {
    classify_row(r, 0, 0, i, row.data());
    for (int64_t j = 0; j < 7; ++j) {
      want_kept += row[size_t(j)] >= uint8_t(BlockClass::Kept);
      for (int dy = 0; dy < 9; ++dy)
        for (int dx = 0; dx < 9; ++dx) CHECK(up[size_t((i * 9 + dy) * 63 + j * 9 + dx)] == row[size_t(j)]);
    }
  }
  CHECK(kept == want_kept);
}

TEST_CASE("head lists and selection errors") {
  CHECK(parse_head_list("all", 4) == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(parse_head_list("3,0-1,1", 4) == std::vector<int64_t>{0, 1, 3});
  CHECK_THROWS_AS(parse_head_list("4", 4), UsageError);
  CHECK_THROWS_AS(parse_head_list("2-1", 4), UsageError);
  CHECK_THROWS_AS(parse_head_list("x", 4), UsageError);
  MaskShape s;
  s.q_len = s.kv_len = 256;
  BlockMask m(s);
  CHECK_THROWS_AS(check_mask_selection(m, 1, {0}), UsageError);
  CHECK_THROWS_AS(check_mask_selection(m, 0, {1}), UsageError);
}

TEST_CASE("ascii rendering: one character per block for small masks") {
  MaskShape s;
  s.q_len = s.kv_len = 4 * 16 - 4;  // last block is a tail
  s.block_q = s.block_kv = 16;
  BlockMask m(s);
  m.causal = true;
  m.set(0, 0, 1, 0);
  m.set(0, 0, 2, 2);
  std::string a = mask_ascii(m, 0, {0}, 64, "t");
  // 4x4 blocks, rows halved to 2: row 0 pools block rows 0-1, row 1 pools 2-3.
  CHECK(a.find("|#.  |\n") != std::string::npos);
  CHECK(a.find("|..+.|\n") != std::string::npos);
}

TEST_CASE("ascii rendering: a mask wider than the text shows the share of kept blocks per character") {
  MaskShape s;
  // 64 x 64 blocks drawn 8 characters wide and (rows halved for the aspect) 4 high: 16 block rows x 8
  // block columns per character.
  s.q_len = s.kv_len = 64 * 16;
  s.block_q = s.block_kv = 16;
  BlockMask m(s);
  // Cell (0, 0): one kept block of 128 (0.8%: '1', not '#'); cell (0, 1): all 128 kept; cell (0, 2):
  // 64 of 128 ('5'); the rest empty.
  m.set(0, 0, 3, 5);
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 8; j < 16; ++j) m.set(0, 0, i, j);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 16; j < 24; ++j) m.set(0, 0, i, j);
  std::string a = mask_ascii(m, 0, {0}, 8, "t");
  CHECK(a.find("|1#5.....|\n") != std::string::npos);
  CHECK(a.find("|........|\n") != std::string::npos);
  CHECK(a.find("[pooled") != std::string::npos);
  CHECK(a.find("'1'-'9'") != std::string::npos);
}

TEST_CASE("viridis control points, ticks and tick labels") {
  CHECK(viridis(0).hex() == "#440154");
  CHECK(viridis(1).hex() == "#fde725");
  CHECK(viridis(128 / 255.0).hex() == "#21918c");  // table entry 128 is a control point
  CHECK(std::abs(viridis(0.5).g - 0.566949) < 0.006);  // entry 128 of the table; interpolation error here < 0.006
  CHECK(viridis(std::nan("")).hex() == "#440154");
  // Perceptual map: luminance rises monotonically.
  double prev = -1;
  for (int k = 0; k <= 100; ++k) {
    Rgb c = viridis(k / 100.0);
    double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    CHECK(lum > prev);
    prev = lum;
  }
  CHECK(nice_ticks(0, 32, 4) == std::vector<double>{0, 10, 20, 30});
  CHECK(nice_ticks(0, 1, 5) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  CHECK(log_ticks(1e-5, 1) == std::vector<double>{1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1});
  CHECK(format_tick(1e-4) == "1e-4");
  CHECK(format_tick(2048) == "2048");
  CHECK(format_tick(0.25) == "0.25");
}

TEST_CASE("attention maps agree with a plain float64 softmax (GQA, causal, tails)") {
  const int64_t B = 2, Sq = 37, Sk = 45, Hq = 4, Hkv = 2, D = 8;
  std::mt19937_64 rng(11);
  std::normal_distribution<float> nd(0, 1.5f);
  std::vector<float> q(size_t(B * Sq * Hq * D)), k(size_t(B * Sk * Hkv * D));
  for (auto& x : q) x = nd(rng);
  for (auto& x : k) x = nd(rng);
  MaskShape s;
  s.batch = B;
  s.heads = Hq;
  s.q_len = Sq;
  s.kv_len = Sk;
  s.block_q = 8;
  s.block_kv = 8;
  BlockMask m = random_mask(s, true, 0.6, 5);
  m.apply_causal();
  AttentionProblem p;
  p.batch = B;
  p.q_len = Sq;
  p.kv_len = Sk;
  p.heads_q = Hq;
  p.heads_kv = Hkv;
  p.head_dim = D;
  p.dtype = ElemType::F32;
  const int64_t b = 1, h = 3, hk = h / 2, mq = s.mq(), mk = s.mk();
  AttentionMaps got = attention_maps(p, q.data(), k.data(), m, b, h);
  std::vector<double> dense(size_t(mq * mk), 0), sparse(size_t(mq * mk), 0);
  std::vector<int> rows(size_t(mq), 0);
  double scale = 1 / std::sqrt(double(D)), recall = 0;
  int recall_rows = 0;
  for (int64_t i = 0; i < Sq; ++i) {
    std::vector<double> sc(size_t(Sk), -INFINITY);
    double mx = -INFINITY;
    for (int64_t j = 0; j < Sk; ++j) {
      if (j > i + Sk - Sq) continue;
      double d = 0;
      for (int64_t e = 0; e < D; ++e)
        d += double(q[size_t(((b * Sq + i) * Hq + h) * D + e)]) * double(k[size_t(((b * Sk + j) * Hkv + hk) * D + e)]);
      sc[size_t(j)] = d * scale;
      mx = std::max(mx, sc[size_t(j)]);
    }
    if (mx == -INFINITY) continue;
    double z = 0, zk = 0;
    for (int64_t j = 0; j < Sk; ++j) {
      double e = std::exp(sc[size_t(j)] - mx);
      z += e;
      if (m.at(b, h, i / 8, j / 8)) zk += e;
    }
    rows[size_t(i / 8)]++;
    recall += zk / z;
    ++recall_rows;
    for (int64_t j = 0; j < Sk; ++j) {
      double e = std::exp(sc[size_t(j)] - mx);
      dense[size_t(i / 8 * mk + j / 8)] += e / z;
      if (m.at(b, h, i / 8, j / 8) && zk > 0) sparse[size_t(i / 8 * mk + j / 8)] += e / zk;
    }
  }
  // Tolerance 1e-5: the oracle computes scores in float32 (Eigen GEMM), the reference here in float64.
  for (int64_t i = 0; i < mq; ++i)
    for (int64_t j = 0; j < mk; ++j) {
      size_t x = size_t(i * mk + j);
      double dn = rows[size_t(i)] ? dense[x] / rows[size_t(i)] : 0, sp = rows[size_t(i)] ? sparse[x] / rows[size_t(i)] : 0;
      CAPTURE(i);
      CAPTURE(j);
      CHECK(got.dense[x] == doctest::Approx(dn).epsilon(1e-5));
      CHECK(got.sparse[x] == doctest::Approx(sp).epsilon(1e-5));
      CHECK(got.error[x] == doctest::Approx(std::abs(sp - dn)).epsilon(1e-5));
    }
  CHECK(got.recall == doctest::Approx(recall / recall_rows).epsilon(1e-6));
  CHECK_THROWS_AS(attention_maps(p, q.data(), k.data(), m, 0, Hq), UsageError);
}

TEST_CASE("JSON plots reject documents of the wrong kind") {
  nlohmann::json bench = {{"schema", "bsattn.bench/v1"}, {"records", nlohmann::json::array()}};
  CHECK_THROWS_AS(check_schema(bench, "bsattn.frontier/v1", "f.json", "frontier"), UsageError);
  CHECK_THROWS_AS(check_schema(nlohmann::json::array(), "bsattn.bench/v1", "f.json", "bench"), UsageError);
  CHECK_NOTHROW(check_schema(bench, "bsattn.bench/v1", "f.json", "bench"));
  try {
    check_schema(bench, "bsattn.frontier/v1", "f.json", "frontier");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("use visualize bench") != std::string::npos);
  }
}

TEST_CASE("mask titles: no empty parameters, the run's seed instead of -1 (issue 25)") {
  MaskShape s;
  s.q_len = s.kv_len = 256;
  BlockMask m(s);
  m.spec = {{"pattern", "video-3d:grid=,radius=1,3,3,seed=-1,text=226"}, {"seed", 7}};
  CHECK(mask_pattern_label(m) == "video-3d:radius=1,3,3,seed=7,text=226");
  m.spec = {{"pattern", "random:seed=-1"}, {"seed", 0}};
  CHECK(mask_pattern_label(m) == "random:seed=0");
  m.spec = {{"head_map", "0-3=dense;4-7=bigbird:global=1,grid=,seed=-1"}, {"seed", 3}};
  CHECK(mask_pattern_label(m) == "0-3=dense;4-7=bigbird:global=1,seed=3");
  m.spec = {{"pattern", "dilated:rates=1,2,4"}};
  CHECK(mask_pattern_label(m) == "dilated:rates=1,2,4");
}

TEST_CASE("coverage shading: a 1% random mask looks about 1% kept after downsampling (issue 25)") {
  MaskShape s;
  s.q_len = s.kv_len = 2048 * 4;
  s.block_q = s.block_kv = 4;
  BlockMask m(s);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  int64_t kept = 0;
  for (int64_t i = 0; i < 2048; ++i)
    for (int64_t j = 0; j < 2048; ++j)
      if (u(rng) < 0.01) m.set(0, 0, i, j), ++kept;
  const int w = 256, h = 256;  // 8x8 blocks per pixel
  HeadRaster r = pool_head_coverage(m, 0, 0, w, h);
  CHECK(r.kept == kept);
  CHECK(r.visible == 2048 * 2048);
  // Mean "ink" per pixel: how far each pixel is from the empty colour toward the kept colour.
  const Rgb e = block_class_color(BlockClass::Empty), k = block_class_color(BlockClass::Kept);
  double ink = 0;
  for (uint32_t px : r.argb) {
    double red = double((px >> 16) & 0xff) / 255.0;
    ink += (e.r - red) / (e.r - k.r);
  }
  ink /= double(w * h);
  // Max-pooling would give 1 - 0.99^64 = 0.47; each pixel with kept blocks is at least 0.35 of the way
  // (the floor that keeps a lone block visible), so the mean lies near 0.47 * 0.35 + 0.01 and below 0.25.
  CHECK(ink < 0.25);
  CHECK(ink > 0.01);
}
