#include "lib/reference/cpu_attention.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <Eigen/Core>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/reference/dense_scan.h"
#include "lib/reference/parallel.h"

namespace bsattn {

template <class T>
std::vector<T> convert_checked(const void* data, ElemType dtype, int64_t n, int64_t heads, int64_t head_dim,
                               int64_t rows_per_batch, const char* name) {
  if (!data) throw UsageError(std::string(name) + " is missing");
  std::vector<T> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    float f;
    switch (dtype) {
      case ElemType::F32: f = static_cast<const float*>(data)[e]; break;
      case ElemType::F16: f = half_to_float(static_cast<const uint16_t*>(data)[e]); break;
      default: f = bf16_to_float(static_cast<const uint16_t*>(data)[e]); break;
    }
    if (!std::isfinite(f)) {
      int64_t d = e % head_dim, h = (e / head_dim) % heads, row = e / (head_dim * heads);
      std::string pos = rows_per_batch > 0 ? "b=" + std::to_string(row / rows_per_batch) + ", s=" +
                                                 std::to_string(row % rows_per_batch)
                                           : "row=" + std::to_string(row);
      throw UsageError(std::string(name) + " has " + (std::isnan(f) ? "NaN" : "Inf") + " at [" + pos +
                       ", h=" + std::to_string(h) + ", d=" + std::to_string(d) + "] (inputs must be finite)");
    }
    out[size_t(e)] = T(f);
  }
  return out;
}
template std::vector<float> convert_checked<float>(const void*, ElemType, int64_t, int64_t, int64_t, int64_t,
                                                   const char*);
template std::vector<double> convert_checked<double>(const void*, ElemType, int64_t, int64_t, int64_t, int64_t,
                                                     const char*);

namespace {
// "[b=.., s=.., h=.., d=..]" for element e of a [rows, heads, head_dim] tensor (packed rows when
// rows_per_batch <= 0), as convert_checked reports inputs.
std::string element_position(int64_t e, int64_t heads, int64_t head_dim, int64_t rows_per_batch) {
  int64_t d = e % head_dim, h = (e / head_dim) % heads, row = e / (head_dim * heads);
  std::string pos = rows_per_batch > 0 ? "b=" + std::to_string(row / rows_per_batch) + ", s=" +
                                             std::to_string(row % rows_per_batch)
                                       : "row=" + std::to_string(row);
  return "[" + pos + ", h=" + std::to_string(h) + ", d=" + std::to_string(d) + "]";
}

template <class T>
const char* precision_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// A result with a NaN or Inf came from finite inputs whose scores, sums or products left the range of
// T: an error naming the first element, never a plausible-looking output.
template <class T>
void check_finite_result(const std::vector<T>& x, int64_t heads, int64_t head_dim, int64_t rows_per_batch,
                         const char* name) {
  for (size_t e = 0; e < x.size(); ++e)
    if (!std::isfinite(x[e]))
      throw UsageError(std::string(name) + " is " + (std::isnan(x[e]) ? "NaN" : "Inf") + " at " +
                       element_position(int64_t(e), heads, head_dim, rows_per_batch) + ": an intermediate overflowed " +
                       precision_name<T>() + " (inputs too large for this precision; scale Q/K/V/dO down" +
                       (sizeof(T) == 4 ? " or use --f64)" : ")"));
}
}  // namespace

std::vector<float> narrow_to_float32(const std::vector<double>& x, const char* name) {
  std::vector<float> out(x.size());
  for (size_t e = 0; e < x.size(); ++e) {
    if (std::isfinite(x[e]) && std::fabs(x[e]) > double(std::numeric_limits<float>::max()))
    {
      char v[32];
      std::snprintf(v, sizeof v, "%.4g", x[e]);
      throw UsageError(std::string(name) + " element " + std::to_string(e) + " = " + v +
                       " does not fit float32 (at most 3.4e38): the float64 result cannot be written as float32");
    }
    out[e] = float(x[e]);
  }
  return out;
}

