// HSTU attention (Zhai et al. 2024, generative recommenders) on jagged batches: for each sequence alone,
//   O = (SiLU(alpha * Q K^T + rab) / n) V, then optionally O * U (u-gating),
// causal (and any block mask), with rab the relative attention bias of HSTU (docs/hstu.md):
//   rab[h,i,j] = pos[h, min(|i-j|, Np-1)] + ts[h, bucket(i,j)] (+ a dense bias[h,i,j] when given), where
//   bucket(i,j) = clamp(floor(ln(max(|t[min(i+1, L-1)] - t[j]|, 1)) / 0.301), 0, Nb-1)
// (HSTU's bucketization: query i is scored with the timestamp of the item it predicts, i+1), i and j
// positions within the sequence, t its timestamps. Computed by the CPU reference (lib/reference) with the
// bias materialized per sequence ([H, L, L]), or by the CUDA kernels from the tables (hstu_forward_cuda).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/quality/quality.h"

namespace bsattn {

struct HstuBias {
  std::vector<float> pos;   // [H, Np] (a [Np] file is repeated for every head); empty: none
  int64_t pos_len = 0;      // Np
  std::vector<float> ts;    // [H, Nb]; empty: none
  int64_t ts_buckets = 0;   // Nb
  std::vector<double> timestamps;  // [total tokens] (packed like Q); needed with ts
  std::vector<float> dense;        // [H, q_len, kv_len] shared by every sequence (positions within it); empty: none
  bool any() const { return !pos.empty() || !ts.empty() || !dense.empty(); }
};

// A per-head table .npy: float32 [heads, N] or [N] (then the same for every head). UsageError naming `what`.
std::vector<float> load_bias_table(const std::string& path, int64_t heads, int64_t& n, const std::string& what);
// Timestamps .npy: 1-D [total] or 2-D [B,S], int32/int64/float32/float64, `total` values.
std::vector<double> load_timestamps(const std::string& path, int64_t total, const std::string& what);
// A dense bias .npy: float32 [heads, q_len, kv_len].
std::vector<float> load_dense_bias(const std::string& path, int64_t heads, int64_t q_len, int64_t kv_len,
                                   const std::string& what);

// HSTU's timestamp bucket of a difference dt.
int64_t hstu_ts_bucket(double dt, int64_t buckets);
// The buckets' edges as |dt| values: [buckets + 1], bounds[0] = 0, bounds[buckets] = +inf, and
// hstu_ts_bucket(dt) = b exactly when bounds[b] <= |dt| < bounds[b + 1] (edges never reached are +inf).
// The CUDA kernels compare with these instead of taking a logarithm in double precision.
std::vector<double> hstu_ts_bucket_bounds(int64_t buckets);
// rab of one sequence: [H, L, L] (positions within the sequence; `t0` its first row in the packed timestamps).
std::vector<float> hstu_rab(const HstuBias& b, int64_t heads, int64_t t0, int64_t len, int64_t dense_q_len,
                            int64_t dense_kv_len);

// p: SiLU (p.score), fixed-length or varlen with equal q/k offsets, q_len == kv_len per sequence; q, k, v
// f32 BSHD (packed when varlen); u: [total, Hq, D] or null. f64: compute in float64. Returns O [total, Hq, D].
std::vector<float> hstu_forward(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k,
                                const float* v, const HstuBias& bias, const float* u, bool f64 = false, int threads = 0);

// The checks both backends make first: SiLU, self-attention, the problem against the mask, the tables'
// sizes, one timestamp per token. UsageError.
void check_hstu_problem(const AttentionProblem& p, const BlockMask& mask, const HstuBias& bias);
// The tables as the attention entry takes them (pointers into b).
RelativeBiasTables hstu_bias_tables(const HstuBias& b);
// hstu_forward on the CUDA backend (opt: kernel and launch; the backend is set here): q, k, v and u (or
// null) 16-bit of p.dtype, rab computed for each pair in the kernel from the tables (exactly hstu_rab's
// values), u-gating by a kernel after it. O [total, Hq, D] as float. UsageError before any GPU call;
// RuntimeFailure without a GPU.
std::vector<float> hstu_forward_cuda(const AttentionProblem& p, const BlockMask& mask, const void* q, const void* k,
                                     const void* v, const HstuBias& bias, const void* u, const AttentionOptions& opt);

// HSTU attention with a mask (a selection such as topk) against the same attention with every (causally
// visible) block kept, both through hstu_forward in float32: what `analyze --score silu --rab-...` reports.
ErrorReport hstu_quality(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k, const float* v,
                         const HstuBias& bias, const float* u, int threads = 0);
// The same on the CUDA backend (both passes through hstu_forward_cuda; q, k, v, u 16-bit of p.dtype).
ErrorReport hstu_quality_cuda(const AttentionProblem& p, const BlockMask& mask, const void* q, const void* k,
                              const void* v, const HstuBias& bias, const void* u, const AttentionOptions& opt);

}  // namespace bsattn
