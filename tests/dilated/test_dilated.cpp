// Dilated attention (lib/dilated) against a float64 reference written from the LongNet definition: every
// (query, key) pair of every branch visited one by one in the original token order, with no residue
// permutation, no block mask and no code shared with lib/.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lib/dilated/dilated.h"
#include "lib/dilated/dilated_quality.h"
#include "lib/error.h"
#include "lib/rng.h"

using namespace bsattn;
using namespace bsattn::dilated;

namespace {

struct Case {
  int64_t B, S, H, Hkv, D;
  std::vector<Branch> branches;
  bool causal;
};

// The reference: for head h, query i and key k, m = the number of branches in which i and k are in the
// same segment, both have position mod rate equal to h mod rate (and k <= i under causal). The merge
// by softmax denominators is softmax over the keys counted m times: O = sum m e^s v / sum m e^s.
struct Ref {
  std::vector<double> out, lse, dq, dk, dv;
};

int multiplicity(const Case& c, int64_t h, int64_t i, int64_t k) {
  int m = 0;
  for (const Branch& b : c.branches) {
    if (i / b.segment != k / b.segment) continue;
    if (c.causal && k > i) continue;
    int64_t o = h % b.rate;
    if (i % b.rate == o && k % b.rate == o) ++m;
  }
  return m;
}

Ref reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
              const std::vector<float>* dout) {
  const int64_t B = c.B, S = c.S, H = c.H, Hkv = c.Hkv, D = c.D, G = H / Hkv;
  const double scale = 1.0 / std::sqrt(double(D));
  Ref r;
  r.out.assign(size_t(B * S * H * D), 0.0);
  r.lse.assign(size_t(B * H * S), -std::numeric_limits<double>::infinity());
  r.dq.assign(size_t(B * S * H * D), 0.0);
  r.dk.assign(size_t(B * S * Hkv * D), 0.0);
  r.dv.assign(size_t(B * S * Hkv * D), 0.0);
  auto Q = [&](int64_t b, int64_t i, int64_t h, int64_t d) { return double(q[size_t(((b * S + i) * H + h) * D + d)]); };
  auto K = [&](int64_t b, int64_t i, int64_t g, int64_t d) { return double(k[size_t(((b * S + i) * Hkv + g) * D + d)]); };
  auto V = [&](int64_t b, int64_t i, int64_t g, int64_t d) { return double(v[size_t(((b * S + i) * Hkv + g) * D + d)]); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / G;
      for (int64_t i = 0; i < S; ++i) {
        std::vector<double> s(static_cast<size_t>(S)), mult(static_cast<size_t>(S));
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t kk = 0; kk < S; ++kk) {
          mult[size_t(kk)] = multiplicity(c, h, i, kk);
          if (mult[size_t(kk)] == 0) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += Q(b, i, h, d) * K(b, kk, g, d);
          s[size_t(kk)] = dot * scale;
          mx = std::max(mx, s[size_t(kk)]);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;  // no branch selects i for head h: O = 0
        double sum = 0;
        for (int64_t kk = 0; kk < S; ++kk)
          if (mult[size_t(kk)] > 0) sum += mult[size_t(kk)] * std::exp(s[size_t(kk)] - mx);
        const double L = mx + std::log(sum);
        r.lse[size_t((b * H + h) * S + i)] = L;
        double* o = &r.out[size_t(((b * S + i) * H + h) * D)];
        for (int64_t kk = 0; kk < S; ++kk)
          if (mult[size_t(kk)] > 0) {
            double pk = mult[size_t(kk)] * std::exp(s[size_t(kk)] - L);
            for (int64_t d = 0; d < D; ++d) o[d] += pk * V(b, kk, g, d);
          }
        if (!dout) continue;
        // P = m e^{s - L}; dV += P dO; dS = P (dO.v - dO.O); dQ += scale dS k; dK += scale dS q.
        const float* dO = &(*dout)[size_t(((b * S + i) * H + h) * D)];
        double Di = 0;
        for (int64_t d = 0; d < D; ++d) Di += double(dO[d]) * o[d];
        for (int64_t kk = 0; kk < S; ++kk) {
          if (mult[size_t(kk)] == 0) continue;
          double pk = mult[size_t(kk)] * std::exp(s[size_t(kk)] - L), dp = 0;
          for (int64_t d = 0; d < D; ++d) dp += double(dO[d]) * V(b, kk, g, d);
          double ds = pk * (dp - Di);
          for (int64_t d = 0; d < D; ++d) {
            r.dv[size_t(((b * S + kk) * Hkv + g) * D + d)] += pk * double(dO[d]);
            r.dq[size_t(((b * S + i) * H + h) * D + d)] += scale * ds * K(b, kk, g, d);
            r.dk[size_t(((b * S + kk) * Hkv + g) * D + d)] += scale * ds * Q(b, i, h, d);
          }
        }
      }
    }
  return r;
}

