#include "lib/hstu/hstu.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/reference/cpu_attention.h"
#include "lib/varlen/varlen.h"

namespace bsattn {

std::vector<float> load_bias_table(const std::string& path, int64_t heads, int64_t& n, const std::string& what) {
  NpyArray a = read_npy(path);
  const bool ok = a.dtype == DType::Float32 && ((a.shape.size() == 1 && a.shape[0] > 0) ||
                                                (a.shape.size() == 2 && a.shape[0] == heads && a.shape[1] > 0));
  if (!ok)
    throw UsageError(what + " " + path + ": " + dtype_name(a.dtype) + " " + a.shape_str() + " (allowed: float32 [" +
                     std::to_string(heads) + ", N] per query head, or [N] shared by every head)");
  n = a.shape.back();
  std::vector<float> t(size_t(heads * n));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i) t[size_t(h * n + i)] = a.as<float>()[(a.shape.size() == 1 ? 0 : h * n) + i];
  for (float x : t)
    if (!std::isfinite(x)) throw UsageError(what + " " + path + ": a value is not finite (allowed: finite biases)");
  return t;
}

std::vector<double> load_timestamps(const std::string& path, int64_t total, const std::string& what) {
  NpyArray a = read_npy(path);
  int64_t n = a.numel();
  if (a.shape.empty() || a.shape.size() > 2 || n != total)
    throw UsageError(what + " " + path + ": shape " + a.shape_str() + " (allowed: [" + std::to_string(total) +
                     "] or [B,S]: one timestamp per token)");
  std::vector<double> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (a.dtype) {
      case DType::Int32: t[size_t(i)] = a.as<int32_t>()[i]; break;
      case DType::Int64: t[size_t(i)] = double(a.as<int64_t>()[i]); break;
      case DType::Float32: t[size_t(i)] = a.as<float>()[i]; break;
      case DType::Float64: t[size_t(i)] = a.as<double>()[i]; break;
      default:
        throw UsageError(what + " " + path + ": dtype " + dtype_name(a.dtype) + " (allowed: int32, int64, float32, float64)");
    }
    if (!std::isfinite(t[size_t(i)])) throw UsageError(what + " " + path + ": timestamp " + std::to_string(i) + " is not finite");
  }
  return t;
}

std::vector<float> load_dense_bias(const std::string& path, int64_t heads, int64_t q_len, int64_t kv_len,
                                   const std::string& what) {
  NpyArray a = read_npy(path);
  if (a.dtype != DType::Float32 || a.shape != std::vector<int64_t>{heads, q_len, kv_len})
    throw UsageError(what + " " + path + ": " + dtype_name(a.dtype) + " " + a.shape_str() + " (allowed: float32 [" +
                     std::to_string(heads) + ", " + std::to_string(q_len) + ", " + std::to_string(kv_len) +
                     "]: query heads, the longest sequence's queries and keys)");
  std::vector<float> b(a.as<float>(), a.as<float>() + a.numel());
  for (float x : b)
    if (!std::isfinite(x)) throw UsageError(what + " " + path + ": a value is not finite (allowed: finite biases)");
  return b;
}

namespace {
uint64_t bits_of(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
double double_of(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// floor(ln(max(|dt|, 1)) / 0.301), saturated at `cap` (also for an infinite |dt|, whose floor is no integer).
int64_t ts_bucket_unclamped(double adt, int64_t cap) {
  const double x = std::floor(std::log(std::max(adt, 1.0)) / 0.301);
  return x >= double(cap) ? cap : int64_t(x);
}
}  // namespace

int64_t hstu_ts_bucket(double dt, int64_t buckets) {
  return std::max<int64_t>(0, ts_bucket_unclamped(std::fabs(dt), buckets - 1));
}

std::vector<double> hstu_ts_bucket_bounds(int64_t buckets) {
  if (buckets <= 0) throw UsageError("the timestamp bias needs at least one bucket");
  std::vector<double> b(size_t(buckets + 1), std::numeric_limits<double>::infinity());
  b[0] = 0;
  // Bucket b's lower edge: the least double x with bucket(x) >= b, by bisection on the bit patterns of
  // the non-negative doubles (ordered as the values; the bucket is non-decreasing in |dt|).
  const uint64_t top = bits_of(std::numeric_limits<double>::max());
  for (int64_t k = 1; k < buckets; ++k) {
    if (ts_bucket_unclamped(std::numeric_limits<double>::max(), buckets) < k) break;  // never reached: +inf
    uint64_t lo = 0, hi = top;  // bucket(lo) < k <= bucket(hi)
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      (ts_bucket_unclamped(double_of(mid), buckets) >= k ? hi : lo) = mid;
    }
    b[size_t(k)] = double_of(hi);
  }
  return b;
}

std::vector<float> hstu_rab(const HstuBias& b, int64_t H, int64_t t0, int64_t len, int64_t dq, int64_t dk) {
  std::vector<float> r(size_t(H * len * len), 0.f);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < len; ++i) {
      float* row = &r[size_t((h * len + i) * len)];
      const int64_t inext = std::min(i + 1, len - 1);
      for (int64_t j = 0; j < len; ++j) {
        float x = 0;
        if (!b.pos.empty()) x += b.pos[size_t(h * b.pos_len + std::min(std::llabs(i - j), (long long)(b.pos_len - 1)))];
        if (!b.ts.empty())
          x += b.ts[size_t(h * b.ts_buckets +
                           hstu_ts_bucket(b.timestamps[size_t(t0 + inext)] - b.timestamps[size_t(t0 + j)], b.ts_buckets))];
        if (!b.dense.empty()) x += b.dense[size_t((h * dq + i) * dk + j)];
        row[j] = x;
      }
    }
  return r;
}

