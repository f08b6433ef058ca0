// Dense attention scores visited one block at a time (never an S x S matrix): the building block of
// the exact oracles (block mass, per-row recall) and of the adaptive selectors' checks.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include <Eigen/Core>

#include "lib/attention.h"

namespace bsattn {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Where sequence b lives in the (possibly packed) tensors and how long it is.
struct SeqSpan {
  int64_t q0 = 0, q_len = 0;  // first packed row of Q, rows of this sequence
  int64_t k0 = 0, kv_len = 0;
};
inline SeqSpan seq_span(const AttentionProblem& p, int64_t b) {
  if (!p.varlen()) return {b * p.q_len, p.q_len, b * p.kv_len, p.kv_len};
  return {p.cu_seqlens_q[b], p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b], p.cu_seqlens_k[b],
          p.cu_seqlens_k[b + 1] - p.cu_seqlens_k[b]};
}

// Scores of row block i (rows relative to sequence b) of query head h against every key block j of
// the sequence: visit(j, S, rows, cols) with S = scale * q.k (rows x cols, row-major) and the pairs
// the causal rule removes (k > q + kv_len - q_len, bottom-right aligned) set to -inf.
// q, k: f32 BSHD (packed when varlen).
template <class Visit>
void scan_row_block(const AttentionProblem& p, const float* q, const float* k, bool causal, int64_t block_q,
                    int64_t block_kv, int64_t b, int64_t h, int64_t i, Visit&& visit) {
  SeqSpan s = seq_span(p, b);
  int64_t r0 = i * block_q, rows = std::min(s.q_len, r0 + block_q) - r0;
  if (rows <= 0 || s.kv_len <= 0) return;
  const int64_t D = p.head_dim, hkv = h / (p.heads_q / p.heads_kv);
  const float scale = float(p.effective_scale());
  using Strided = Eigen::Map<const RowMatrixF, 0, Eigen::OuterStride<>>;
  RowMatrixF qi = Strided(q + ((s.q0 + r0) * p.heads_q + h) * D, rows, D, Eigen::OuterStride<>(p.heads_q * D)) * scale;
  RowMatrixF S;
  const int64_t off = s.kv_len - s.q_len, nkb = (s.kv_len + block_kv - 1) / block_kv;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < nkb; ++j) {
    int64_t c0 = j * block_kv, cols = std::min(s.kv_len, c0 + block_kv) - c0;
    if (causal && c0 > r0 + rows - 1 + off) break;  // later blocks are invisible too
    Strided kj(k + ((s.k0 + c0) * p.heads_kv + hkv) * D, cols, D, Eigen::OuterStride<>(p.heads_kv * D));
    S.noalias() = qi * kj.transpose();
    if (causal)
      for (int64_t r = 0; r < rows; ++r) {
        int64_t last = r0 + r + off - c0;  // last visible column in this block
        for (int64_t c = std::max<int64_t>(0, last + 1); c < cols; ++c) S(r, c) = ninf;
      }
    visit(j, S, rows, cols);
  }
}

}  // namespace bsattn
