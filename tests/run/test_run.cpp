// lib/run: run_attention, the one call behind `bsattn run`: the CPU float32 and float64 paths equal the
// reference called directly; a token order is undone on O, LSE and the gradients (with a dense mask,
// attention does not depend on the token order, so the reordered run must give back the plain one); the
// --time figures follow 4 * D * pairs; usage errors come before any work.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lib/error.h"
#include "lib/reference/cpu_attention.h"
#include "lib/rng.h"
#include "lib/run/run.h"
#include "lib/tensor/tensor_io.h"

using namespace bsattn;

namespace {

constexpr int64_t kB = 1, kS = 96, kHq = 4, kHkv = 2, kD = 16, kBlock = 32;

Tensor random_tensor(int64_t heads, uint64_t seed, const char* name) {
  Tensor t;
  t.batch = kB, t.seq = kS, t.heads = heads, t.dim = kD;
  t.name = name;
  t.data.resize(size_t(t.numel()));
  Rng rng(seed);
  for (auto& x : t.data) x = float(rng.uniform() * 2 - 1);
  return t;
}

RunRequest request(double density, bool causal, uint64_t seed) {
  RunRequest req;
  req.inputs.q = random_tensor(kHq, seed, "--q q.npy");
  req.inputs.k = random_tensor(kHkv, seed + 1, "--k k.npy");
  req.inputs.v = random_tensor(kHkv, seed + 2, "--v v.npy");
  req.d_o = random_tensor(kHq, seed + 3, "--do do.npy");
  req.gradients = true;
  MaskShape s;
  s.batch = 1, s.heads = kHq, s.q_len = kS, s.kv_len = kS, s.block_q = kBlock, s.block_kv = kBlock;
  BlockMask m(s);
  m.causal = causal;
  Rng rng(seed + 4);
  for (auto& bit : m.bits) bit = rng.uniform() < density;
  for (int64_t h = 0; h < kHq; ++h)
    for (int64_t i = 0; i < s.mq(); ++i) m.set(0, h, i, i);  // no empty rows
  if (causal) m.apply_causal();
  req.mask = m;
  return req;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

}  // namespace

TEST_CASE("run_attention: the CPU paths are the reference's forward and backward") {
  for (bool f64 : {false, true}) {
    CAPTURE(f64);
    RunRequest req = request(0.5, true, 11);
    req.f64 = f64;
    AttentionProblem p = problem_for(req.inputs.q, req.inputs.k);
    const AttentionInputs ai{req.inputs.q.data.data(), req.inputs.k.data.data(), req.inputs.v.data.data(), nullptr};
    std::vector<float> out, lse, dq, dk, dv;
    if (f64) {
      auto f = cpu_forward<double>(p, req.mask, ai, {});
      auto g = cpu_backward<double>(p, req.mask, ai, f, req.d_o.data.data(), {});
      out = narrow_to_float32(f.out, "O"), lse = narrow_to_float32(f.lse, "LSE");
      dq = narrow_to_float32(g.dq, "dQ"), dk = narrow_to_float32(g.dk, "dK"), dv = narrow_to_float32(g.dv, "dV");
    } else {
      auto f = cpu_forward<float>(p, req.mask, ai, {});
      auto g = cpu_backward<float>(p, req.mask, ai, f, req.d_o.data.data(), {});
      out = f.out, lse = f.lse, dq = g.dq, dk = g.dk, dv = g.dv;
    }
    RunResult r = run_attention(std::move(req));
    CHECK(r.backend_name == (f64 ? "cpu (float64)" : "cpu (float32)"));
    CHECK(r.problem.heads_q == kHq);
    CHECK(r.problem.heads_kv == kHkv);
    CHECK(!r.timing);
    // The same code on the same inputs: identical bits.
    CHECK(r.out == out);
    CHECK(r.lse == lse);
    CHECK(r.dq == dq);
    CHECK(r.dk == dk);
    CHECK(r.dv == dv);
  }
}

TEST_CASE("run_attention: outputs and gradients come back in the original token order") {
  RunRequest plain = request(1.0, false, 21);
  RunRequest reordered = request(1.0, false, 21);
  // A fixed permutation: token t goes to position perm[t]'s place, as curves::apply_token_order reads it.
  std::vector<int64_t> perm(kS);
  std::iota(perm.begin(), perm.end(), int64_t(0));
  Rng rng(5);
  for (int64_t i = kS - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(rng.uniform() * double(i + 1)) % size_t(i + 1)]);
  auto permute = [&](Tensor& t) {
    std::vector<float> x(t.data.size());
    const int64_t inner = t.heads * t.dim;
    for (int64_t s = 0; s < kS; ++s)
      std::copy_n(t.data.begin() + perm[size_t(s)] * inner, inner, x.begin() + s * inner);
    t.data = x;
  };
  // The caller reorders Q/K/V (the mask is resolved on them); dO stays in the original order.
  permute(reordered.inputs.q), permute(reordered.inputs.k), permute(reordered.inputs.v);
  reordered.token_order = perm;
  RunResult a = run_attention(std::move(plain));
  RunResult b = run_attention(std::move(reordered));
  // Dense mask: the same sums in another order; float32 rounding of sums over 96 keys.
  CHECK(max_abs_diff(a.out, b.out) < 1e-5);
  CHECK(max_abs_diff(a.lse, b.lse) < 1e-5);
  CHECK(max_abs_diff(a.dq, b.dq) < 1e-5);
  CHECK(max_abs_diff(a.dk, b.dk) < 1e-5);
  CHECK(max_abs_diff(a.dv, b.dv) < 1e-5);
}

