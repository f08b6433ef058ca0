// Helpers shared by the GPU suites: seeded inputs in bf16/f16, random masks with per-head types, and a
// plain float64 attention (forward and backward) written for the tests (independent of lib/reference
// and of the kernels).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>
#include <thread>
#include <atomic>
#include <algorithm>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/npy.h"
#include "lib/rng.h"

namespace gputest {

using namespace bsattn;

// Normal(0,1) values rounded to the dtype; `vals` holds the rounded values as double for the reference.
struct Tensor16 {
  std::vector<uint16_t> raw;
  std::vector<double> vals;
};
inline Tensor16 random_tensor(size_t n, ElemType t, uint64_t seed, double sd = 1.0) {
  Rng r(seed);
  Tensor16 x;
  x.raw.resize(n);
  x.vals.resize(n);
  for (size_t i = 0; i < n; ++i) {
    float f = float(r.normal() * sd);
    uint16_t h = t == ElemType::BF16 ? float_to_bf16(f) : float_to_half(f);
    x.raw[i] = h;
    x.vals[i] = t == ElemType::BF16 ? bf16_to_float(h) : half_to_float(h);
  }
  return x;
}

// Mask with head types cycling over `types` (dense / sparse at `density` / streaming sink 1 local 2).
inline BlockMask random_mask(const MaskShape& s, bool causal, double density, const std::vector<HeadType>& types,
                             uint64_t seed) {
  BlockMask m(s);
  m.causal = causal;
  Rng r(seed);
  auto g = m.geometry();
  int64_t mq = s.mq(), mk = s.mk();
  for (int64_t h = 0; h < s.heads; ++h) {
    HeadType t = types[size_t(h) % types.size()];
    m.heads[h].type = t;
    if (t == HeadType::Streaming) m.heads[h].sink_blocks = 1, m.heads[h].local_blocks = 2;
    for (int64_t b = 0; b < s.batch; ++b) {
      uint8_t* hb = m.head_bits(b, h);
      if (t == HeadType::Streaming) {
        fill_streaming(g, 1, 2, hb);
      } else {
        for (int64_t i = 0; i < mq; ++i)
          for (int64_t j = 0; j < mk; ++j) hb[i * mk + j] = t == HeadType::Dense || r.uniform() < density;
      }
      if (causal)
        for (int64_t i = 0; i < mq; ++i)
          for (int64_t j = 0; j < mk; ++j)
            if (!g.causal_visible(i, j)) hb[i * mk + j] = 0;
    }
  }
  m.check_consistency();
  return m;
}

// float64 attention: the mask bitmap (every head), bottom-right causal with each sequence's own lengths,
// tails; softmax or SiLU. Output layout as AttentionResult.
struct Ref {
  std::vector<double> out, lse;
};
inline Ref reference_f64(const AttentionProblem& p, const BlockMask& m, const std::vector<double>& q,
                         const std::vector<double>& k, const std::vector<double>& v) {
  const int64_t Hq = p.heads_q, Hk = p.heads_kv, D = p.head_dim;
  Ref r;
  r.out.assign(size_t(p.total_q() * Hq * D), 0.0);
  r.lse.assign(size_t(p.varlen() ? Hq * p.total_q() : p.batch * Hq * p.q_len), 0.0);
  const double scale = p.effective_scale();
  // One (batch, head) pair per task, spread over the host's cores: each writes its own rows only.
  auto one = [&](int64_t b, int64_t h) {
    int64_t qs = p.varlen() ? p.cu_seqlens_q[b] : b * p.q_len, ks = p.varlen() ? p.cu_seqlens_k[b] : b * p.kv_len;
    int64_t lq = p.varlen() ? p.cu_seqlens_q[b + 1] - qs : p.q_len;
    int64_t lk = p.varlen() ? p.cu_seqlens_k[b + 1] - ks : p.kv_len;
    int64_t mb = m.shape.batch == 1 ? 0 : b;
    int64_t hk = h / (Hq / Hk);
    std::vector<double> s(static_cast<size_t>(lk)), acc(static_cast<size_t>(D));
    std::vector<char> vis(static_cast<size_t>(lk));
    for (int64_t i = 0; i < lq; ++i) {
      const double* qi = &q[size_t(((qs + i) * Hq + h) * D)];
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < lk; ++j) {
        vis[j] = m.at(mb, h, i / m.shape.block_q, j / m.shape.block_kv) && (!m.causal || j <= i + lk - lq);
        if (!vis[j]) continue;
        const double* kj = &k[size_t(((ks + j) * Hk + hk) * D)];
        double d = 0;
        for (int64_t x = 0; x < D; ++x) d += qi[x] * kj[x];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      double sum = 0;
      for (int64_t j = 0; j < lk; ++j) {
        if (!vis[j]) continue;
        double w = p.score == ScoreFn::Silu ? s[j] / (1 + std::exp(-s[j])) / p.silu_n : std::exp(s[j] - mx);
        sum += w;
        const double* vj = &v[size_t(((ks + j) * Hk + hk) * D)];
        for (int64_t x = 0; x < D; ++x) acc[x] += w * vj[x];
      }
      double norm = p.score == ScoreFn::Silu ? 1.0 : (sum > 0 ? 1.0 / sum : 0.0);
      for (int64_t x = 0; x < D; ++x) r.out[size_t(((qs + i) * Hq + h) * D + x)] = acc[x] * norm;
      int64_t li = p.varlen() ? h * p.total_q() + qs + i : (b * Hq + h) * p.q_len + i;
      r.lse[size_t(li)] = p.score == ScoreFn::Silu ? 0.0
                          : sum > 0                 ? mx + std::log(sum)
                                                    : -std::numeric_limits<double>::infinity();
    }
  };
  const int64_t tasks = p.batch * Hq;
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t t; (t = next++) < tasks;) one(t / Hq, t % Hq);
  };
  unsigned n = std::max(1u, std::min(std::thread::hardware_concurrency(), unsigned(tasks)));
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < n; ++w) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return r;
}

