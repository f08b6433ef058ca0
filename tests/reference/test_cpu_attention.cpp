// The CPU reference against the plain float64 attention of naive.h, on random seeded cases covering
// partial last blocks, GQA/MQA, varlen, causal with q_len != kv_len, dense/streaming heads and SiLU.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/reference/cpu_attention.h"
#include "tests/reference/naive.h"

using namespace bsattn;

namespace {

struct Case {
  const char* name;
  int64_t batch, q_len, kv_len, hq, hkv, d, bq, bk;
  bool causal;
  std::vector<int32_t> cu_q, cu_k;
  bool silu = false, bias = false;
  double density = 0.5;
  bool mixed_heads = false;  // head 0 dense, head 1 streaming, others sparse
};

BlockMask random_mask(const Case& c, uint64_t seed) {
  MaskShape s;
  s.batch = c.batch;
  s.heads = c.hq;
  s.q_len = c.q_len;
  s.kv_len = c.kv_len;
  s.block_q = c.bq;
  s.block_kv = c.bk;
  BlockMask m(s);
  m.causal = c.causal;
  Rng rng(seed);
  for (auto& bit : m.bits) bit = rng.uniform() < c.density;
  if (c.mixed_heads) {
    for (int64_t b = 0; b < s.batch; ++b) {
      std::fill(m.head_bits(b, 0), m.head_bits(b, 0) + s.head_cells(), uint8_t(1));
      fill_streaming(m.geometry(), 1, 2, m.head_bits(b, 1));
    }
    m.heads[0].type = HeadType::Dense;
    m.heads[1] = HeadInfo{HeadType::Streaming, 1, 2};
  }
  if (c.causal) m.apply_causal();
  return m;
}

AttentionProblem problem(const Case& c) {
  AttentionProblem p;
  p.batch = c.batch;
  p.q_len = c.q_len;
  p.kv_len = c.kv_len;
  p.heads_q = c.hq;
  p.heads_kv = c.hkv;
  p.head_dim = c.d;
  p.cu_seqlens_q = c.cu_q;
  p.cu_seqlens_k = c.cu_k;
  p.dtype = ElemType::F32;
  if (c.silu) {
    p.score = ScoreFn::Silu;
    p.silu_n = double(c.kv_len);
  }
  return p;
}

// max |a - b| / max |b| over the finite entries; infinities must match exactly.
template <class A>
double rel_err(const std::vector<A>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t e = 0; e < a.size(); ++e) {
    if (std::isinf(b[e])) {
      CHECK(double(a[e]) == b[e]);
      continue;
    }
    num = std::max(num, std::fabs(double(a[e]) - b[e]));
    den = std::max(den, std::fabs(b[e]));
  }
  return den > 0 ? num / den : num;
}

std::vector<Case> cases() {
  return {
      {"tails", 2, 70, 90, 2, 2, 8, 16, 32, false, {}, {}},
      {"causal q<kv", 1, 50, 83, 2, 1, 8, 16, 16, true, {}, {}},
      {"causal q>kv (empty rows)", 1, 83, 50, 2, 2, 8, 16, 16, true, {}, {}},
      {"gqa", 2, 64, 64, 4, 2, 16, 16, 16, true, {}, {}},
      {"mqa", 1, 40, 72, 3, 1, 8, 8, 16, false, {}, {}},
      {"varlen", 3, 49, 50, 2, 1, 8, 16, 16, true, {0, 30, 31, 80}, {0, 40, 70, 120}},
      {"varlen non-causal", 3, 49, 50, 2, 2, 8, 8, 16, false, {0, 30, 31, 80}, {0, 40, 70, 120}},
      {"dense+streaming heads", 1, 96, 96, 3, 3, 8, 16, 16, true, {}, {}, false, false, 0.4, true},
      {"silu", 2, 60, 60, 2, 1, 8, 16, 16, true, {}, {}, true, false},
      {"silu bias", 1, 45, 70, 2, 2, 8, 16, 32, false, {}, {}, true, true},
  };
}

}  // namespace