TEST_CASE("run_attention: --time reports 4 * D * pairs over the measured time") {
  RunRequest req = request(0.5, false, 31);
  req.gradients = false;
  req.time = true;
  req.threads = 1;
  const int64_t pairs = mask_stats(req.mask).computed_pairs;
  RunResult r = run_attention(std::move(req));
  REQUIRE(r.timing);
  CHECK(r.timing->pairs == pairs);
  CHECK(r.timing->threads == 1);
  CHECK(r.timing->seconds > 0);
  CHECK(r.timing->gflops == doctest::Approx(4.0 * kD * double(pairs) / r.timing->seconds / 1e9));
  CHECK(r.timing->gemm.gflops > 0);
  CHECK(r.timing->gemm.threads == 1);
  CHECK(r.timing->gemm.rounds == 5);
  // Five forwards, each with the ceiling round after it; the figures are their medians.
  REQUIRE(r.timing->seconds_each.size() == 5);
  REQUIRE(r.timing->ratios.size() == 5);
  CHECK(r.timing->seconds == median_of(r.timing->seconds_each));
  CHECK(r.timing->ratio == median_of(r.timing->ratios));
  CHECK(r.timing->ceiling_median == median_of(r.timing->gemm.round_gflops));
  for (size_t e = 0; e < 5; ++e)
    CHECK(r.timing->ratios[e] == doctest::Approx(4.0 * kD * double(pairs) / r.timing->seconds_each[e] / 1e9 /
                                                 r.timing->gemm.round_gflops[e]));
  RunRequest none = request(0.5, false, 32);
  none.gradients = false;
  none.time = true;
  none.time_repeats = 0;
  CHECK_THROWS_AS(run_attention(std::move(none)), UsageError);
  CHECK(r.dq.empty());
}

TEST_CASE("run_attention: usage errors before any work") {
  {
    RunRequest req = request(0.5, false, 41);
    req.backend = Backend::Cuda;
    req.f64 = true;
    CHECK_THROWS_WITH_AS(run_attention(std::move(req)), "--f64 is computed by the CPU reference: add --backend cpu",
                         UsageError);
  }
  {
    RunRequest req = request(0.5, false, 42);
    req.d_o = random_tensor(kHkv, 9, "--do do.npy");
    CHECK_THROWS_WITH_AS(run_attention(std::move(req)), "--do do.npy: must have the shape of Q", UsageError);
  }
  {
    // float32 inputs on the CUDA backend: refused on any machine, naming the file and what is allowed.
    RunRequest req = request(0.5, false, 43);
    req.backend = Backend::Cuda;
    CHECK_THROWS_AS(run_attention(std::move(req)), UsageError);
    RunRequest req2 = request(0.5, false, 43);
    CHECK_THROWS_WITH(cuda_input_type(req2.inputs),
                      doctest::Contains("--q q.npy holds float32: the CUDA backend takes bf16 or f16 inputs"));
  }
}