// float64 backward, written for the tests: dQ, dK, dV from dO and the float64 forward `f` (its LSE; O
// for D_i), straight from the definitions: softmax P = exp(scale s - LSE), dS = P (dP - D_i) with
// D_i = dO_i . O_i; SiLU P = SiLU(x)/n, dS = dP SiLU'(x)/n with x = scale s; dQ = scale dS K,
// dK = scale dS^T Q (summed over the query heads of a GQA group), dV = P^T dO. `round16` (F16 / BF16)
// rounds O (for D_i), P and dS to that type where the kernels do, which gives a reference of the
// kernels' own precision; F32 rounds nothing.
struct RefGrads {
  std::vector<double> dq, dk, dv;
};
inline double round_to(double x, ElemType t) {
  if (t == ElemType::BF16) return bf16_to_float(float_to_bf16(float(x)));
  if (t == ElemType::F16) return half_to_float(float_to_half(float(x)));
  return x;
}
inline RefGrads reference_backward_f64(const AttentionProblem& p, const BlockMask& m, const std::vector<double>& q,
                                       const std::vector<double>& k, const std::vector<double>& v,
                                       const std::vector<double>& dout, const Ref& f, ElemType round16) {
  const int64_t Hq = p.heads_q, Hk = p.heads_kv, D = p.head_dim, group = Hq / Hk;
  RefGrads g;
  g.dq.assign(size_t(p.total_q() * Hq * D), 0.0);
  g.dk.assign(size_t(p.total_k() * Hk * D), 0.0);
  g.dv.assign(size_t(p.total_k() * Hk * D), 0.0);
  const double scale = p.effective_scale();
  const bool silu = p.score == ScoreFn::Silu;
  // One (batch, KV head) pair per task: it alone writes those dK/dV rows and its heads' dQ rows.
  auto one = [&](int64_t b, int64_t hk) {
    int64_t qs = p.varlen() ? p.cu_seqlens_q[b] : b * p.q_len, ks = p.varlen() ? p.cu_seqlens_k[b] : b * p.kv_len;
    int64_t lq = p.varlen() ? p.cu_seqlens_q[b + 1] - qs : p.q_len;
    int64_t lk = p.varlen() ? p.cu_seqlens_k[b + 1] - ks : p.kv_len;
    int64_t mb = m.shape.batch == 1 ? 0 : b;
    for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
      for (int64_t i = 0; i < lq; ++i) {
        const double* qi = &q[size_t(((qs + i) * Hq + h) * D)];
        const double* gi = &dout[size_t(((qs + i) * Hq + h) * D)];
        const double* oi = &f.out[size_t(((qs + i) * Hq + h) * D)];
        int64_t li = p.varlen() ? h * p.total_q() + qs + i : (b * Hq + h) * p.q_len + i;
        const double lse = f.lse[size_t(li)];
        if (!silu && std::isinf(lse)) continue;  // an empty row: no gradient flows
        double delta = 0;
        for (int64_t x = 0; x < D; ++x) delta += gi[x] * round_to(oi[x], round16);
        double* dqi = &g.dq[size_t(((qs + i) * Hq + h) * D)];
        for (int64_t j = 0; j < lk; ++j) {
          if (!(m.at(mb, h, i / m.shape.block_q, j / m.shape.block_kv) && (!m.causal || j <= i + lk - lq))) continue;
          const double* kj = &k[size_t(((ks + j) * Hk + hk) * D)];
          const double* vj = &v[size_t(((ks + j) * Hk + hk) * D)];
          double s = 0, dp = 0;
          for (int64_t x = 0; x < D; ++x) s += qi[x] * kj[x], dp += gi[x] * vj[x];
          const double xs = s * scale;
          double pr, ds;
          if (silu) {
            const double sg = 1 / (1 + std::exp(-xs));
            pr = xs * sg / p.silu_n;
            ds = dp * sg * (1 + xs * (1 - sg)) / p.silu_n;
          } else {
            pr = std::exp(xs - lse);
            ds = pr * (dp - delta);
          }
          pr = round_to(pr, round16);
          ds = round_to(ds, round16);
          double* dkj = &g.dk[size_t(((ks + j) * Hk + hk) * D)];
          double* dvj = &g.dv[size_t(((ks + j) * Hk + hk) * D)];
          for (int64_t x = 0; x < D; ++x) {
            dqi[x] += scale * ds * kj[x];
            dkj[x] += scale * ds * qi[x];
            dvj[x] += pr * gi[x];
          }
        }
      }
  };
  const int64_t tasks = p.batch * Hk;
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t t; (t = next++) < tasks;) one(t / Hk, t % Hk);
  };
  unsigned n = std::max(1u, std::min(std::thread::hardware_concurrency(), unsigned(tasks)));
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < n; ++w) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return g;
}

// ||a - ref|| / ||ref|| over the rows that exist (varlen rows past a sequence end are not outputs).
inline double rel_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = double(a[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace gputest