TEST_CASE("cpu reference matches the naive float64 attention (forward and backward)") {
  uint64_t seed = 1234;
  for (const Case& c : cases()) {
    std::string case_name = c.name;
    CAPTURE(case_name);
    AttentionProblem p = problem(c);
    BlockMask m = random_mask(c, ++seed);
    auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), ++seed, 1.5);
    auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), ++seed, 1.5);
    auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), ++seed);
    auto dout = naive::randn(size_t(p.total_q() * c.hq * c.d), ++seed);
    std::vector<float> bias;
    if (c.bias) bias = naive::randn(size_t(c.hq * c.q_len * c.kv_len), ++seed, 0.5);
    AttentionInputs in{q.data(), k.data(), v.data(), c.bias ? bias.data() : nullptr};
    auto ref = naive::run(p, m, q.data(), k.data(), v.data(), in.silu_bias, dout.data());

    // float64 mode: same arithmetic in a different order, so agreement to 1e-12 (rounding only).
    auto f64 = cpu_forward<double>(p, m, in);
    CHECK(rel_err(f64.out, ref.out) < 1e-12);
    if (!c.silu) CHECK(rel_err(f64.lse, ref.lse) < 1e-12);
    auto g64 = cpu_backward<double>(p, m, in, f64, dout.data());
    CHECK(rel_err(g64.dq, ref.dq) < 1e-12);
    CHECK(rel_err(g64.dk, ref.dk) < 1e-12);
    CHECK(rel_err(g64.dv, ref.dv) < 1e-12);

    // float32 mode: float32 rounding over D-term dot products and block sums, ~1e-6; bound 1e-5.
    auto f32 = cpu_forward<float>(p, m, in, CpuAttentionOptions{2});
    CHECK(rel_err(f32.out, ref.out) < 1e-5);
    if (!c.silu) CHECK(rel_err(f32.lse, ref.lse) < 1e-5);
    auto g32 = cpu_backward<float>(p, m, in, f32, dout.data());
    CHECK(rel_err(g32.dq, ref.dq) < 1e-5);
    CHECK(rel_err(g32.dk, ref.dk) < 1e-5);
    CHECK(rel_err(g32.dv, ref.dv) < 1e-5);

    // The public entry point dispatches to the same f32 path.
    auto pub = attention_forward(p, m, in, AttentionOptions{Backend::Cpu, "", 0});
    CHECK(pub.out == f32.out);
  }
}

TEST_CASE("gradients match finite differences of sum(O * dO)") {
  for (bool silu : {false, true}) {
    CAPTURE(silu);
    Case c{"fd", 1, 37, 45, 2, 1, 8, 16, 16, true, {}, {}, silu};
    AttentionProblem p = problem(c);
    BlockMask m = random_mask(c, 99);
    auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), 7);
    auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), 8);
    auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), 9);
    auto dout = naive::randn(size_t(p.total_q() * c.hq * c.d), 10);
    AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
    auto fwd = cpu_forward<double>(p, m, in);
    auto g = cpu_backward<double>(p, m, in, fwd, dout.data());
    auto loss = [&]() {
      auto f = cpu_forward<double>(p, m, in);
      double L = 0;
      for (size_t e = 0; e < f.out.size(); ++e) L += f.out[e] * double(dout[e]);
      return L;
    };
    Rng rng(5);
    for (auto [t, grad] : {std::pair{&q, &g.dq}, std::pair{&k, &g.dk}, std::pair{&v, &g.dv}})
      for (int n = 0; n < 12; ++n) {
        size_t e = size_t(rng.below(t->size()));
        float x0 = (*t)[e];
        float xp = x0 + 1e-2f, xm = x0 - 1e-2f;  // exactly representable steps are not needed: use the stored values
        (*t)[e] = xp;
        double lp = loss();
        (*t)[e] = xm;
        double lm = loss();
        (*t)[e] = x0;
        double fd = (lp - lm) / (double(xp) - double(xm));
        // Central differences with h = 1e-2 have an O(h^2) error, ~1e-4 of the curvature scale.
        CHECK(std::fabs(fd - (*grad)[e]) <= 1e-3 * std::max(1.0, std::fabs((*grad)[e])));
      }
  }
}