std::vector<float> random_values(int64_t n, uint64_t seed, double amp = 1.0) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& e : x) e = float((rng.uniform() * 2 - 1) * amp);
  return x;
}

// max |got - want| / max(1, max |want|), and -inf agreement for LSE.
double worst(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double scale = 1, err = 0;
  for (double w : want)
    if (std::isfinite(w)) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(want[i])) {
      if (got[i] != float(want[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    err = std::max(err, std::abs(double(got[i]) - want[i]));
  }
  return err / scale;
}

std::string label(const Case& c, int64_t block) {
  std::string s = "B=" + std::to_string(c.B) + " S=" + std::to_string(c.S) + " H=" + std::to_string(c.H) + "/" +
                  std::to_string(c.Hkv) + " D=" + std::to_string(c.D) + " block=" + std::to_string(block) +
                  (c.causal ? " causal" : "") + " branches=";
  for (auto& b : c.branches) s += std::to_string(b.segment) + ":" + std::to_string(b.rate) + " ";
  return s;
}

void check_case(const Case& c, int64_t block, uint64_t seed, bool f64, bool grads) {
  CAPTURE(label(c, block));
  CAPTURE(f64);
  AttentionProblem p;
  p.batch = c.B, p.q_len = p.kv_len = c.S, p.heads_q = c.H, p.heads_kv = c.Hkv, p.head_dim = c.D;
  p.dtype = ElemType::F32;
  // Amplitude 2 so that softmax rows are far from uniform: a wrong weight shows.
  auto q = random_values(c.B * c.S * c.H * c.D, mix_seed(seed, 1), 2.0);
  auto k = random_values(c.B * c.S * c.Hkv * c.D, mix_seed(seed, 2), 2.0);
  auto v = random_values(c.B * c.S * c.Hkv * c.D, mix_seed(seed, 3));
  auto dO = random_values(c.B * c.S * c.H * c.D, mix_seed(seed, 4));
  DilatedSpec spec;
  spec.branches = c.branches;
  spec.causal = c.causal;
  DilatedOptions opt;
  opt.block_q = opt.block_kv = block;
  opt.f64 = f64;
  AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
  DilatedResult got = dilated_attention(p, spec, in, grads ? dO.data() : nullptr, opt);
  Ref want = reference(c, q, k, v, grads ? &dO : nullptr);
  // float32: the branches accumulate in f32 over at most S keys and the merge adds a few f32 roundings
  // (~1e-6 relative); float64 differs from the reference only by summation order, then the f32 output.
  const double tol = f64 ? 2e-6 : 2e-5;
  CHECK(worst(got.out, want.out) < tol);
  CHECK(worst(got.lse, want.lse) < tol);
  if (grads) {
    CHECK(worst(got.dq, want.dq) < 5 * tol);
    CHECK(worst(got.dk, want.dk) < 5 * tol);
    CHECK(worst(got.dv, want.dv) < 5 * tol);
  }
}

}  // namespace

TEST_CASE("parse_dilated: pairs, and one clear error per bad input") {
  DilatedSpec s = parse_dilated("2048:1,4096:2,8192:4", true);
  REQUIRE(s.branches.size() == 3);
  CHECK(s.branches[1].segment == 4096);
  CHECK(s.branches[2].rate == 4);
  CHECK(s.causal);
  CHECK(s.str() == "2048:1,4096:2,8192:4");
  for (const char* bad : {"", "2048", "2048:", ":2", "0:1", "16:0", "12:5", "16:-2", "16:2,", "a:b", "16:2:3",
                          "16:2,,8:1", " 16:2"})
    CHECK_THROWS_AS(parse_dilated(bad, false), UsageError);
  CHECK_THROWS_WITH_AS(parse_dilated("12:5", false), doctest::Contains("rate 5 does not divide segment 12"), UsageError);
  std::string many;
  for (int i = 0; i <= kMaxBranches; ++i) many += (i ? "," : "") + std::string("8:2");
  CHECK_THROWS_AS(parse_dilated(many, false), UsageError);
}

TEST_CASE("plan_branch: residue runs as varlen sequences, the head's class kept (hand-computed)") {
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = 10, p.heads_q = 2, p.heads_kv = 1, p.head_dim = 4;
  // Segment 4, rate 2, S = 10: strided. Q viewed as [5 rows, 2 classes x 2 heads]: row u holds tokens
  // 2u (virtual heads 0, 1) and 2u + 1 (virtual heads 2, 3); segments [0,4) [4,8) [8,10) are runs of
  // 2, 2, 1 rows; head 0 (offset 0) keeps virtual head 0, head 1 (offset 1) virtual head 2 + 1 = 3.
  {
    BranchPlan s = plan_branch(p, {4, 2}, false, 2, 2);
    CHECK(s.strided);
    CHECK(s.perm.empty());
    CHECK(s.problem.heads_q == 4);
    CHECK(s.problem.heads_kv == 2);
    CHECK(s.problem.cu_seqlens_q == std::vector<int32_t>{0, 2, 4, 5});
    CHECK(s.mask.shape.heads == 4);
    for (int64_t run = 0; run < 3; ++run)
      for (int64_t vh = 0; vh < 4; ++vh) CHECK(s.mask.at(run, vh, 0, 0) == (vh == 0 || vh == 3));
    // Token 7 (segment 1, odd) of head 1: row 3, virtual head 1 * 2 + 1; of kv head 0: virtual kv head 1.
    CHECK(s.slot(7, 1, 2, 10).row == 3);
    CHECK(s.slot(7, 1, 2, 10).head == 3);
    CHECK(s.slot(7, 0, 1, 10).head == 1);
    CHECK(s.rows(10) == 5);
    CHECK(s.heads(2) == 4);
  }
  // A rate that divides S but makes more virtual heads than a grid dimension holds: residue form.
  {
    AttentionProblem big = p;
    big.q_len = big.kv_len = 1 << 16, big.heads_q = big.heads_kv = 2;
    CHECK(plan_branch(big, {1 << 15, 1 << 14}, false, 128, 128).strided);   // 2^15 virtual heads
    CHECK(!plan_branch(big, {1 << 16, 1 << 15}, false, 128, 128).strided);  // 2^16
  }
  // S = 10, segment 4, rate 4 (4 does not divide 10): residue form.
  {
    BranchPlan r4 = plan_branch(p, {4, 4}, false, 2, 2);
    CHECK(!r4.strided);
    CHECK(r4.perm == curves::Perm{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // runs of one token each but the tail's
    CHECK(r4.problem.cu_seqlens_q == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(r4.slot(9, 0, 2, 10).row == 9);
  }
  p.q_len = p.kv_len = 11;  // rate 2 does not divide 11: residue form
  // Segment 4, rate 2: segments [0,4) [4,8) [8,11); classes even/odd: runs of 2, 2, 2, 2, 2, 1.
  BranchPlan b = plan_branch(p, {4, 2}, false, 2, 2);
  CHECK(!b.strided);
  CHECK(b.perm == curves::Perm{0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9});
  CHECK(b.slot(9, 1, 2, 11).row == 10);
  CHECK(b.slot(9, 1, 2, 11).head == 1);
  CHECK(b.problem.cu_seqlens_q == std::vector<int32_t>{0, 2, 4, 6, 8, 10, 11});
  CHECK(b.run_class == std::vector<int64_t>{0, 1, 0, 1, 0, 1});
  CHECK(b.mask.shape.batch == 6);
  CHECK(b.mask.at(0, 0, 0, 0));
  CHECK(!b.mask.at(0, 1, 0, 0));  // head 1 has offset 1: not the even run
  CHECK(b.mask.at(1, 1, 0, 0));
  CHECK(!b.mask.at(1, 0, 0, 0));
  // dilated_pairs: head 0 2*2 + 2*2 + 2*2, head 1 2*2 + 2*2 + 1*1; causal 3 + 3 + 3 and 3 + 3 + 1.
  DilatedSpec s;
  s.branches = {{4, 2}};
  CHECK(dilated_pairs(p, s) == 21);
  s.causal = true;
  CHECK(dilated_pairs(p, s) == 16);
}

TEST_CASE("dilated attention: exact against the float64 definition (branches, rates, tails, causal, GQA, batch)") {
  std::vector<Case> cases = {
      {1, 64, 2, 2, 16, {{16, 1}}, false},                      // plain segments (block-local attention)
      {1, 64, 4, 4, 16, {{16, 2}}, false},                      // one dilated branch, offsets 0/1
      {1, 50, 4, 2, 16, {{8, 1}, {16, 2}, {32, 4}}, false},     // LongNet-style set, tails, GQA
      {2, 50, 4, 2, 16, {{8, 1}, {16, 2}, {32, 4}}, true},      // the same causal, batch 2
      {1, 70, 8, 1, 8, {{64, 8}, {24, 4}}, true},               // rate 8 (each head a class), MQA, tails
      {2, 37, 3, 3, 8, {{12, 2}, {12, 2}}, false},              // a branch twice counts twice
      {1, 40, 2, 2, 8, {{16, 4}}, false},                       // rate > heads: classes 2, 3 get nothing
      {1, 33, 4, 4, 8, {{64, 2}, {5, 1}}, true},                // segment longer than S, odd segment
  };
  uint64_t seed = 11;
  for (const Case& c : cases)
    for (int64_t block : {4, 16}) {
      check_case(c, block, ++seed, false, false);
      check_case(c, block, ++seed, true, false);
    }
}

TEST_CASE("dilated attention: gradients through the construction against the float64 definition") {
  std::vector<Case> cases = {
      {1, 50, 4, 2, 16, {{8, 1}, {16, 2}, {32, 4}}, false},
      {2, 41, 4, 2, 8, {{8, 1}, {16, 2}, {32, 4}}, true},
      {1, 40, 2, 1, 8, {{16, 4}, {10, 1}}, false},
  };
  uint64_t seed = 101;
  for (const Case& c : cases) {
    check_case(c, 8, ++seed, false, true);
    check_case(c, 8, ++seed, true, true);
  }
}

TEST_CASE("dilated attention: a token no branch selects gets O = 0 and LSE = -inf") {
  Case c{1, 16, 2, 2, 8, {{8, 4}}, false};
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = c.S, p.heads_q = 2, p.heads_kv = 2, p.head_dim = 8;
  p.dtype = ElemType::F32;
  auto q = random_values(c.S * 2 * 8, 1), k = random_values(c.S * 2 * 8, 2), v = random_values(c.S * 2 * 8, 3);
  DilatedSpec spec;
  spec.branches = c.branches;
  DilatedOptions opt;
  opt.block_q = opt.block_kv = 4;
  DilatedResult r = dilated_attention(p, spec, {q.data(), k.data(), v.data(), nullptr}, nullptr, opt);
  // Head 0 selects positions 0 mod 4, head 1 positions 1 mod 4; position 2 is selected by neither.
  CHECK(std::isinf(r.lse[0 * 16 + 2]));
  CHECK(std::isinf(r.lse[1 * 16 + 2]));
  CHECK(std::isfinite(r.lse[0 * 16 + 4]));
  CHECK(std::isinf(r.lse[0 * 16 + 5]));
  CHECK(std::isfinite(r.lse[1 * 16 + 5]));
  for (int d = 0; d < 8; ++d) CHECK(r.out[size_t((2 * 2 + 0) * 8 + d)] == 0.f);
}

TEST_CASE("dilated attention: bad problems are usage errors") {
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = 16, p.heads_q = 2, p.heads_kv = 2, p.head_dim = 8;
  p.dtype = ElemType::F32;
  auto x = random_values(16 * 2 * 8, 1);
  AttentionInputs in{x.data(), x.data(), x.data(), nullptr};
  DilatedSpec spec;
  spec.branches = {{8, 2}};
  DilatedOptions opt;
  AttentionProblem cross = p;
  cross.kv_len = 32;
  CHECK_THROWS_AS(dilated_attention(cross, spec, in, nullptr, opt), UsageError);
  AttentionProblem silu = p;
  silu.score = ScoreFn::Silu;
  silu.silu_n = 16;
  CHECK_THROWS_AS(dilated_attention(silu, spec, in, nullptr, opt), UsageError);
  DilatedSpec none;
  CHECK_THROWS_AS(dilated_attention(p, none, in, nullptr, opt), UsageError);
}

TEST_CASE("evaluate_dilated_rows: every row sampled agrees with the full evaluation; one full branch is exact") {
  // The sampled evaluation (per row from the definition, float64) against evaluate_dilated (dilated_attention
  // through the residue construction, dense output and recall from a scan of the dense scores): two code
  // paths that share only branch_covers.
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    AttentionProblem p;
    p.batch = 2, p.q_len = p.kv_len = 48, p.heads_q = 4, p.heads_kv = 2, p.head_dim = 8;
    p.dtype = ElemType::F32;
    const int64_t nq = 2 * 48 * 4 * 8, nk = 2 * 48 * 2 * 8;
    auto q = random_values(nq, 71), k = random_values(nk, 72), v = random_values(nk, 73);
    for (float& x : q) x *= 3;  // peaked rows: recall well below 1
    DilatedSpec spec;
    spec.branches = {{8, 1}, {16, 2}, {40, 4}};  // tails; rate 4 leaves no row of a 4-head problem uncovered
    spec.causal = causal;
    DilatedOptions opt;
    opt.f64 = true;
    opt.block_q = opt.block_kv = 8;
    const DilatedQuality full = evaluate_dilated(p, spec, q.data(), k.data(), v.data(), opt);
    const DilatedQuality rows = evaluate_dilated_rows(p, spec, q.data(), k.data(), v.data(), 48);
    CHECK(rows.sampled_rows == 48);
    CHECK(full.recall_mean < 0.9);
    CHECK(rows.recall_mean == doctest::Approx(full.recall_mean).epsilon(1e-6));
    CHECK(rows.recall_min == doctest::Approx(full.recall_min).epsilon(1e-6));
    CHECK(rows.error.rel_l2 == doctest::Approx(full.error.rel_l2).epsilon(1e-4));
    CHECK(rows.covered_pairs == full.covered_pairs);
    CHECK(rows.visible_pairs == full.visible_pairs);
    CHECK(rows.computed_pairs == full.computed_pairs);
    CHECK(rows.uncovered_rows == full.uncovered_rows);
    for (int64_t h = 0; h < 4; ++h) CHECK(rows.heads[size_t(h)].recall_mean == doctest::Approx(full.heads[size_t(h)].recall_mean).epsilon(1e-6));
  }
  // One branch spanning the sequence at rate 1 is dense attention: recall 1, no error, 3 sampled rows of 12
  // (rows 2, 6, 10) seeing 3 + 7 + 11 keys when causal.
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = 12, p.heads_q = 2, p.heads_kv = 2, p.head_dim = 4;
  p.dtype = ElemType::F32;
  auto q = random_values(12 * 2 * 4, 81), k = random_values(12 * 2 * 4, 82), v = random_values(12 * 2 * 4, 83);
  DilatedSpec spec;
  spec.branches = {{12, 1}};
  spec.causal = true;
  const DilatedQuality r = evaluate_dilated_rows(p, spec, q.data(), k.data(), v.data(), 3);
  CHECK(r.recall_mean == doctest::Approx(1.0));
  CHECK(r.error.rel_l2 < 1e-6);
  CHECK(r.visible_pairs == 2 * (3 + 7 + 11));
  CHECK(r.covered_pairs == r.visible_pairs);
  CHECK_THROWS_AS(evaluate_dilated_rows(p, spec, q.data(), k.data(), v.data(), 0), UsageError);
}
