#include "lib/quality/block_mass.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/error.h"
#include "lib/reference/dense_scan.h"
#include "lib/reference/parallel.h"

namespace bsattn {
namespace {

void check_sizes(const AttentionProblem& p, const float* q, const float* k, int64_t block_q, int64_t block_kv) {
  if (!q || !k) throw UsageError("dense block mass needs Q and K");
  if (block_q <= 0 || block_kv <= 0) throw UsageError("block sizes must be positive");
  if (p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0)
    throw UsageError("query heads must be a multiple of key/value heads");
}

inline double silu_abs(float x) { return std::fabs(double(x) / (1.0 + std::exp(-double(x)))); }


}  // namespace

std::vector<double> dense_block_mass(const AttentionProblem& p, const float* q, const float* k, bool causal,
                                     int64_t block_q, int64_t block_kv) {
  check_sizes(p, q, k, block_q, block_kv);
  const int64_t H = p.heads_q, mq = (p.q_len + block_q - 1) / block_q, mk = (p.kv_len + block_kv - 1) / block_kv;
  std::vector<double> mass(size_t(p.batch * H * mq * mk), 0.0);
  const bool softmax = p.score == ScoreFn::Softmax;
  parallel_for(p.batch * H * mq, [&](int64_t task) {
    int64_t i = task % mq, bh = task / mq, h = bh % H, b = bh / H;
    // Per (row, block): the block's weight relative to the row's max at that block (softmax), so
    // one pass suffices: mass = w_rj * exp(m_rj - lse_r).
    std::vector<double> w, mj;
    int64_t nrows = 0;
    scan_row_block(p, q, k, causal, block_q, block_kv, b, h, i, [&](int64_t j, const RowMatrixF& S, int64_t rows, int64_t cols) {
      if (nrows == 0) {
        nrows = rows;
        w.assign(size_t(rows * mk), 0.0);
        mj.assign(size_t(rows * mk), -std::numeric_limits<double>::infinity());
      }
      for (int64_t r = 0; r < rows; ++r) {
        double acc = 0;
        if (softmax) {
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, S(r, c));
          if (std::isinf(mx)) continue;
          for (int64_t c = 0; c < cols; ++c) acc += std::exp(double(S(r, c)) - double(mx));
          mj[r * mk + j] = mx;
        } else {
          for (int64_t c = 0; c < cols; ++c)
            if (!std::isinf(S(r, c))) acc += silu_abs(S(r, c));
        }
        w[r * mk + j] = acc;
      }
    });
    if (nrows == 0) return;
    double* out = mass.data() + ((b * H + h) * mq + i) * mk;
    int64_t live = 0;
    std::vector<double> row(static_cast<size_t>(mk));
    for (int64_t r = 0; r < nrows; ++r) {
      double total = 0;
      if (softmax) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < mk; ++j) m = std::max(m, mj[r * mk + j]);
        if (std::isinf(m)) continue;
        for (int64_t j = 0; j < mk; ++j) {
          row[j] = w[r * mk + j] > 0 ? w[r * mk + j] * std::exp(mj[r * mk + j] - m) : 0.0;
          total += row[j];
        }
      } else {
        for (int64_t j = 0; j < mk; ++j) total += (row[j] = w[r * mk + j]);
      }
      if (!(total > 0)) continue;
      ++live;
      for (int64_t j = 0; j < mk; ++j) out[j] += row[j] / total;
    }
    if (live > 0)
      for (int64_t j = 0; j < mk; ++j) out[j] /= double(live);
  });
  return mass;
}

std::vector<double> row_recall(const AttentionProblem& p, const float* q, const float* k, const BlockMask& mask) {
  p.validate(mask);
  check_sizes(p, q, k, mask.shape.block_q, mask.shape.block_kv);
  const int64_t H = p.heads_q, bq = mask.shape.block_q, bk = mask.shape.block_kv, mq = mask.shape.mq(),
                mk = mask.shape.mk();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> recall(size_t(p.batch * H * p.q_len), nan);
  const bool softmax = p.score == ScoreFn::Softmax;
  parallel_for(p.batch * H * mq, [&](int64_t task) {
    int64_t i = task % mq, bh = task / mq, h = bh % H, b = bh / H;
    int64_t mb = mask.shape.batch == 1 ? 0 : b;
    const bool dense_head = mask.heads[size_t(h)].type == HeadType::Dense;
    const uint8_t* hb = mask.head_bits(mb, h) + i * mk;
    // Online log-sum-exp of all visible pairs and of the kept ones (softmax), or sums of |SiLU|.
    std::vector<double> m_all, s_all, m_kept, s_kept;
    int64_t nrows = 0;
    auto add = [](double& m, double& s, double x) {  // online log-sum-exp
      if (x <= m) {
        s += std::exp(x - m);
      } else {
        s = s * std::exp(m - x) + 1.0;
        m = x;
      }
    };
    scan_row_block(p, q, k, mask.causal, bq, bk, b, h, i, [&](int64_t j, const RowMatrixF& S, int64_t rows, int64_t cols) {
      if (nrows == 0) {
        nrows = rows;
        double ninf = -std::numeric_limits<double>::infinity();
        m_all.assign(size_t(rows), ninf);
        m_kept.assign(size_t(rows), ninf);
        s_all.assign(size_t(rows), 0.0);
        s_kept.assign(size_t(rows), 0.0);
      }
      bool kept = dense_head || hb[j];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          float x = S(r, c);
          if (std::isinf(x)) continue;
          if (softmax) {
            add(m_all[r], s_all[r], x);
            if (kept) add(m_kept[r], s_kept[r], x);
          } else {
            double a = silu_abs(x);
            s_all[r] += a;
            if (kept) s_kept[r] += a;
          }
        }
    });
    double* out = recall.data() + (b * H + h) * p.q_len + i * bq;
    for (int64_t r = 0; r < nrows; ++r) {
      if (!(s_all[r] > 0)) continue;
      if (softmax)
        out[r] = s_kept[r] > 0 ? s_kept[r] / s_all[r] * std::exp(m_kept[r] - m_all[r]) : 0.0;
      else
        out[r] = s_kept[r] / s_all[r];
    }
  });
  return recall;
}



RecallSummary summarize_recall(const std::vector<double>& recall, int64_t batch, int64_t heads, int64_t q_len) {
  RecallSummary out;
  double all_sum = 0, all_min = std::numeric_limits<double>::infinity();
  for (int64_t h = 0; h < heads; ++h) {
    double sum = 0, mn = std::numeric_limits<double>::infinity();
    int64_t n = 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < q_len; ++r) {
        double x = recall[size_t((b * heads + h) * q_len + r)];
        if (std::isnan(x)) continue;
        sum += x;
        mn = std::min(mn, x);
        ++n;
      }
    out.heads.push_back({n ? sum / double(n) : 0, n ? mn : 0, n});
    all_sum += sum;
    all_min = std::min(all_min, mn);
    out.overall.rows += n;
  }
  const int64_t all_n = out.overall.rows;
  out.overall.mean = all_n ? all_sum / double(all_n) : 0;
  out.overall.min = all_n ? all_min : 0;
  return out;
}

}  // namespace bsattn
