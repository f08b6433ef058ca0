#include "lib/dilated/dilated_quality.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/error.h"
#include "lib/reference/dense_scan.h"
#include "lib/reference/parallel.h"

namespace bsattn::dilated {

DilatedQuality evaluate_dilated(const AttentionProblem& p_in, const DilatedSpec& spec, const float* q, const float* k,
                                const float* v, const DilatedOptions& opt) {
  AttentionProblem p = p_in;
  p.dtype = ElemType::F32;
  check_problem(p, spec);
  const int64_t B = p.batch, S = p.q_len, H = p.heads_q, D = p.head_dim;
  DilatedResult got = dilated_attention(p, spec, AttentionInputs{q, k, v, nullptr}, nullptr, opt);
  MaskShape shape;
  shape.heads = H;
  shape.q_len = shape.kv_len = S;
  shape.block_q = shape.block_kv = std::min<int64_t>(S, 128);
  std::vector<float> dense = dense_output(p, shape, spec.causal, q, k, v, opt.threads);

  // Per (batch, head, row block): the dense log-sum-exp and the one over the covered keys of each row,
  // from one scan of the dense scores.
  const int64_t bq = shape.block_q, mq = (S + bq - 1) / bq;
  std::vector<double> recall(size_t(B * H * S), std::numeric_limits<double>::quiet_NaN());
  std::vector<int64_t> covered(size_t(B * H * mq), 0);
  const double ninf = -std::numeric_limits<double>::infinity();
  parallel_for(
      B * H * mq,
      [&](int64_t task) {
        const int64_t i = task % mq, h = task / mq % H, b = task / (mq * H);
        const int64_t r0 = i * bq, rows = std::min(S, r0 + bq) - r0;
        std::vector<double> m_all(size_t(rows), ninf), s_all(size_t(rows), 0), m_cov(size_t(rows), ninf),
            s_cov(size_t(rows), 0);
        auto add = [](double x, double& m, double& s) {
          if (x > m) {
            s = s * std::exp(m - x) + 1;
            m = x;
          } else {
            s += std::exp(x - m);
          }
        };
        int64_t cov = 0;
        scan_row_block(p, q, k, spec.causal, bq, bq, b, h, i, [&](int64_t j, const RowMatrixF& Sc, int64_t nr, int64_t nc) {
          for (int64_t r = 0; r < nr; ++r)
            for (int64_t c = 0; c < nc; ++c) {
              const double x = Sc(r, c);
              if (x == ninf) continue;
              add(x, m_all[size_t(r)], s_all[size_t(r)]);
              const int64_t qi = r0 + r, ki = j * bq + c;
              for (const Branch& br : spec.branches)
                if (branch_covers(br, spec.causal, h, qi, ki)) {
                  add(x, m_cov[size_t(r)], s_cov[size_t(r)]);
                  ++cov;
                  break;
                }
            }
        });
        covered[size_t(task)] = cov;
        for (int64_t r = 0; r < rows; ++r)
          if (m_all[size_t(r)] > ninf)
            recall[size_t((b * H + h) * S + r0 + r)] =
                m_cov[size_t(r)] > ninf ? std::exp(m_cov[size_t(r)] + std::log(s_cov[size_t(r)]) - m_all[size_t(r)] -
                                                   std::log(s_all[size_t(r)]))
                                        : 0.0;
      },
      opt.threads);

  DilatedQuality rep;
  ErrorReport err = compare_tensors(got.out.data(), dense.data(), B * S, H, D);
  rep.error = err.overall;
  const int64_t visible_per_head = B * (spec.causal ? S * (S + 1) / 2 : S * S);
  double sum_all = 0, min_all = 1;
  int64_t n_all = 0;
  for (int64_t h = 0; h < H; ++h) {
    HeadQuality hq;
    hq.head = h;
    int64_t cov = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < mq; ++i) cov += covered[size_t((b * H + h) * mq + i)];
    rep.covered_pairs += cov;
    hq.density = double(cov) / double(visible_per_head);
    double sum = 0, mn = 1;
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < S; ++t) {
        const double r = recall[size_t((b * H + h) * S + t)];
        if (std::isnan(r)) continue;
        sum += r, mn = std::min(mn, r), ++n;
        if (std::isinf(got.lse[size_t((b * H + h) * S + t)])) ++rep.uncovered_rows;
      }
    hq.recall_mean = n ? sum / double(n) : 0;
    hq.recall_min = n ? mn : 0;
    hq.error = err.heads[size_t(h)];
    sum_all += sum, min_all = std::min(min_all, mn), n_all += n;
    rep.heads.push_back(hq);
  }
  rep.recall_mean = n_all ? sum_all / double(n_all) : 0;
  rep.recall_min = n_all ? min_all : 0;
  rep.computed_pairs = dilated_pairs(p, spec);
  rep.visible_pairs = visible_per_head * H;
  return rep;
}

