#include "patterns/adaptive/selectors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <Eigen/Core>

#include "lib/error.h"

namespace bsattn::adaptive {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<const RowMatrixF, 0, Eigen::OuterStride<>>;

int64_t input_batch(const PatternContext& ctx, const std::string& pattern) {
  const PatternInputs* in = ctx.inputs;
  if (!in || !in->q || !in->k)
    throw UsageError("pattern '" + pattern + "' selects blocks from Q/K: give --q/--k files or --synthetic KIND");
  const MaskShape& s = ctx.shape;
  if (in->q_len != s.q_len || in->kv_len != s.kv_len)
    throw UsageError("pattern '" + pattern + "': Q/K have q_len=" + std::to_string(in->q_len) + ", kv_len=" +
                     std::to_string(in->kv_len) + " but the mask is for q_len=" + std::to_string(s.q_len) +
                     ", kv_len=" + std::to_string(s.kv_len));
  if (in->heads_q != s.heads)
    throw UsageError("pattern '" + pattern + "': Q has " + std::to_string(in->heads_q) + " heads but the mask " +
                     std::to_string(s.heads));
  if (in->heads_kv <= 0 || in->heads_q % in->heads_kv)
    throw UsageError("pattern '" + pattern + "': Q heads must be a multiple of K heads");
  if (in->batch != 1 && in->batch <= ctx.batch_index)
    throw UsageError("pattern '" + pattern + "': Q/K have batch " + std::to_string(in->batch) + " but the mask has batch " +
                     std::to_string(s.batch));
  return in->batch == 1 ? 0 : ctx.batch_index;
}

AttentionProblem input_problem(const PatternInputs& in) {
  AttentionProblem p;
  p.batch = in.batch;
  p.q_len = in.q_len;
  p.kv_len = in.kv_len;
  p.heads_q = in.heads_q;
  p.heads_kv = in.heads_kv;
  p.head_dim = in.head_dim;
  p.dtype = ElemType::F32;
  return p;
}

namespace {
// Mean of rows [r0, r1) of one head of a BSHD tensor.
Eigen::VectorXf mean_rows(const float* t, int64_t b, int64_t seq, int64_t heads, int64_t h, int64_t D, int64_t r0,
                          int64_t r1) {
  Eigen::VectorXf m = Eigen::VectorXf::Zero(D);
  for (int64_t r = r0; r < r1; ++r)
    m += Eigen::Map<const Eigen::VectorXf>(t + ((b * seq + r) * heads + h) * D, D);
  return r1 > r0 ? Eigen::VectorXf(m / float(r1 - r0)) : m;
}
}  // namespace

std::vector<double> pooled_mass(const PatternContext& ctx, int64_t b, int64_t pool, int64_t& mu, int64_t& nu) {
  const PatternInputs& in = *ctx.inputs;
  const MaskShape& s = ctx.shape;
  const BlockGeometry g(s);
  const int64_t D = in.head_dim, h = ctx.head, hk = h / (in.heads_q / in.heads_kv);
  mu = (s.mq() + pool - 1) / pool;
  nu = (s.mk() + pool - 1) / pool;
  const int64_t uq = s.block_q * pool, uk = s.block_kv * pool;
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<Eigen::VectorXf> kbar(static_cast<size_t>(nu));
  for (int64_t v = 0; v < nu; ++v) kbar[size_t(v)] = mean_rows(in.k, b, in.kv_len, in.heads_kv, hk, D, v * uk, std::min(in.kv_len, (v + 1) * uk));
  std::vector<double> mass(static_cast<size_t>(mu * nu), 0.0), logit(static_cast<size_t>(nu));
  const int64_t off = g.causal_offset();
  for (int64_t u = 0; u < mu; ++u) {
    int64_t r0 = u * uq, r1 = std::min(in.q_len, (u + 1) * uq);
    Eigen::VectorXf qbar = mean_rows(in.q, b, in.q_len, in.heads_q, h, D, r0, r1);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < nu; ++v) {
      int64_t c0 = v * uk, c1 = std::min(in.kv_len, (v + 1) * uk);
      // Visible pairs of the unit (causal: key c visible from row r iff c <= r + off).
      double pairs = 0;
      for (int64_t r = r0; r < r1; ++r) {
        int64_t hi = ctx.causal ? std::min(c1, r + off + 1) : c1;
        pairs += double(std::max<int64_t>(0, hi - c0));
      }
      logit[size_t(v)] = pairs > 0 ? scale * double(qbar.dot(kbar[size_t(v)])) + std::log(pairs / double(r1 - r0))
                                   : -std::numeric_limits<double>::infinity();
      mx = std::max(mx, logit[size_t(v)]);
    }
    if (std::isinf(mx)) continue;
    double sum = 0;
    for (int64_t v = 0; v < nu; ++v) {
      double w = std::isinf(logit[size_t(v)]) ? 0.0 : std::exp(logit[size_t(v)] - mx);
      mass[size_t(u * nu + v)] = w;
      sum += w;
    }
    for (int64_t v = 0; v < nu; ++v) mass[size_t(u * nu + v)] /= sum;
  }
  return mass;
}

std::vector<int64_t> select_until_mass(const double* mass, int64_t n, double tau, int64_t min_keep, int64_t max_keep) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return mass[a] > mass[b]; });
  std::vector<int64_t> keep;
  double acc = 0;
  for (int64_t idx : order) {
    bool need = acc < tau || int64_t(keep.size()) < min_keep;
    if (!need || (max_keep > 0 && int64_t(keep.size()) >= max_keep)) break;
    if (!(mass[idx] > 0) && int64_t(keep.size()) >= min_keep) break;
    keep.push_back(idx);
    acc += mass[idx];
  }
  return keep;
}

