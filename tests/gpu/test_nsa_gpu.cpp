// NSA on the GPU (lib/nsa/nsa_gpu.h) against the CPU path of lib/nsa (compressed branch and selection in
// float64, block-sparse branches on the CPU reference) on the same 16-bit inputs, and the selection against
// importance computed here in float64 (pooled K, each query's probabilities over the visible compressed
// blocks, summed per key block over the group's heads and the row's queries; no code shared with lib/).
//
// Ties: the GPU ranks blocks by float32 importance computed from 16-bit pooled keys, the CPU by float64, so
// two blocks of nearly equal importance may swap. The selection is therefore checked for what it must be:
// every forced block taken, as many blocks as the rule gives, and no block left out that is more important
// (in float64) than a taken one by more than 2% of the row's largest importance. The selected branch is then
// compared with the CPU reference run on the GPU's own selection, so that a legitimate swap does not fail
// the output check.
//
// Tolerances (relative L2 over all elements): 2e-2 bf16 / 8e-3 f16 for the block-sparse branches and the
// gated output (the forward suite's bound: P rounded to 16 bits before P V); 3e-2 / 1e-2 for the compressed
// branch (pooled K/V and P rounded to the 16-bit type before the two GEMMs).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/attention_runner.h"
#include "lib/error.h"
#include "lib/nsa/nsa.h"
#include "lib/nsa/nsa_gpu.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace gputest;

namespace {

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double d = 0, w = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    d += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    w += double(want[i]) * want[i];
  }
  return std::sqrt(d / std::max(w, 1e-300));
}

struct Case {
  int64_t batch, seq, hq, hkv, d;
  std::string spec;
  ElemType dt;
  bool gates, pool;
};

// Importance [B, Mq, Hkv, Ms] in float64 from the definition (docs/nsa.md).
std::vector<double> importance(const Case& c, const NsaParams& np, const std::vector<double>& q, const std::vector<double>& k,
                               const std::vector<double>& w) {
  const int64_t B = c.batch, S = c.seq, H = c.hq, Hkv = c.hkv, D = c.d, G = H / Hkv;
  const int64_t nc = S >= np.block ? (S - np.block) / np.stride + 1 : 0;
  const int64_t mq = (S + np.qblock - 1) / np.qblock, ms = (S + np.select - 1) / np.select;
  std::vector<double> kc(size_t(B * nc * Hkv * D), 0.0), imp(size_t(B * mq * Hkv * ms), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t j = 0; j < np.block; ++j)
        for (int64_t e = 0; e < Hkv * D; ++e)
          kc[size_t((b * nc + i) * Hkv * D + e)] += w[size_t(j)] * k[size_t((b * S + i * np.stride + j) * Hkv * D + e)];
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> s(static_cast<size_t>(nc));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < S; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / G, nvis = t + 1 >= np.block ? std::min(nc, (t + 1 - np.block) / np.stride + 1) : 0;
        if (!nvis) continue;
        double m = -INFINITY, sum = 0;
        for (int64_t i = 0; i < nvis; ++i) {
          double dot = 0;
          for (int64_t e = 0; e < D; ++e) dot += q[size_t(((b * S + t) * H + h) * D + e)] * kc[size_t(((b * nc + i) * Hkv + g) * D + e)];
          s[size_t(i)] = dot * scale;
          m = std::max(m, s[size_t(i)]);
        }
        for (int64_t i = 0; i < nvis; ++i) sum += std::exp(s[size_t(i)] - m);
        double* row = &imp[size_t(((b * mq + t / np.qblock) * Hkv + g) * ms)];
        for (int64_t i = 0; i < nvis; ++i) {
          const double p = std::exp(s[size_t(i)] - m) / sum;
          for (int64_t j = i * np.stride / np.select; j <= std::min((i * np.stride + np.block - 1) / np.select, ms - 1); ++j)
            row[j] += p;
        }
      }
  return imp;
}