DilatedQuality evaluate_dilated_rows(const AttentionProblem& p_in, const DilatedSpec& spec, const float* q, const float* k,
                                     const float* v, int64_t rows, int threads) {
  AttentionProblem p = p_in;
  p.dtype = ElemType::F32;
  check_problem(p, spec);
  const int64_t B = p.batch, S = p.q_len, H = p.heads_q, D = p.head_dim, G = H / p.heads_kv, Hkv = p.heads_kv;
  if (rows < 1) throw UsageError("--sample-rows must be >= 1");
  rows = std::min(rows, S);
  const double scale = p.effective_scale();
  // Per (b, h, sampled row): the dilated and dense outputs, the recall, the covered and visible keys.
  std::vector<float> got(size_t(B * H * rows * D)), want(got.size());
  std::vector<double> recall(size_t(B * H * rows), std::numeric_limits<double>::quiet_NaN());
  std::vector<int64_t> covered(recall.size(), 0), visible(recall.size(), 0);
  std::vector<uint8_t> uncovered(recall.size(), 0);
  parallel_for(
      B * H * rows,
      [&](int64_t task) {
        const int64_t i = task % rows, h = task / rows % H, b = task / (rows * H);
        const int64_t t = ((2 * i + 1) * S) / (2 * rows), g = h / G;
        std::vector<double> qt(q + ((b * S + t) * H + h) * D, q + ((b * S + t) * H + h + 1) * D);
        const int64_t nk = spec.causal ? t + 1 : S;
        std::vector<double> s(static_cast<size_t>(nk));
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t key = 0; key < nk; ++key) {
          const float* kk = k + ((b * S + key) * Hkv + g) * D;
          double acc[4] = {0, 0, 0, 0};  // four chains: the sum is not one latency-bound sequence of adds
          int64_t e = 0;
          for (; e + 4 <= D; e += 4)
            for (int u = 0; u < 4; ++u) acc[u] += qt[size_t(e + u)] * double(kk[e + u]);
          for (; e < D; ++e) acc[0] += qt[size_t(e)] * double(kk[e]);
          const double dot = (acc[0] + acc[1]) + (acc[2] + acc[3]);
          s[size_t(key)] = dot * scale;
          m = std::max(m, s[size_t(key)]);
        }
        // How many branches relate (t, key): the key's multiplicity in the union, from each branch's keys
        // of t's segment and class (branch_covers, visited directly).
        std::vector<uint8_t> times(static_cast<size_t>(nk), 0);
        for (const Branch& br : spec.branches) {
          const int64_t o = head_offset(h, br.rate), lo = t / br.segment * br.segment;
          if (t % br.rate != o) continue;
          for (int64_t key = lo + o; key < std::min(lo + br.segment, nk); key += br.rate) ++times[size_t(key)];
        }
        std::vector<double> od(size_t(D), 0.0), og(size_t(D), 0.0);
        double sum_all = 0, sum_cov = 0, sum_mult = 0;
        int64_t cov = 0;
        for (int64_t key = 0; key < nk; ++key) {
          const double e = std::exp(s[size_t(key)] - m);
          const float* vv = v + ((b * S + key) * Hkv + g) * D;
          sum_all += e;
          for (int64_t d = 0; d < D; ++d) od[size_t(d)] += e * vv[d];
          const double mult = times[size_t(key)];
          if (mult == 0) continue;
          ++cov;
          sum_cov += e;
          sum_mult += mult * e;
          for (int64_t d = 0; d < D; ++d) og[size_t(d)] += mult * e * vv[d];
        }
        float* o1 = &got[size_t(task * D)];
        float* o2 = &want[size_t(task * D)];
        for (int64_t d = 0; d < D; ++d) {
          o1[d] = sum_mult > 0 ? float(og[size_t(d)] / sum_mult) : 0.f;
          o2[d] = float(od[size_t(d)] / sum_all);
        }
        recall[size_t(task)] = sum_cov / sum_all;
        covered[size_t(task)] = cov;
        visible[size_t(task)] = nk;
        uncovered[size_t(task)] = cov == 0;
      },
      threads);
  // got/want are [B, H, rows, D]: compared per head as [B*rows] rows of one head at a time.
  DilatedQuality rep;
  rep.sampled_rows = rows;
  std::vector<float> gh(size_t(B * rows * D)), wh(gh.size()), ga, wa;
  double sum_all = 0, min_all = 1;
  int64_t n_all = 0;
  for (int64_t h = 0; h < H; ++h) {
    HeadQuality hq;
    hq.head = h;
    int64_t cov = 0, vis = 0;
    double sum = 0, mn = 1;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t task = (b * H + h) * rows + i;
        std::copy(got.begin() + task * D, got.begin() + (task + 1) * D, gh.begin() + (b * rows + i) * D);
        std::copy(want.begin() + task * D, want.begin() + (task + 1) * D, wh.begin() + (b * rows + i) * D);
        cov += covered[size_t(task)], vis += visible[size_t(task)];
        sum += recall[size_t(task)], mn = std::min(mn, recall[size_t(task)]);
        rep.uncovered_rows += uncovered[size_t(task)];
      }
    hq.density = vis ? double(cov) / double(vis) : 0;
    hq.recall_mean = sum / double(B * rows), hq.recall_min = mn;
    hq.error = compare_tensors(gh.data(), wh.data(), B * rows, 1, D).overall;
    rep.covered_pairs += cov, rep.visible_pairs += vis;
    sum_all += sum, min_all = std::min(min_all, mn), n_all += B * rows;
    ga.insert(ga.end(), gh.begin(), gh.end()), wa.insert(wa.end(), wh.begin(), wh.end());
    rep.heads.push_back(hq);
  }
  rep.error = compare_tensors(ga.data(), wa.data(), B * rows * H, 1, D).overall;
  rep.recall_mean = sum_all / double(n_all);
  rep.recall_min = min_all;
  rep.computed_pairs = dilated_pairs(p, spec);
  return rep;
}

nlohmann::json to_json(const DilatedQuality& r) {
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : r.heads)
    heads.push_back({{"head", h.head}, {"coverage", h.density}, {"recall_mean", h.recall_mean},
                     {"recall_min", h.recall_min}, {"error", to_json(h.error)}});
  return {{"heads", heads},
          {"summary",
           {{"recall_mean", r.recall_mean}, {"recall_min", r.recall_min}, {"error", to_json(r.error)},
            {"coverage", r.coverage()}, {"covered_pairs", r.covered_pairs}, {"computed_pairs", r.computed_pairs},
            {"visible_pairs", r.visible_pairs}, {"uncovered_rows", r.uncovered_rows},
            {"sampled_rows", r.sampled_rows}}}};
}

}  // namespace bsattn::dilated
