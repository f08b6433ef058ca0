#include "lib/quality/quality.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <algorithm>

#include "lib/quality/block_mass.h"
#include "lib/reference/cpu_attention.h"

namespace bsattn {

namespace {
struct Acc {
  double d2 = 0, w2 = 0, g2 = 0, d1 = 0, w1 = 0, dot = 0, mx = -1;
  int64_t n = 0, worst = -1;
  void add(double g, double w, int64_t idx) {
    double d = g - w;
    d2 += d * d;
    w2 += w * w;
    g2 += g * g;
    d1 += std::fabs(d);
    w1 += std::fabs(w);
    dot += g * w;
    if (std::fabs(d) > mx) {
      mx = std::fabs(d);
      worst = idx;
    }
    ++n;
  }
  ErrorStats stats() const {
    ErrorStats e;
    e.count = n;
    e.rel_l2 = w2 > 0 ? std::sqrt(d2 / w2) : std::sqrt(d2);
    e.rel_l1 = w1 > 0 ? d1 / w1 : d1;
    e.rmse = n ? std::sqrt(d2 / double(n)) : 0;
    e.max_abs = std::max(0.0, mx);
    e.cosine = (g2 > 0 && w2 > 0) ? dot / std::sqrt(g2 * w2) : (g2 == 0 && w2 == 0 ? 1.0 : 0.0);
    e.worst_index = worst;
    return e;
  }
};
}  // namespace

ErrorReport compare_tensors(const float* got, const float* want, int64_t rows, int64_t heads, int64_t dim) {
  std::vector<Acc> acc(static_cast<size_t>(heads));
  Acc all;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < dim; ++d) {
        int64_t e = (r * heads + h) * dim + d;
        acc[size_t(h)].add(got[e], want[e], e);
        all.add(got[e], want[e], e);
      }
  ErrorReport rep;
  for (auto& a : acc) rep.heads.push_back(a.stats());
  rep.overall = all.stats();
  return rep;
}

nlohmann::json to_json(const ErrorStats& e) {
  return {{"rel_l2", e.rel_l2}, {"rel_l1", e.rel_l1}, {"rmse", e.rmse},
          {"max_abs", e.max_abs}, {"cosine", e.cosine}, {"count", e.count}};
}

BlockMask dense_mask_like(const MaskShape& shape, bool causal) {
  MaskShape s = shape;
  s.batch = 1;
  BlockMask dense(s);
  dense.causal = causal;
  std::fill(dense.bits.begin(), dense.bits.end(), uint8_t(1));
  for (auto& h : dense.heads) h.type = HeadType::Dense;
  if (causal) dense.apply_causal();
  return dense;
}

std::vector<float> dense_output(const AttentionProblem& p, const MaskShape& shape, bool causal, const float* q,
                                const float* k, const float* v, int threads, ProgressMeter* progress) {
  BlockMask dense = dense_mask_like(shape, causal);
  AttentionProblem pf = p;
  pf.dtype = ElemType::F32;
  return cpu_forward<float>(pf, dense, AttentionInputs{q, k, v, nullptr}, CpuAttentionOptions{threads, progress}).out;
}

QualityReport evaluate_mask(const AttentionProblem& p0, const BlockMask& mask, const float* q, const float* k,
                            const float* v, const std::vector<float>* dense, int threads) {
  AttentionProblem p = p0;
  p.dtype = ElemType::F32;
  auto sparse = cpu_forward<float>(p, mask, AttentionInputs{q, k, v, nullptr}, CpuAttentionOptions{threads}).out;
  std::vector<float> own;
  if (!dense) {
    own = dense_output(p, mask.shape, mask.causal, q, k, v, threads);
    dense = &own;
  }
  return quality_report(p, mask, sparse.data(), dense->data(), row_recall(p, q, k, mask));
}

QualityReport quality_report(const AttentionProblem& p, const BlockMask& mask, const float* sparse, const float* dense,
                             const std::vector<double>& recall) {
  QualityReport rep;
  rep.mask = mask_stats(mask);
  ErrorReport err = compare_tensors(sparse, dense, p.total_q(), p.heads_q, p.head_dim);
  const int64_t H = p.heads_q;
  const RecallSummary rs = summarize_recall(recall, p.batch, H, p.q_len);
  for (int64_t h = 0; h < H; ++h) {
    HeadQuality hq;
    hq.head = h;
    hq.density = rep.mask.heads[size_t(h)].density;  // kept / visible blocks (lib/mask_stats.h)
    hq.recall_mean = rs.heads[size_t(h)].mean;
    hq.recall_min = rs.heads[size_t(h)].min;
    hq.error = err.heads[size_t(h)];
    rep.heads.push_back(hq);
  }
  rep.recall_mean = rs.overall.mean;
  rep.recall_min = rs.overall.min;
  rep.error = err.overall;
  return rep;
}

std::vector<double> recall_from_lse(const std::vector<float>& lse_sparse, const std::vector<float>& lse_dense) {
  if (lse_sparse.size() != lse_dense.size()) throw std::invalid_argument("recall_from_lse: sizes differ");
  std::vector<double> r(lse_dense.size());
  for (size_t i = 0; i < r.size(); ++i) {
    const double all = lse_dense[i], kept = lse_sparse[i];
    // Rounding can put a fully kept row a hair above 1; the share is at most 1.
    r[i] = std::isinf(all) && all < 0 ? std::numeric_limits<double>::quiet_NaN() : std::min(1.0, std::exp(kept - all));
  }
  return r;
}

nlohmann::json to_json(const QualityReport& r) {
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : r.heads)
    heads.push_back({{"head", h.head}, {"density", h.density}, {"recall_mean", h.recall_mean},
                     {"recall_min", h.recall_min}, {"error", to_json(h.error)}});
  return {{"heads", heads},
          {"summary", {{"recall_mean", r.recall_mean}, {"recall_min", r.recall_min}, {"error", to_json(r.error)}}},
          {"mask", to_json(r.mask)}};
}

}  // namespace bsattn