TEST_CASE("f16 and bf16 inputs are converted exactly and match the naive attention on the rounded values") {
  Case c{"dtype", 1, 33, 47, 2, 2, 8, 16, 16, true, {}, {}};
  AttentionProblem p = problem(c);
  BlockMask m = random_mask(c, 3);
  auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), 11);
  auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), 12);
  auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), 13);
  for (ElemType t : {ElemType::F16, ElemType::BF16}) {
    auto to16 = [&](std::vector<float>& x, std::vector<uint16_t>& bits) {
      bits.resize(x.size());
      for (size_t e = 0; e < x.size(); ++e) {
        bits[e] = t == ElemType::F16 ? float_to_half(x[e]) : float_to_bf16(x[e]);
        x[e] = t == ElemType::F16 ? half_to_float(bits[e]) : bf16_to_float(bits[e]);
      }
    };
    auto q2 = q, k2 = k, v2 = v;
    std::vector<uint16_t> qb, kb, vb;
    to16(q2, qb);
    to16(k2, kb);
    to16(v2, vb);
    AttentionProblem p2 = p;
    p2.dtype = t;
    auto ref = naive::run(p, m, q2.data(), k2.data(), v2.data());
    auto f64 = cpu_forward<double>(p2, m, AttentionInputs{qb.data(), kb.data(), vb.data(), nullptr});
    CHECK(rel_err(f64.out, ref.out) < 1e-12);
  }
}

TEST_CASE("NaN and Inf inputs are usage errors naming the first position") {
  Case c{"nan", 2, 20, 20, 2, 1, 4, 8, 8, false, {}, {}};
  AttentionProblem p = problem(c);
  BlockMask m = random_mask(c, 4);
  auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), 1);
  auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), 2);
  auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), 3);
  // Element [b=1, s=3, h=1, d=2] of Q.
  q[size_t(((1 * 20 + 3) * 2 + 1) * 4 + 2)] = std::numeric_limits<float>::quiet_NaN();
  AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
  try {
    cpu_forward<float>(p, m, in);
    FAIL("no error");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("Q has NaN at [b=1, s=3, h=1, d=2]") != std::string::npos);
  }
  q[size_t(((1 * 20 + 3) * 2 + 1) * 4 + 2)] = 0.5f;
  v[7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(cpu_forward<float>(p, m, in), UsageError);
  // Mismatched heads: Hq not a multiple of Hkv.
  v[7] = 0.5f;
  AttentionProblem bad = p;
  bad.heads_kv = 3;
  CHECK_THROWS_AS(cpu_forward<float>(bad, m, in), UsageError);
}

TEST_CASE("NaN/Inf inputs are found where the forward's tasks read them and where none reads them") {
  // GQA (2 query heads, 1 key head), D = 20 (a tail past the vector), blocks of 8 over 20 rows. Key
  // block 1 is kept by no row (no task reads it); row block 2 keeps nothing (its tasks read no key).
  for (bool causal : {false, true}) {
    Case c{"nan-where", 2, 20, 20, 2, 1, 20, 8, 8, causal, {}, {}};
    c.density = 1.0;
    AttentionProblem p = problem(c);
    BlockMask m = random_mask(c, 5);
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.hq; ++h) {
        uint8_t* bits = m.head_bits(b, h);
        for (int64_t i = 0; i < 3; ++i) bits[i * 3 + 1] = 0;
        for (int64_t j = 0; j < 3; ++j) bits[2 * 3 + j] = 0;
      }
    auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), 1);
    auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), 2);
    auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), 3);
    AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
    auto expect = [&](std::vector<float>& x, int64_t heads, int64_t b, int64_t s, int64_t h, int64_t d, float bad,
                      const std::string& what) {
      float& e = x[size_t(((b * 20 + s) * heads + h) * c.d + d)];
      const float keep = e;
      e = bad;
      try {
        cpu_forward<float>(p, m, in);
        FAIL("no error for " << what);
      } catch (const UsageError& err) {
        CHECK_MESSAGE(std::string(err.what()).find(what) != std::string::npos, err.what());
      }
      e = keep;
    };
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    expect(k, 1, 1, 2, 0, 19, nan, "K has NaN at [b=1, s=2, h=0, d=19]");    // block 0: read
    expect(k, 1, 0, 9, 0, 3, -inf, "K has Inf at [b=0, s=9, h=0, d=3]");     // block 1: read by none
    expect(v, 1, 1, 17, 0, 16, inf, "V has Inf at [b=1, s=17, h=0, d=16]");  // block 2 (short)
    expect(v, 1, 0, 12, 0, 0, nan, "V has NaN at [b=0, s=12, h=0, d=0]");    // block 1: read by none
    expect(q, 2, 1, 18, 1, 5, nan, "Q has NaN at [b=1, s=18, h=1, d=5]");    // row block 2: no keys
    expect(q, 2, 0, 3, 0, 17, inf, "Q has Inf at [b=0, s=3, h=0, d=17]");
    // Q is named before K, whatever the tasks met first.
    k[0] = nan;
    expect(q, 2, 1, 19, 1, 1, nan, "Q has NaN at [b=1, s=19, h=1, d=1]");
    k[0] = 0.5f;
  }
  // A finite Q that the scale takes to Inf is no input error: the forward goes on (and reports the
  // scores' overflow).
  Case c{"scale-overflow", 1, 16, 16, 1, 1, 16, 16, 16, false, {}, {}};
  c.density = 1.0;
  AttentionProblem p = problem(c);
  p.scale = 10.0;
  BlockMask m = random_mask(c, 1);
  auto q = naive::randn(16 * 16, 1), k = naive::randn(16 * 16, 2), v = naive::randn(16 * 16, 3);
  q[5] = 1e38f;
  try {
    cpu_forward<float>(p, m, AttentionInputs{q.data(), k.data(), v.data(), nullptr});
    FAIL("no error");
  } catch (const UsageError& err) {
    CHECK_MESSAGE(std::string(err.what()).find("scores overflow") != std::string::npos, err.what());
  }
}

