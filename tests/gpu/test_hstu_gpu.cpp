// HSTU attention on the GPU (hstu_forward_cuda: the relative bias computed per pair in the kernel from
// its tables, u-gating by a kernel after the forward) against the CPU reference in float64 (lib/hstu's
// hstu_forward with f64, which materializes rab per sequence) on the same 16-bit inputs: every bias kind
// alone and together, jagged batches with lengths that are no multiple of any block (and a sequence of
// one token), fixed-length batches, causal and not, sparse masks (HSTU with a selection), GQA and MQA,
// D 64, 128, 256 and 96 (padded), block_q 64 and 128 (both kernel tile heights), bf16 and f16, with and without U.
// The runner poisons O (NaN) before the kernel, so an unwritten element fails.
//
// Tolerance: ||O - ref|| / ||ref|| <= 1e-2 (bf16) / 3e-3 (f16), as the forward suite: the kernel rounds P
// to the dtype before P V (2^-9 relative for bf16, 2^-12 for f16) and O when it stores it; u-gating
// rounds O * U once more. rab reads exactly the CPU's table entries (tests/kernels/test_hstu_bias.cu) and
// adds them to the score within a few float32 ulp of the CPU's sum, so a wrong bucket or distance shows
// as a larger error, not within the tolerance: a bias term off by one table entry moves a score by ~1
// (the tables are uniform in [-1, 1)).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "kernels/attention_runner.h"
#include "lib/attention.h"
#include "lib/error.h"
#include "lib/hstu/hstu.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace gputest;

namespace {

constexpr int kPos = 1, kTs = 2, kDense = 4;  // the bias terms of a case

struct HstuCase {
  std::vector<int64_t> lens = {300, 77, 513, 1};  // jagged; empty: fixed length B x seq
  int64_t batch = 2, seq = 256;                    // fixed length when lens is empty
  int64_t hq = 4, hkv = 2, d = 64, bq = 128, bkv = 128;
  int terms = kPos | kTs;
  bool causal = true, gate = false;
  double density = 1.0;  // < 1: a random sparse mask
  ElemType dt = ElemType::BF16;
  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s B%ld S%ld H%ld/%ld D%ld blk%ldx%ld terms=%d %s%s d=%.2f %s",
                  lens.empty() ? "fixed" : "jagged", long(lens.empty() ? batch : int64_t(lens.size())), long(seq),
                  long(hq), long(hkv), long(d), long(bq), long(bkv), terms, causal ? "causal " : "",
                  gate ? "u-gating " : "", density, elem_type_name(dt));
    return buf;
  }
};

std::vector<float> as_float(const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); }

void run_hstu_case(const HstuCase& c, uint64_t seed) {
  CAPTURE(c.name());
  CAPTURE(seed);
  AttentionProblem p;
  p.heads_q = c.hq, p.heads_kv = c.hkv, p.head_dim = c.d;
  p.dtype = c.dt;
  p.score = ScoreFn::Silu;
  p.scale = 0.7 / std::sqrt(double(c.d));
  if (c.lens.empty()) {
    p.batch = c.batch, p.q_len = p.kv_len = c.seq;
  } else {
    p.batch = int64_t(c.lens.size());
    p.cu_seqlens_q = {0};
    int64_t lmax = 0;
    for (int64_t l : c.lens) p.cu_seqlens_q.push_back(p.cu_seqlens_q.back() + int32_t(l)), lmax = std::max(lmax, l);
    p.cu_seqlens_k = p.cu_seqlens_q;
    p.q_len = p.kv_len = lmax;
  }
  p.silu_n = double(p.q_len);
  const int64_t total = p.total_q(), H = c.hq;
  MaskShape ms{1, c.hq, p.q_len, p.kv_len, c.bq, c.bkv};
  BlockMask m = random_mask(ms, c.causal, c.density, {c.density < 1 ? HeadType::Sparse : HeadType::Dense}, seed * 5 + 3);

  Rng rng(seed * 977 + 1);
  HstuBias bias;
  if (c.terms & kPos) {
    bias.pos_len = p.q_len / 2 + 3;  // shorter than the longest sequence: far pairs share the last entry
    for (int64_t e = 0; e < H * bias.pos_len; ++e) bias.pos.push_back(float(rng.uniform() * 2 - 1));
  }
  if (c.terms & kTs) {
    bias.ts_buckets = 129;  // HSTU's num_buckets 128, plus one
    for (int64_t e = 0; e < H * bias.ts_buckets; ++e) bias.ts.push_back(float(rng.uniform() * 2 - 1));
    // Unix-time-like integer timestamps: equal ones, small steps and jumps of up to ~2 years, so that
    // the pairs of a sequence spread over some 60 buckets.
    double t = 1.7e9;
    for (int64_t r = 0; r < total; ++r) {
      bias.timestamps.push_back(t);
      const uint64_t kind = rng.below(4);
      t += kind == 0 ? 0.0 : kind == 1 ? double(rng.below(100)) : std::floor(std::exp(rng.uniform() * 17.9));
    }
  }
  if (c.terms & kDense)
    for (int64_t e = 0; e < H * p.q_len * p.kv_len; ++e) bias.dense.push_back(float(rng.uniform() * 2 - 1));

  auto q = random_tensor(size_t(total * c.hq * c.d), c.dt, seed * 3 + 11);
  auto k = random_tensor(size_t(total * c.hkv * c.d), c.dt, seed * 3 + 12);
  auto v = random_tensor(size_t(total * c.hkv * c.d), c.dt, seed * 3 + 13);
  auto u = random_tensor(size_t(total * c.hq * c.d), c.dt, seed * 3 + 14);

  AttentionOptions opt;
  const std::vector<float> got = hstu_forward_cuda(p, m, q.raw.data(), k.raw.data(), v.raw.data(), bias,
                                                   c.gate ? u.raw.data() : nullptr, opt);
  AttentionProblem p32 = p;
  p32.dtype = ElemType::F32;
  const std::vector<float> qf = as_float(q.vals), kf = as_float(k.vals), vf = as_float(v.vals), uf = as_float(u.vals);
  const std::vector<float> ref32 = hstu_forward(p32, m, qf.data(), kf.data(), vf.data(), bias,
                                                c.gate ? uf.data() : nullptr, /*f64=*/true);
  const std::vector<double> ref(ref32.begin(), ref32.end());
  REQUIRE(got.size() == ref.size());
  size_t nonfinite = 0;
  for (float x : got) nonfinite += !std::isfinite(x);
  CHECK_MESSAGE(nonfinite == 0, "unwritten (poisoned) or non-finite O elements: " << nonfinite);
  double norm = 0;
  for (double x : ref) norm += x * x;
  REQUIRE(norm > 0);  // a case whose output is all zero could not fail
  const double err = rel_l2(got, ref), tol = c.dt == ElemType::BF16 ? 1e-2 : 3e-3;
  CHECK_MESSAGE(err <= tol, "relative L2 error of O " << err << " > " << tol);
}

}  // namespace

