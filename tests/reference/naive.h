// A plain O(S^2) float64 attention written for the tests: every (query, key) pair visited one by one,
// the mask read token by token from the definitions in DESIGN.md (no code shared with lib/reference).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "lib/attention.h"
#include "lib/rng.h"

namespace naive {

struct Seq {
  int64_t q0, ql, k0, kl;
};
inline Seq seq(const bsattn::AttentionProblem& p, int64_t b) {
  if (p.cu_seqlens_q.empty()) return {b * p.q_len, p.q_len, b * p.kv_len, p.kv_len};
  return {p.cu_seqlens_q[b], p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b], p.cu_seqlens_k[b],
          p.cu_seqlens_k[b + 1] - p.cu_seqlens_k[b]};
}

inline int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Is the pair (query r, key c) of sequence b computed for head h? Positions relative to the sequence.
inline bool pair_kept(const bsattn::AttentionProblem& p, const bsattn::BlockMask& m, int64_t b, int64_t h, int64_t r,
                      int64_t c, const Seq& s) {
  int64_t i = r / m.shape.block_q, j = c / m.shape.block_kv;
  const auto& info = m.heads[size_t(h)];
  bool block;
  if (info.type == bsattn::HeadType::Dense) {
    block = true;
  } else if (info.type == bsattn::HeadType::Streaming) {
    int64_t last_q = std::min(m.shape.q_len, (i + 1) * m.shape.block_q) - 1;
    int64_t mk = (m.shape.kv_len + m.shape.block_kv - 1) / m.shape.block_kv;
    int64_t d = std::min(mk - 1, floordiv(last_q + m.shape.kv_len - m.shape.q_len, m.shape.block_kv));
    block = j < info.sink_blocks || (j <= d && j > d - info.local_blocks);
  } else {
    block = m.at(m.shape.batch == 1 ? 0 : b, h, i, j);
  }
  if (!block) return false;
  if (m.causal && c > r + s.kl - s.ql) return false;
  return true;
}

struct Result {
  std::vector<double> out, lse, dq, dk, dv;
};

inline double fetch(const bsattn::AttentionProblem& p, const float* t, int64_t row, int64_t heads, int64_t h,
                    int64_t d) {
  (void)p;
  return double(t[(row * heads + h) * p.head_dim + d]);
}

// Forward (and backward when dout is given). q, k, v, dout: f32 BSHD.
inline Result run(const bsattn::AttentionProblem& p, const bsattn::BlockMask& m, const float* q, const float* k,
                  const float* v, const float* bias = nullptr, const float* dout = nullptr) {
  const int64_t H = p.heads_q, Hk = p.heads_kv, D = p.head_dim, G = H / Hk;
  const double scale = p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(D));
  const bool softmax = p.score == bsattn::ScoreFn::Softmax;
  int64_t tq = p.cu_seqlens_q.empty() ? p.batch * p.q_len : p.cu_seqlens_q.back();
  int64_t tk = p.cu_seqlens_k.empty() ? p.batch * p.kv_len : p.cu_seqlens_k.back();
  Result res;
  res.out.assign(size_t(tq * H * D), 0.0);
  res.lse.assign(size_t(p.cu_seqlens_q.empty() ? p.batch * H * p.q_len : H * tq),
                 softmax ? -std::numeric_limits<double>::infinity() : 0.0);
  res.dq.assign(size_t(tq * H * D), 0.0);
  res.dk.assign(size_t(tk * Hk * D), 0.0);
  res.dv.assign(size_t(tk * Hk * D), 0.0);
  for (int64_t b = 0; b < p.batch; ++b) {
    Seq s = seq(p, b);
    for (int64_t h = 0; h < H; ++h) {
      int64_t hk = h / G;
      for (int64_t r = 0; r < s.ql; ++r) {
        std::vector<double> x(size_t(s.kl), 0.0);
        std::vector<bool> kept(size_t(s.kl), false);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t c = 0; c < s.kl; ++c) {
          if (!pair_kept(p, m, b, h, r, c, s)) continue;
          kept[c] = true;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += fetch(p, q, s.q0 + r, H, h, d) * fetch(p, k, s.k0 + c, Hk, hk, d);
          x[c] = scale * dot + (bias ? double(bias[(h * p.q_len + r) * p.kv_len + c]) : 0.0);
          mx = std::max(mx, x[c]);
        }
        std::vector<double> w(size_t(s.kl), 0.0), dw(size_t(s.kl), 0.0);  // weights and d weight / d x
        double sum = 0;
        for (int64_t c = 0; c < s.kl; ++c) {
          if (!kept[c]) continue;
          if (softmax) {
            w[c] = std::exp(x[c] - mx);
            sum += w[c];
          } else {
            double sg = 1.0 / (1.0 + std::exp(-x[c]));
            w[c] = x[c] * sg / p.silu_n;
            dw[c] = (sg + x[c] * sg * (1.0 - sg)) / p.silu_n;
          }
        }
        if (softmax && sum == 0) continue;  // no visible key: O = 0, LSE = -inf
        if (softmax) {
          for (auto& e : w) e /= sum;
          int64_t li = p.cu_seqlens_q.empty() ? (b * H + h) * p.q_len + r : h * tq + s.q0 + r;
          res.lse[size_t(li)] = mx + std::log(sum);
        }
        double* o = &res.out[size_t(((s.q0 + r) * H + h) * D)];
        for (int64_t c = 0; c < s.kl; ++c)
          for (int64_t d = 0; d < D; ++d) o[d] += w[c] * fetch(p, v, s.k0 + c, Hk, hk, d);
        if (!dout) continue;
        // Backward of this row: dP_c = dO . v_c; softmax: dx = P (dP - sum_c P dP); SiLU: dx = dP * f'(x).
        std::vector<double> dP(size_t(s.kl), 0.0);
        double dsum = 0;
        for (int64_t c = 0; c < s.kl; ++c) {
          if (!kept[c]) continue;
          for (int64_t d = 0; d < D; ++d) dP[c] += fetch(p, dout, s.q0 + r, H, h, d) * fetch(p, v, s.k0 + c, Hk, hk, d);
          dsum += w[c] * dP[c];
        }
        for (int64_t c = 0; c < s.kl; ++c) {
          if (!kept[c]) continue;
          double dx = softmax ? w[c] * (dP[c] - dsum) : dP[c] * dw[c];
          for (int64_t d = 0; d < D; ++d) {
            res.dq[size_t(((s.q0 + r) * H + h) * D + d)] += scale * dx * fetch(p, k, s.k0 + c, Hk, hk, d);
            res.dk[size_t(((s.k0 + c) * Hk + hk) * D + d)] += scale * dx * fetch(p, q, s.q0 + r, H, h, d);
            res.dv[size_t(((s.k0 + c) * Hk + hk) * D + d)] += w[c] * fetch(p, dout, s.q0 + r, H, h, d);
          }
        }
      }
    }
  }
  return res;
}

inline std::vector<float> randn(size_t n, uint64_t seed, double sd = 1.0) {
  bsattn::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(sd * rng.normal());
  return v;
}

}  // namespace naive