std::vector<int64_t> visited_blocks(const BlockMask& mask, int64_t mask_b, int64_t h, int64_t i) {
  const int64_t mk = mask.shape.mk();
  const HeadInfo& info = mask.heads[size_t(h)];
  std::vector<int64_t> js;
  if (info.type == HeadType::Dense) {
    for (int64_t j = 0; j < mk; ++j) js.push_back(j);
  } else if (info.type == HeadType::Streaming) {
    int64_t d = mask.geometry().diag_block(i);
    for (int64_t j = 0; j < mk; ++j)
      if (j < info.sink_blocks || (j <= d && j > d - info.local_blocks)) js.push_back(j);
  } else {
    const uint8_t* row = mask.head_bits(mask_b, h) + i * mk;
    for (int64_t j = 0; j < mk; ++j)
      if (row[j]) js.push_back(j);
  }
  return js;
}

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Strided = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using StridedMut = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using Col = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Inputs converted to T once, plus everything the block loops need.
template <class T>
struct Prepared {
  const AttentionProblem& p;
  const BlockMask& mask;
  std::vector<T> q, k, v;
  const float* bias;
  T scale;
  int64_t H, Hkv, D, group, bq, bk, mq, mk;
  bool softmax, causal;

  Prepared(const AttentionProblem& p_, const BlockMask& m, const AttentionInputs& in) : p(p_), mask(m) {
    p.validate(mask);
    H = p.heads_q;
    Hkv = p.heads_kv;
    D = p.head_dim;
    group = H / Hkv;
    int64_t rq = p.varlen() ? 0 : p.q_len, rk = p.varlen() ? 0 : p.kv_len;
    q = convert_checked<T>(in.q, p.dtype, p.total_q() * H * D, H, D, rq, "Q");
    k = convert_checked<T>(in.k, p.dtype, p.total_k() * Hkv * D, Hkv, D, rk, "K");
    v = convert_checked<T>(in.v, p.dtype, p.total_k() * Hkv * D, Hkv, D, rk, "V");
    bias = in.silu_bias;
    softmax = p.score == ScoreFn::Softmax;
    if (bias && softmax) throw UsageError("a score bias is only defined for SiLU attention");
    if (bias) {
      int64_t nb = H * p.q_len * p.kv_len;
      for (int64_t e = 0; e < nb; ++e)
        if (!std::isfinite(bias[e])) throw UsageError("SiLU bias has NaN/Inf at element " + std::to_string(e));
    }
    scale = T(p.effective_scale());
    causal = mask.causal;
    bq = mask.shape.block_q;
    bk = mask.shape.block_kv;
    mq = mask.shape.mq();
    mk = mask.shape.mk();
  }
  int64_t mask_b(int64_t b) const { return mask.shape.batch == 1 ? 0 : b; }
  Strided<T> rows_of(const std::vector<T>& t, int64_t heads, int64_t row0, int64_t h, int64_t n) const {
    return Strided<T>(t.data() + (row0 * heads + h) * D, n, D, Eigen::OuterStride<>(heads * D));
  }
  int64_t lse_index(int64_t b, int64_t h, int64_t r, const SeqSpan& s) const {
    return p.varlen() ? h * p.total_q() + s.q0 + r : (b * H + h) * p.q_len + r;
  }