std::vector<double> antidiagonal_mass(const PatternContext& ctx, int64_t b, int64_t stride) {
  const PatternInputs& in = *ctx.inputs;
  const MaskShape& s = ctx.shape;
  const int64_t D = in.head_dim, h = ctx.head, hk = h / (in.heads_q / in.heads_kv);
  const int64_t gq = (in.q_len + stride - 1) / stride, gk = (in.kv_len + stride - 1) / stride;
  // Reshaped Q (reversed within a group) and K: [groups, stride*D], missing tail tokens as zeros.
  RowMatrixF qr = RowMatrixF::Zero(gq, stride * D), kr = RowMatrixF::Zero(gk, stride * D);
  for (int64_t a = 0; a < gq; ++a)
    for (int64_t t = 0; t < stride; ++t) {
      int64_t r = a * stride + stride - 1 - t;
      if (r < in.q_len)
        qr.row(a).segment(t * D, D) = Eigen::Map<const Eigen::RowVectorXf>(in.q + ((b * in.q_len + r) * in.heads_q + h) * D, D);
    }
  for (int64_t c = 0; c < gk; ++c)
    for (int64_t t = 0; t < stride; ++t) {
      int64_t k = c * stride + t;
      if (k < in.kv_len)
        kr.row(c).segment(t * D, D) = Eigen::Map<const Eigen::RowVectorXf>(in.k + ((b * in.kv_len + k) * in.heads_kv + hk) * D, D);
    }
  RowMatrixF sc = (qr * kr.transpose()) * float(1.0 / std::sqrt(double(D)) / double(stride));
  const int64_t mq = s.mq(), mk = s.mk(), off = in.kv_len - in.q_len;
  std::vector<double> mass(size_t(mq * mk), 0.0);
  std::vector<int64_t> groups(size_t(mq), 0);
  for (int64_t a = 0; a < gq; ++a) {
    int64_t last_row = std::min(in.q_len - 1, a * stride + stride - 1);
    double mx = -std::numeric_limits<double>::infinity();
    int64_t vis = gk;
    if (ctx.causal) vis = std::min(gk, std::max<int64_t>(0, (last_row + off) / stride + 1));
    if (last_row + off < 0) vis = ctx.causal ? 0 : vis;
    for (int64_t c = 0; c < vis; ++c) mx = std::max(mx, double(sc(a, c)));
    if (vis == 0) continue;
    double sum = 0;
    for (int64_t c = 0; c < vis; ++c) sum += std::exp(double(sc(a, c)) - mx);
    int64_t i = std::min(mq - 1, (a * stride) / s.block_q);
    ++groups[size_t(i)];
    for (int64_t c = 0; c < vis; ++c) {
      int64_t j = std::min(mk - 1, (c * stride) / s.block_kv);
      mass[size_t(i * mk + j)] += std::exp(double(sc(a, c)) - mx) / sum;
    }
  }
  for (int64_t i = 0; i < mq; ++i)
    if (groups[size_t(i)])
      for (int64_t j = 0; j < mk; ++j) mass[size_t(i * mk + j)] /= double(groups[size_t(i)]);
  return mass;
}

void vertical_slash_scores(const PatternContext& ctx, int64_t b, int64_t last_q, std::vector<double>& vertical,
                           std::vector<double>& slash) {
  const PatternInputs& in = *ctx.inputs;
  const int64_t D = in.head_dim, h = ctx.head, hk = h / (in.heads_q / in.heads_kv), off = in.kv_len - in.q_len;
  last_q = std::min(last_q, in.q_len);
  const int64_t r0 = in.q_len - last_q;
  Strided qs(in.q + ((b * in.q_len + r0) * in.heads_q + h) * D, last_q, D, Eigen::OuterStride<>(in.heads_q * D));
  Strided ks(in.k + (b * in.kv_len * in.heads_kv + hk) * D, in.kv_len, D, Eigen::OuterStride<>(in.heads_kv * D));
  RowMatrixF sc = (qs * ks.transpose()) * float(1.0 / std::sqrt(double(D)));
  vertical.assign(size_t(in.kv_len), 0.0);
  slash.assign(size_t(in.kv_len + in.q_len), 0.0);
  for (int64_t r = 0; r < last_q; ++r) {
    int64_t q = r0 + r, vis = ctx.causal ? std::min(in.kv_len, q + off + 1) : in.kv_len;
    if (vis <= 0) continue;
    double mx = -std::numeric_limits<double>::infinity(), sum = 0;
    for (int64_t c = 0; c < vis; ++c) mx = std::max(mx, double(sc(r, c)));
    for (int64_t c = 0; c < vis; ++c) sum += std::exp(double(sc(r, c)) - mx);
    for (int64_t c = 0; c < vis; ++c) {
      double pr = std::exp(double(sc(r, c)) - mx) / sum;
      vertical[size_t(c)] += pr;
      int64_t o = q + off - c;  // >= 0 under causal; shift non-causal offsets into range
      if (o >= 0 && o < int64_t(slash.size())) slash[size_t(o)] += pr;
    }
  }
}

std::vector<int64_t> top_indices(const std::vector<double>& v, int64_t count) {
  std::vector<int64_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::min<int64_t>(count, int64_t(v.size()));
  std::partial_sort(order.begin(), order.begin() + count, order.end(), [&](int64_t a, int64_t b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  order.resize(size_t(count));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace bsattn::adaptive