void check(const Case& c, uint64_t seed) {
  CAPTURE(c.spec);
  CAPTURE(c.seq);
  CAPTURE(c.batch);
  const NsaParams base = parse_nsa_spec(c.spec, "--nsa");
  NsaParams np = base;
  const size_t nq = size_t(c.batch * c.seq * c.hq * c.d), nk = size_t(c.batch * c.seq * c.hkv * c.d);
  // Q at standard deviation 4: scores over the mean-pooled keys spread enough that importance ranks the
  // blocks (with sd 1 the rows are nearly uniform and the ranking is mostly ties).
  Tensor16 q = random_tensor(nq, c.dt, seed + 1, 4.0), k = random_tensor(nk, c.dt, seed + 2), v = random_tensor(nk, c.dt, seed + 3);
  Rng r(seed + 4);
  if (c.pool) {
    np.pool.resize(size_t(np.block));
    for (double& x : np.pool) x = r.uniform() * 2.0 / double(np.block);
  }
  std::vector<float> gates;
  if (c.gates) {
    gates.resize(size_t(c.batch * c.seq * c.hq * 3));
    for (float& g : gates) g = float(r.uniform());
  }
  std::vector<float> qf(q.vals.begin(), q.vals.end()), kf(k.vals.begin(), k.vals.end()), vf(v.vals.begin(), v.vals.end());
  AttentionProblem p;
  p.batch = c.batch, p.q_len = p.kv_len = c.seq, p.heads_q = c.hq, p.heads_kv = c.hkv, p.head_dim = c.d;
  p.dtype = ElemType::F32;
  NsaOptions gpu, cpu;
  gpu.backend.backend = Backend::Cuda;
  gpu.cuda_dtype = c.dt;
  const float* gp = c.gates ? gates.data() : nullptr;
  NsaBranches got = nsa_forward(p, qf.data(), kf.data(), vf.data(), np, gp, gpu);
  NsaBranches want = nsa_forward(p, qf.data(), kf.data(), vf.data(), np, gp, cpu);
  const bool bf = c.dt == ElemType::BF16;

  REQUIRE(got.compressed_blocks == want.compressed_blocks);
  CHECK(got.window_mask.bits == want.window_mask.bits);
  CHECK(rel_l2(got.cmp, want.cmp) <= (bf ? 3e-2 : 1e-2));
  CHECK(rel_l2(got.win, want.win) <= (bf ? 2e-2 : 8e-3));

  // The selection against float64 importance.
  const int64_t B = c.batch, S = c.seq, H = c.hq, Hkv = c.hkv, G = H / Hkv;
  const int64_t mq = (S + np.qblock - 1) / np.qblock, ms = (S + np.select - 1) / np.select;
  std::vector<double> w = np.pool.empty() ? std::vector<double>(size_t(np.block), 1.0 / double(np.block)) : np.pool;
  const std::vector<double> imp = importance(c, np, q.vals, k.vals, w);
  REQUIRE(got.select_mask.bits.size() == size_t(B * H * mq * ms));
  int64_t differing_rows = 0, bad = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t row = 0; row < mq; ++row)
      for (int64_t g = 0; g < Hkv; ++g) {
        const int64_t last = std::min(S, (row + 1) * np.qblock) - 1, cb = last / np.select;
        const double* im = &imp[size_t(((b * mq + row) * Hkv + g) * ms)];
        const uint8_t* first = got.select_mask.head_bits(b, g * G) + row * ms;
        for (int64_t h = g * G + 1; h < (g + 1) * G; ++h)  // one selection for the group
          if (!std::equal(first, first + ms, got.select_mask.head_bits(b, h) + row * ms)) ++bad;
        int64_t forced = 0, taken = 0;
        double top = 0, lowest_taken = INFINITY, highest_left = -INFINITY;
        for (int64_t j = 0; j < ms; ++j) {
          const bool f = j <= cb && (j < np.init || j > cb - np.local);
          if (first[j] > 1 || (j > cb && first[j])) ++bad;  // poisoned, or past the row's last query
          if (j > cb) continue;
          forced += f, taken += first[j];
          top = std::max(top, im[j]);
          if (f && !first[j]) ++bad;
          if (f) continue;
          if (first[j]) lowest_taken = std::min(lowest_taken, im[j]);
          else highest_left = std::max(highest_left, im[j]);
        }
        if (taken != std::max(forced, std::min(np.topn, cb + 1))) ++bad;
        if (highest_left > lowest_taken + 0.02 * top) ++bad;
        if (!std::equal(first, first + ms, want.select_mask.head_bits(b, g * G) + row * ms)) ++differing_rows;
      }
  CHECK(bad == 0);
  MESSAGE("rows whose selection differs from the CPU's (near ties): " << differing_rows << " of " << B * mq * Hkv);
  CHECK(differing_rows * 4 <= B * mq * Hkv);  // near ties are a minority of the rows

  // The selected branch and the gated output against the CPU reference on the GPU's own selection.
  AttentionProblem pf = p;
  BlockMask sel = got.select_mask;
  const std::vector<float> slc = attention_forward(pf, sel, {qf.data(), kf.data(), vf.data(), nullptr}).out;
  CHECK(rel_l2(got.slc, slc) <= (bf ? 2e-2 : 8e-3));
  std::vector<float> out(slc.size());
  for (size_t x = 0; x < out.size(); ++x) {
    const size_t gi = x / size_t(c.d) * 3;
    const float gc = c.gates ? gates[gi] : 1.f / 3, gs = c.gates ? gates[gi + 1] : 1.f / 3, gw = c.gates ? gates[gi + 2] : 1.f / 3;
    out[x] = gc * want.cmp[x] + gs * slc[x] + gw * want.win[x];
  }
  CHECK(rel_l2(got.out, out) <= (bf ? 2e-2 : 1e-2));
}

}  // namespace