  // S = (scale*Q_i) K_j^T (+ bias for SiLU) with invisible pairs set to -inf. Returns false when
  // the block has no visible pair (nothing to do).
  bool scores(const RowMat<T>& qi, const SeqSpan& s, int64_t h, int64_t r0, int64_t rows, int64_t j,
              RowMat<T>& S, int64_t& c0, int64_t& cols) const {
    c0 = j * bk;
    cols = std::min(s.kv_len, c0 + bk) - c0;
    if (cols <= 0) return false;
    const int64_t off = s.kv_len - s.q_len;
    if (causal && c0 > r0 + rows - 1 + off) return false;
    S.noalias() = qi * rows_of(k, Hkv, s.k0 + c0, h / group, cols).transpose();
    if (bias)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) S(r, c) += T(bias[(h * p.q_len + r0 + r) * p.kv_len + c0 + c]);
    if (crosses_diagonal(s, r0, c0, cols)) {
      const T ninf = -std::numeric_limits<T>::infinity();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = first_hidden(s, r0 + r, c0); c < cols; ++c) S(r, c) = ninf;
    }
    return true;
  }
  bool crosses_diagonal(const SeqSpan& s, int64_t r0, int64_t c0, int64_t cols) const {
    return causal && c0 + cols - 1 > r0 + (s.kv_len - s.q_len);
  }
  // First column (relative to c0) that row `row` may not see.
  int64_t first_hidden(const SeqSpan& s, int64_t row, int64_t c0) const {
    return std::max<int64_t>(0, row + (s.kv_len - s.q_len) - c0 + 1);
  }
  // Columns of row `row` that the block starting at c0 shows (the rest are -inf from scores()). The
  // softmax takes exp over these only and writes exact zeros after them: Eigen's vectorized exp
  // clamps its argument, so exp(-inf) would come out as a float denormal (~4e-39), a wrong weight
  // for huge V, and denormals slow the CPU by an order of magnitude (causal masks ran 7x slower
  // than random ones of the same size).
  int64_t visible_cols(const SeqSpan& s, int64_t row, int64_t c0, int64_t cols) const {
    return causal ? std::min(cols, first_hidden(s, row, c0)) : cols;
  }
};

// SiLU(x)/n and its derivative d/dx; masked pairs (x = -inf) give 0.
template <class T>
inline void silu_terms(T x, T inv_n, T& f, T& df) {
  if (std::isinf(x) && x < 0) {  // masked pair; +inf is an overflow the result check reports
    f = df = 0;
    return;
  }
  T sg = T(1) / (T(1) + std::exp(-x));
  f = x * sg * inv_n;
  df = sg * (T(1) + x * (T(1) - sg)) * inv_n;
}

}  // namespace

// parallel_for over a pass's tasks, announced to and stepped on the progress meter when there is one.
template <class F>
void run_tasks(int64_t n, F&& fn, const CpuAttentionOptions& opt) {
  if (opt.progress) opt.progress->add_work(n);
  parallel_for(
      n,
      [&](int64_t task) {
        fn(task);
        if (opt.progress) opt.progress->step();
      },
      opt.threads);
}