TEST_CASE("hstu gpu: gpu present") { REQUIRE(cuda::gpu_present()); }

TEST_CASE("hstu gpu: each bias kind alone and together, jagged unaligned lengths, causal, bf16") {
  uint64_t seed = 1;
  for (int terms : {0, kPos, kTs, kDense, kPos | kTs, kPos | kTs | kDense}) {
    HstuCase c;
    c.terms = terms;
    c.gate = terms == 0;  // the bias-free case is the u-gating one (SiLU without a bias is the forward suite's)
    run_hstu_case(c, seed++);
  }
}

TEST_CASE("hstu gpu: D 64/128, block_q 64/128, block_kv 64/128/256, bf16/f16, u-gating") {
  uint64_t seed = 100;
  for (int64_t d : {64, 128})
    for (int64_t bq : {64, 128})
      for (int64_t bkv : {64, 128, 256})
        for (ElemType dt : {ElemType::BF16, ElemType::F16}) {
          if (bkv == 256 && (bq == 64 || dt == ElemType::F16)) continue;
          HstuCase c;
          c.d = d, c.bq = bq, c.bkv = bkv, c.dt = dt, c.gate = true;
          c.terms = kPos | kTs | (bq == 64 ? kDense : 0);
          run_hstu_case(c, seed++);
        }
}

TEST_CASE("hstu gpu: head dims 96 (padded to 128) and 256") {
  uint64_t seed = 300;
  for (int64_t d : {96, 256})
    for (int64_t bq : {64, 128}) {
      HstuCase c;
      c.d = d, c.bq = bq, c.terms = kPos | kTs | kDense, c.gate = true;
      run_hstu_case(c, seed++);
    }
}

TEST_CASE("hstu gpu: GQA and MQA, non-causal, sparse masks (a selection), fixed-length batches") {
  uint64_t seed = 200;
  for (int64_t hkv : {4, 2, 1})
    for (bool causal : {true, false}) {
      HstuCase c;
      c.hkv = hkv, c.causal = causal, c.terms = kPos | kTs | kDense, c.gate = hkv == 1;
      run_hstu_case(c, seed++);
    }
  for (double density : {0.3, 0.7}) {
    HstuCase c;
    c.density = density, c.d = 128, c.bq = 64, c.bkv = 64;
    run_hstu_case(c, seed++);
  }
  for (bool causal : {true, false}) {
    HstuCase c;
    c.lens.clear();
    c.batch = 2, c.seq = 333, c.causal = causal, c.terms = kPos | kTs | kDense, c.gate = true;
    run_hstu_case(c, seed++);
  }
}

TEST_CASE("hstu gpu: a bias or U with softmax scores, or with the backward, is a usage error") {
  AttentionProblem p;
  p.heads_q = 2, p.heads_kv = 2, p.head_dim = 64, p.q_len = p.kv_len = 128;
  p.dtype = ElemType::BF16;
  BlockMask m = random_mask({1, 2, 128, 128, 128, 128}, true, 1.0, {HeadType::Dense}, 1);
  auto q = random_tensor(size_t(128 * 2 * 64), ElemType::BF16, 5);
  HstuBias b;
  b.pos_len = 4;
  b.pos.assign(8, 0.5f);
  AttentionOptions opt;
  // Softmax scores: lib/hstu refuses; the runner also refuses a bias table or U with softmax.
  CHECK_THROWS_AS(hstu_forward_cuda(p, m, q.raw.data(), q.raw.data(), q.raw.data(), b, nullptr, opt), UsageError);
  const RelativeBiasTables t = hstu_bias_tables(b);
  AttentionInputs in{q.raw.data(), q.raw.data(), q.raw.data(), nullptr};
  in.rab = &t;
  opt.backend = Backend::Cuda;
  CHECK_THROWS_AS(attention_forward(p, m, in, opt), UsageError);
  in.rab = nullptr, in.gate_u = q.raw.data();
  CHECK_THROWS_AS(attention_forward(p, m, in, opt), UsageError);
  // The backward has neither.
  p.score = ScoreFn::Silu, p.silu_n = 128;
  in.gate_u = nullptr, in.rab = &t;
  const std::vector<float> dout(size_t(128 * 2 * 64), 0.25f);
  AttentionResult fwd = attention_forward(p, m, in, opt);
  CHECK_THROWS_AS(attention_backward(p, m, in, fwd, dout.data(), opt), UsageError);
}