TEST_CASE("NSA on the GPU: compression, compressed branch, selection, branches and gates against the CPU path") {
  REQUIRE(cuda::gpu_present());
  const std::vector<Case> cases = {
      // The configuration, shorter: block 64, stride 32, top-16, window 512, H=16, GQA 4.
      {1, 4096, 16, 4, 128, "block=64,stride=32,select=64,topn=16,window=512,qblock=64", ElemType::BF16, false, false},
      // Tails (S not a multiple of the blocks), gates, batch 2, f16, qblock 128 over select 64.
      {2, 1000, 8, 2, 64, "block=32,stride=16,select=64,topn=6,window=128,init=1,local=2,qblock=128", ElemType::F16, true, false},
      // Non-overlapping compression with given weights, select 128, MQA, no initial block, three local ones.
      {1, 1536, 8, 1, 128, "block=64,stride=64,select=128,topn=5,window=256,init=0,local=3,qblock=64", ElemType::BF16, true, true},
      // Fewer tokens than a compression block: no compressed block at all (o_cmp = 0, forced blocks only).
      {1, 50, 4, 2, 64, "block=64,stride=32,select=64,topn=4,window=64,qblock=64", ElemType::BF16, true, false},
      // A head dim the block-sparse kernels run padded.
      {1, 700, 4, 2, 96, "block=32,stride=16,select=64,topn=4,window=128,qblock=64", ElemType::BF16, false, false},
  };
  uint64_t seed = 4100;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_CASE("NSA on the GPU: what it cannot run is a usage error before any GPU work") {
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = 256, p.heads_q = 4, p.heads_kv = 2, p.head_dim = 64;
  p.dtype = ElemType::BF16;
  REQUIRE(nsa_gpu() != nullptr);
  CHECK_THROWS_AS(nsa_gpu()->check(p, parse_nsa_spec("qblock=1", "--nsa"), {}), UsageError);
  CHECK_THROWS_AS(nsa_gpu()->check(p, parse_nsa_spec("qblock=64,select=32", "--nsa"), {}), UsageError);
  p.head_dim = 512;
  CHECK_THROWS_AS(nsa_gpu()->check(p, parse_nsa_spec("qblock=64", "--nsa"), {}), UsageError);
  p.head_dim = 64;
  p.dtype = ElemType::F32;
  CHECK_THROWS_AS(nsa_gpu()->check(p, parse_nsa_spec("qblock=64", "--nsa"), {}), UsageError);
  p.dtype = ElemType::BF16;
  CHECK_NOTHROW(nsa_gpu()->check(p, parse_nsa_spec("qblock=64", "--nsa"), {}));
}

TEST_CASE("NSA on the GPU: the timed pipeline runs every part (bench --nsa's path)") {
  REQUIRE(cuda::gpu_present());
  AttentionProblem p;
  p.batch = 1, p.q_len = p.kv_len = 2048, p.heads_q = 8, p.heads_kv = 2, p.head_dim = 128;
  p.dtype = ElemType::BF16;
  const size_t nq = size_t(2048 * 8 * 128), nk = size_t(2048 * 2 * 128);
  Tensor16 q = random_tensor(nq, p.dtype, 41), k = random_tensor(nk, p.dtype, 42), v = random_tensor(nk, p.dtype, 43);
  AttentionOptions opt;
  opt.backend = Backend::Cuda;
  bench::TimingOptions t;
  t.warmup = 1, t.min_samples = 3, t.max_time_s = 0.05;
  const NsaParams np = parse_nsa_spec("qblock=64", "--nsa");
  const NsaGpuTiming r = nsa_gpu()->time(p, np, {q.raw.data(), k.raw.data(), v.raw.data(), nullptr}, nullptr, opt, t);
  CHECK(r.total.samples >= 3);
  CHECK(r.selection.median_ms > 0);
  CHECK(r.branches.median_ms > 0);
  CHECK(r.gate.median_ms > 0);
  CHECK(r.total.median_ms > r.gate.median_ms);
  CHECK(!r.kernel.empty());
}