template <class T>
CpuForward<T> cpu_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                          const CpuAttentionOptions& opt) {
  Prepared<T> P(p, mask, in);
  const int64_t H = P.H, D = P.D;
  CpuForward<T> res;
  res.out.assign(size_t(p.total_q() * H * D), T(0));
  const T fill = P.softmax ? -std::numeric_limits<T>::infinity() : T(0);
  res.lse.assign(size_t(p.varlen() ? H * p.total_q() : p.batch * H * p.q_len), fill);
  const T inv_n = P.softmax ? T(0) : T(1.0 / p.silu_n);
  // The first row (task * bq + row in block) whose running maximum score left the range of T, so that
  // an overflow is reported instead of being taken for a row with no visible key (O = 0, LSE = -inf).
  std::atomic<int64_t> overflow_row{-1};
  run_tasks(
      p.batch * H * P.mq,
      [&](int64_t task) {
        int64_t i = task % P.mq, bh = task / P.mq, h = bh % H, b = bh / H;
        SeqSpan s = seq_span(p, b);
        int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
        if (rows <= 0) return;
        RowMat<T> qi = P.rows_of(P.q, H, s.q0 + r0, h, rows) * P.scale;
        RowMat<T> acc = RowMat<T>::Zero(rows, D), S, W;
        Col<T> m = Col<T>::Constant(rows, -std::numeric_limits<T>::infinity()), l = Col<T>::Zero(rows);
        for (int64_t j : visited_blocks(mask, P.mask_b(b), h, i)) {
          int64_t c0, cols;
          if (!P.scores(qi, s, h, r0, rows, j, S, c0, cols)) continue;
          auto vj = P.rows_of(P.v, P.Hkv, s.k0 + c0, h / P.group, cols);
          if (P.softmax) {
            // +inf and -inf products in one dot product give a NaN score, which the row maximum would
            // skip (and a row of them would pass for a row with no visible key).
            if (S.hasNaN())
              for (int64_t r = 0; r < rows; ++r)
                if (S.row(r).hasNaN()) {
                  int64_t none = -1;
                  overflow_row.compare_exchange_strong(none, task * P.bq + r);
                  break;
                }
            Col<T> mnew = m.cwiseMax(S.rowwise().maxCoeff()), alpha(rows);
            for (int64_t r = 0; r < rows; ++r) {
              if (!(mnew[r] < std::numeric_limits<T>::infinity())) {  // +inf or NaN: a score overflowed T
                int64_t none = -1;
                overflow_row.compare_exchange_strong(none, task * P.bq + r);
                S.row(r).setZero();
                alpha[r] = T(1);
                continue;
              }
              if (std::isinf(mnew[r])) {  // nothing visible yet (Eigen's exp clamps, so never exp(-inf))
                S.row(r).setZero();
                alpha[r] = T(1);
                continue;
              }
              alpha[r] = std::isinf(m[r]) ? T(0) : std::exp(m[r] - mnew[r]);
              // exp over the visible columns only; the hidden ones (-inf) are exact zeros (see
              // visible_cols: exp(-inf) through Eigen's clamp would be a slow denormal).
              const int64_t n = P.visible_cols(s, r0 + r, c0, cols);
              S.row(r).head(n).array() = (S.row(r).head(n).array() - mnew[r]).exp();
              S.row(r).tail(cols - n).setZero();
            }
            for (int64_t r = 0; r < rows; ++r) {
              l[r] = l[r] * alpha[r] + S.row(r).sum();
              acc.row(r) *= alpha[r];
            }
            m = mnew;
            acc.noalias() += S * vj;
          } else {
            W.resize(rows, cols);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c) {
                T df;
                silu_terms(S(r, c), inv_n, W(r, c), df);
              }
            acc.noalias() += W * vj;
          }
        }
        StridedMut<T> o(res.out.data() + ((s.q0 + r0) * H + h) * D, rows, D, Eigen::OuterStride<>(H * D));
        for (int64_t r = 0; r < rows; ++r) {
          if (!P.softmax) {
            o.row(r) = acc.row(r);
          } else if (!std::isfinite(l[r])) {  // a NaN score (+inf plus -inf in a dot product) or sum
            int64_t none = -1;
            overflow_row.compare_exchange_strong(none, task * P.bq + r);
          } else if (l[r] > 0) {
            o.row(r) = acc.row(r) / l[r];
            res.lse[size_t(P.lse_index(b, h, r0 + r, s))] = m[r] + std::log(l[r]);
          }
        }
      },
      opt);
  if (int64_t code = overflow_row.load(); code >= 0) {
    const int64_t task = code / P.bq, r = code % P.bq, i = task % P.mq, bh = task / P.mq;
    throw UsageError("attention scores overflow " + std::string(precision_name<T>()) + " for the query at [b=" +
                     std::to_string(bh / H) + ", s=" + std::to_string(i * P.bq + r) + ", h=" + std::to_string(bh % H) +
                     "]: scale*q.k is not finite (Q/K too large for this precision; scale them down" +
                     (sizeof(T) == 4 ? " or use --f64)" : ")"));
  }
  const int64_t rq = p.varlen() ? 0 : p.q_len;
  check_finite_result(res.out, H, D, rq, "O");
  for (size_t e = 0; e < res.lse.size(); ++e)
    if (std::isnan(res.lse[e]) || res.lse[e] == std::numeric_limits<T>::infinity())
      throw UsageError("LSE is not finite at element " + std::to_string(e) + ": the softmax sum overflowed " +
                       precision_name<T>() + " (inputs too large for this precision)");
  return res;
}