TEST_CASE("causal: hidden keys get exactly zero weight in float32 (no clamped-exp residue)") {
  // One head, S=128, block 64, causal, dense mask. V rows 1..63 hold 1e36: row 0 sees only key 0, so its
  // output must be V[0] exactly. A hidden key given exp's clamped floor (~4e-39) instead of 0 would add
  // ~1e36 * 4e-39 * 63 = 0.25 to it.
  AttentionProblem p;
  p.q_len = p.kv_len = 128;
  p.head_dim = 8;
  p.dtype = ElemType::F32;
  BlockMask m(MaskShape{1, 1, 128, 128, 64, 64});
  m.causal = true;
  std::fill(m.bits.begin(), m.bits.end(), uint8_t(1));
  m.apply_causal();
  auto q = naive::randn(128 * 8, 21), k = naive::randn(128 * 8, 22), v = naive::randn(128 * 8, 23);
  for (int r = 1; r < 64; ++r)
    for (int d = 0; d < 8; ++d) v[size_t(r * 8 + d)] = 1e36f;
  auto f32 = cpu_forward<float>(p, m, AttentionInputs{q.data(), k.data(), v.data(), nullptr});
  for (int d = 0; d < 8; ++d) CHECK(f32.out[size_t(d)] == doctest::Approx(v[size_t(d)]).epsilon(1e-6));
}

TEST_CASE("float32 forward on shapes that split into several chunks, with gaps and causal row tiles") {
  // The forward multiplies a query block by up to 512 key columns at once (kForwardChunkCols), copies the
  // chunk's K/V rows block by block (kept blocks need not be adjacent), and stops each row tile of its
  // kernels (lib/reference/staircase.h) where the causal diagonal crosses a chunk. The cases above are too
  // small for any of that; these are not:
  // 128-row query blocks, 64-column key blocks, up to 1100 keys (18 blocks: two or three chunks), random
  // masks (gaps between kept blocks), causal with q_len < kv_len and q_len > kv_len, GQA, partial tails.
  struct Big {
    const char* name;
    int64_t q_len, kv_len, hq, hkv, bq, bk;
    bool causal;
    double density;
  };
  const Big cases[] = {
      {"dense, 3 chunks", 260, 1100, 2, 1, 128, 64, false, 1.0},
      {"random gaps", 300, 1100, 2, 2, 128, 64, false, 0.45},
      {"causal dense q<kv", 700, 1000, 2, 1, 128, 64, true, 1.0},
      {"causal random q>kv", 1000, 700, 2, 2, 128, 64, true, 0.5},
      {"causal square, block 128", 900, 900, 1, 1, 128, 128, true, 0.7},
  };
  uint64_t seed = 777;
  for (const Big& c : cases) {
    std::string case_name = c.name;
    CAPTURE(case_name);
    Case cc{c.name, 1, c.q_len, c.kv_len, c.hq, c.hkv, 16, c.bq, c.bk, c.causal, {}, {}};
    cc.density = c.density;
    AttentionProblem p = problem(cc);
    BlockMask m = random_mask(cc, ++seed);
    auto q = naive::randn(size_t(p.total_q() * c.hq * 16), ++seed, 1.5);
    auto k = naive::randn(size_t(p.total_k() * c.hkv * 16), ++seed, 1.5);
    auto v = naive::randn(size_t(p.total_k() * c.hkv * 16), ++seed);
    AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
    auto ref = naive::run(p, m, q.data(), k.data(), v.data());
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      auto f32 = cpu_forward<float>(p, m, in, CpuAttentionOptions{threads});
      CHECK(rel_err(f32.out, ref.out) < 1e-5);  // float32 rounding, as above
      CHECK(rel_err(f32.lse, ref.lse) < 1e-5);
    }
    auto f64 = cpu_forward<double>(p, m, in);
    CHECK(rel_err(f64.out, ref.out) < 1e-12);
    CHECK(rel_err(f64.lse, ref.lse) < 1e-12);
  }
}