namespace {

template <class T>
void one_sequence(const AttentionProblem& p1, const BlockMask& m, const float* q, const float* k, const float* v,
                  const float* rab, int threads, float* out) {
  CpuForward<T> f = cpu_forward<T>(p1, m, AttentionInputs{q, k, v, rab}, CpuAttentionOptions{threads});
  for (size_t e = 0; e < f.out.size(); ++e) out[e] = float(f.out[e]);
}

}  // namespace

void check_hstu_problem(const AttentionProblem& p, const BlockMask& mask, const HstuBias& bias) {
  if (p.score != ScoreFn::Silu) throw UsageError("HSTU attention takes the SiLU score (--score silu)");
  p.validate(mask);
  if (p.q_len != p.kv_len || (p.varlen() && p.cu_seqlens_q != p.cu_seqlens_k))
    throw UsageError("HSTU attention is self-attention: Q and K must have the same lengths");
  if (!bias.ts.empty() && int64_t(bias.timestamps.size()) != p.total_q())
    throw UsageError("--rab-ts needs --timestamps with one timestamp per token (" + std::to_string(p.total_q()) + ")");
  const int64_t H = p.heads_q;
  if ((!bias.pos.empty() && int64_t(bias.pos.size()) != H * bias.pos_len) ||
      (!bias.ts.empty() && int64_t(bias.ts.size()) != H * bias.ts_buckets) ||
      (!bias.dense.empty() && int64_t(bias.dense.size()) != H * p.q_len * p.kv_len))
    throw UsageError("HSTU bias: a table's size does not match the heads (" + std::to_string(H) + ") and its length");
}

std::vector<float> hstu_forward(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k,
                                const float* v, const HstuBias& bias, const float* u, bool f64, int threads) {
  check_hstu_problem(p, mask, bias);
  const int64_t H = p.heads_q, Hkv = p.heads_kv, D = p.head_dim;
  std::vector<float> out(size_t(p.total_q() * H * D), 0.f);
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t r0 = p.varlen() ? p.cu_seqlens_q[size_t(b)] : b * p.q_len;
    const int64_t len = p.varlen() ? p.cu_seqlens_q[size_t(b) + 1] - r0 : p.q_len;
    AttentionProblem p1 = p;
    p1.cu_seqlens_q.clear(), p1.cu_seqlens_k.clear();
    p1.batch = 1, p1.q_len = p1.kv_len = len;
    p1.dtype = ElemType::F32;
    BlockMask m1 = crop_sequence_mask(mask, mask.shape.batch == 1 ? 0 : b, len);
    const std::vector<float> rab = bias.any() ? hstu_rab(bias, H, r0, len, p.q_len, p.kv_len) : std::vector<float>{};
    const float* rp = rab.empty() ? nullptr : rab.data();
    if (f64) one_sequence<double>(p1, m1, q + r0 * H * D, k + r0 * Hkv * D, v + r0 * Hkv * D, rp, threads, &out[size_t(r0 * H * D)]);
    else one_sequence<float>(p1, m1, q + r0 * H * D, k + r0 * Hkv * D, v + r0 * Hkv * D, rp, threads, &out[size_t(r0 * H * D)]);
  }
  if (u)
    for (size_t e = 0; e < out.size(); ++e) out[e] *= u[e];
  return out;
}

RelativeBiasTables hstu_bias_tables(const HstuBias& b) {
  RelativeBiasTables t;
  if (!b.pos.empty()) t.pos = b.pos.data(), t.pos_len = b.pos_len;
  if (!b.ts.empty()) t.ts = b.ts.data(), t.ts_buckets = b.ts_buckets, t.timestamps = b.timestamps.data();
  if (!b.dense.empty()) t.dense = b.dense.data();
  return t;
}

std::vector<float> hstu_forward_cuda(const AttentionProblem& p, const BlockMask& mask, const void* q, const void* k,
                                     const void* v, const HstuBias& bias, const void* u, const AttentionOptions& opt) {
  check_hstu_problem(p, mask, bias);
  if (p.dtype == ElemType::F32) throw UsageError("the CUDA backend takes bf16 or f16 inputs (--dtype bf16 or f16)");
  const RelativeBiasTables tables = hstu_bias_tables(bias);
  AttentionInputs in{q, k, v, nullptr};
  if (tables.any()) in.rab = &tables;
  in.gate_u = u;
  AttentionOptions o = opt;
  o.backend = Backend::Cuda;
  return attention_forward(p, mask, in, o).out;
}

ErrorReport hstu_quality(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k, const float* v,
                         const HstuBias& bias, const float* u, int threads) {
  const std::vector<float> sparse = hstu_forward(p, mask, q, k, v, bias, u, false, threads);
  const std::vector<float> dense = hstu_forward(p, dense_mask_like(mask.shape, mask.causal), q, k, v, bias, u, false, threads);
  return compare_tensors(sparse.data(), dense.data(), p.total_q(), p.heads_q, p.head_dim);
}

ErrorReport hstu_quality_cuda(const AttentionProblem& p, const BlockMask& mask, const void* q, const void* k,
                              const void* v, const HstuBias& bias, const void* u, const AttentionOptions& opt) {
  const std::vector<float> sparse = hstu_forward_cuda(p, mask, q, k, v, bias, u, opt);
  const std::vector<float> dense = hstu_forward_cuda(p, dense_mask_like(mask.shape, mask.causal), q, k, v, bias, u, opt);
  return compare_tensors(sparse.data(), dense.data(), p.total_q(), p.heads_q, p.head_dim);
}

}  // namespace bsattn