template <class T>
CpuGradients<T> cpu_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const CpuForward<T>& fwd, const float* dout, const CpuAttentionOptions& opt) {
  Prepared<T> P(p, mask, in);
  const int64_t H = P.H, Hkv = P.Hkv, D = P.D;
  const int64_t nq = p.total_q() * H * D;
  if (int64_t(fwd.out.size()) != nq) throw UsageError("backward: O does not match the problem's sizes");
  std::vector<T> dO = convert_checked<T>(dout, ElemType::F32, nq, H, D, p.varlen() ? 0 : p.q_len, "dO");
  // Delta_i = rowsum(dO * O) per (row, head) (softmax only).
  std::vector<T> delta(size_t(p.total_q() * H), T(0));
  if (P.softmax)
    for (int64_t e = 0; e < p.total_q() * H; ++e) {
      T acc = 0;
      for (int64_t d = 0; d < D; ++d) acc += dO[size_t(e * D + d)] * fwd.out[size_t(e * D + d)];
      delta[size_t(e)] = acc;
    }
  const T inv_n = P.softmax ? T(0) : T(1.0 / p.silu_n);
  CpuGradients<T> g;
  g.dq.assign(size_t(nq), T(0));
  g.dk.assign(size_t(p.total_k() * Hkv * D), T(0));
  g.dv.assign(size_t(p.total_k() * Hkv * D), T(0));

  // dS (into S) and, for dK/dV, P or SiLU weights (into W) of one block pair.
  auto block_grads = [&](const RowMat<T>& S_in, RowMat<T>& Pm, RowMat<T>& dS, const RowMat<T>& dOi,
                         const Strided<T>& vj, int64_t b, int64_t h, int64_t r0, const SeqSpan& s) {
    int64_t rows = S_in.rows(), cols = S_in.cols();
    RowMat<T> dP = dOi * vj.transpose();
    Pm.resize(rows, cols);
    dS.resize(rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      if (P.softmax) {
        T lse = fwd.lse[size_t(P.lse_index(b, h, r0 + r, s))];
        T dl = delta[size_t((s.q0 + r0 + r) * H + h)];
        for (int64_t c = 0; c < cols; ++c) {
          T pr = std::isinf(lse) ? T(0) : std::exp(S_in(r, c) - lse);
          Pm(r, c) = pr;
          dS(r, c) = pr * (dP(r, c) - dl);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c) {
          T df;
          silu_terms(S_in(r, c), inv_n, Pm(r, c), df);
          dS(r, c) = dP(r, c) * df;
        }
      }
    }
  };

  // dQ: by (batch, head, row block).
  run_tasks(
      p.batch * H * P.mq,
      [&](int64_t task) {
        int64_t i = task % P.mq, bh = task / P.mq, h = bh % H, b = bh / H;
        SeqSpan s = seq_span(p, b);
        int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
        if (rows <= 0) return;
        RowMat<T> qi = P.rows_of(P.q, H, s.q0 + r0, h, rows) * P.scale;
        RowMat<T> dOi = P.rows_of(dO, H, s.q0 + r0, h, rows);
        RowMat<T> dq = RowMat<T>::Zero(rows, D), S, Pm, dS;
        for (int64_t j : visited_blocks(mask, P.mask_b(b), h, i)) {
          int64_t c0, cols;
          if (!P.scores(qi, s, h, r0, rows, j, S, c0, cols)) continue;
          auto vj = P.rows_of(P.v, Hkv, s.k0 + c0, h / P.group, cols);
          block_grads(S, Pm, dS, dOi, vj, b, h, r0, s);
          dq.noalias() += dS * P.rows_of(P.k, Hkv, s.k0 + c0, h / P.group, cols);
        }
        StridedMut<T>(g.dq.data() + ((s.q0 + r0) * H + h) * D, rows, D, Eigen::OuterStride<>(H * D)) = dq * P.scale;
      },
      opt);

  // dK, dV: by (batch, kv head, column block), summing the query heads of the group.
  run_tasks(
      p.batch * Hkv * P.mk,
      [&](int64_t task) {
        int64_t j = task % P.mk, bh = task / P.mk, hk = bh % Hkv, b = bh / Hkv;
        SeqSpan s = seq_span(p, b);
        int64_t c0 = j * P.bk, cols = std::min(s.kv_len, c0 + P.bk) - c0;
        if (cols <= 0) return;
        RowMat<T> dk = RowMat<T>::Zero(cols, D), dv = RowMat<T>::Zero(cols, D), S, Pm, dS;
        auto vj = P.rows_of(P.v, Hkv, s.k0 + c0, hk, cols);
        for (int64_t h = hk * P.group; h < (hk + 1) * P.group; ++h)
          for (int64_t i = 0; i < P.mq; ++i) {
            int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
            if (rows <= 0) break;
            auto js = visited_blocks(mask, P.mask_b(b), h, i);
            if (!std::binary_search(js.begin(), js.end(), j)) continue;
            RowMat<T> qi = P.rows_of(P.q, H, s.q0 + r0, h, rows) * P.scale;
            int64_t cc0, ccols;
            if (!P.scores(qi, s, h, r0, rows, j, S, cc0, ccols)) continue;
            RowMat<T> dOi = P.rows_of(dO, H, s.q0 + r0, h, rows);
            block_grads(S, Pm, dS, dOi, vj, b, h, r0, s);
            dv.noalias() += Pm.transpose() * dOi;
            dk.noalias() += dS.transpose() * qi;
          }
        StridedMut<T>(g.dk.data() + ((s.k0 + c0) * Hkv + hk) * D, cols, D, Eigen::OuterStride<>(Hkv * D)) = dk;
        StridedMut<T>(g.dv.data() + ((s.k0 + c0) * Hkv + hk) * D, cols, D, Eigen::OuterStride<>(Hkv * D)) = dv;
      },
      opt);
  const int64_t rq = p.varlen() ? 0 : p.q_len, rk = p.varlen() ? 0 : p.kv_len;
  check_finite_result(g.dq, H, D, rq, "dQ");
  check_finite_result(g.dk, Hkv, D, rk, "dK");
  check_finite_result(g.dv, Hkv, D, rk, "dV");
  return g;
}

template CpuForward<float> cpu_forward<float>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                              const CpuAttentionOptions&);
template CpuForward<double> cpu_forward<double>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                                const CpuAttentionOptions&);
template CpuGradients<float> cpu_backward<float>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                                 const CpuForward<float>&, const float*, const CpuAttentionOptions&);
template CpuGradients<double> cpu_backward<double>(const AttentionProblem&, const BlockMask&,
                                                   const AttentionInputs&, const CpuForward<double>&, const float*,
                                                   const CpuAttentionOptions&);

AttentionResult cpu_attention_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in) {
  auto f = cpu_forward<float>(p, mask, in);
  return AttentionResult{std::move(f.out), std::move(f.lse)};
}

AttentionGradients cpu_attention_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                          const AttentionResult& fwd, const float* dout) {
  CpuForward<float> f{fwd.out, fwd.lse};
  auto g = cpu_backward<float>(p, mask, in, f, dout);
  return AttentionGradients{std::move(g.dq), std::move(g.dk), std::move(g.dv)};
}

}  // namespace bsattn