TEST_CASE("forward tile kernels: head dims and key blocks that are and are not whole vectors, float and double") {
  // The forward computes scores and weighted sums with the kernels of lib/reference/staircase.h: tiles of
  // 8 rows x 1 or 2 vectors (16 floats or 8 doubles), each row tile up to the columns its last row sees
  // (across the causal diagonal), keys transposed in 16 x 16 (8 x 8) register tiles block by block, head
  // dims past the last whole vector element by element. Cases: D of 2, 4 and 8 vectors and D = 40 and 24
  // (a remainder for float, and for float D = 24 no 2-vector tile), key blocks of 64 and 128 and of 40
  // and 24 (not whole float vectors: a block's last transposed tile runs into the next block), q_len < and
  // > kv_len, lengths not a multiple of the block, GQA, sparse rows, causal or not.
  struct Stair {
    int64_t q_len, kv_len, hq, hkv, d, bq, bk;
    double density;
    bool causal;
  };
  const Stair cases[] = {
      {300, 300, 4, 2, 64, 128, 128, 0.3, true},  {333, 400, 2, 1, 128, 64, 128, 0.5, true},
      {400, 270, 2, 2, 40, 128, 64, 0.6, true},   {200, 200, 3, 3, 24, 64, 64, 1.0, true},
      {190, 190, 1, 1, 32, 128, 128, 1.0, true},  {250, 310, 2, 1, 64, 64, 40, 0.7, true},
      {230, 230, 2, 2, 48, 48, 24, 1.0, true},    {150, 610, 2, 1, 64, 128, 40, 0.6, false},
      {170, 330, 1, 1, 40, 64, 24, 1.0, false},
  };
  uint64_t seed = 4242;
  for (const Stair& c : cases) {
    CAPTURE(c.q_len);
    CAPTURE(c.d);
    CAPTURE(c.bk);
    Case cc{"tiles", 1, c.q_len, c.kv_len, c.hq, c.hkv, c.d, c.bq, c.bk, c.causal, {}, {}};
    cc.density = c.density;
    AttentionProblem p = problem(cc);
    BlockMask m = random_mask(cc, ++seed);
    auto q = naive::randn(size_t(p.total_q() * c.hq * c.d), ++seed, 1.5);
    auto k = naive::randn(size_t(p.total_k() * c.hkv * c.d), ++seed, 1.5);
    auto v = naive::randn(size_t(p.total_k() * c.hkv * c.d), ++seed);
    AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
    auto ref = naive::run(p, m, q.data(), k.data(), v.data());
    for (int threads : {1, 3}) {
      CAPTURE(threads);
      auto f32 = cpu_forward<float>(p, m, in, CpuAttentionOptions{threads});
      CHECK(rel_err(f32.out, ref.out) < 1e-5);
      CHECK(rel_err(f32.lse, ref.lse) < 1e-5);
      auto f64 = cpu_forward<double>(p, m, in, CpuAttentionOptions{threads});
      CHECK(rel_err(f64.out, ref.out) < 1e-12);
      CHECK(rel_err(f64.lse, ref.lse) < 1e-12);
    }
  }
}
