// Parameters of one forward launch: device pointers and sizes, plain C++ (no CUDA types) so that the
// runner and the kernel family share them. Everything the kernel needs to decide which KV tiles a
// query tile visits is here: the row CSR for sparse heads, the two numbers of streaming heads, and
// nothing for dense heads.
#pragma once
#include <cstdint>

namespace bsattn::cuda {

// HSTU's relative attention bias (docs/hstu.md), computed in the kernel for each (query, key) pair of a
// sequence from per-query-head tables (kernels/fwd/bias.cuh): SiLU scores only, self-attention (each
// sequence's keys are its queries). Any of the three terms may be absent (null).
struct RabParams {
  const float* pos = nullptr;  // [Hq, pos_len]: by distance min(|i - j|, pos_len - 1)
  int pos_len = 0;
  const float* ts = nullptr;   // [Hq, ts_buckets]: by timestamp bucket
  int ts_buckets = 0;
  const double* timestamps = nullptr;  // [total_q], packed like Q
  // [ts_buckets + 1]: bucket b holds the |dt| in [ts_bounds[b], ts_bounds[b + 1]) (ts_bounds[0] = 0, the
  // last +inf), the exact edges of lib/hstu's hstu_ts_bucket (hstu_ts_bucket_bounds).
  const double* ts_bounds = nullptr;
  const float* dense = nullptr;  // [Hq, dense_q, dense_k] (positions within each sequence)
  int dense_q = 0, dense_k = 0;  // the problem's q_len, kv_len (varlen: the longest sequence)
  bool on() const { return pos || ts || dense; }
};

struct FwdParams {
  const void* q = nullptr;  // [total_q, Hq, D] elements of `dtype`
  const void* k = nullptr;  // [total_k, Hkv, D]
  const void* v = nullptr;
  void* o = nullptr;        // [total_q, Hq, D], same dtype as q
  float* lse = nullptr;     // [B, Hq, q_len] or varlen [Hq, total_q]
  const int32_t* cu_q = nullptr;  // batch+1 offsets, or null (fixed length)
  const int32_t* cu_k = nullptr;

  int batch = 1, heads_q = 1, heads_kv = 1, head_dim = 64;
  int q_len = 0, kv_len = 0;  // per sequence (varlen: maxima; the mask geometry)
  int64_t total_q = 0, total_k = 0;  // rows of Q and of K/V (0: batch * q_len / batch * kv_len)

  // Mask.
  int mask_batch = 1;  // 1 broadcasts
  int block_q = 128, block_kv = 128, mq = 0, mk = 0;
  bool causal = false;
  const uint8_t* head_type = nullptr;  // [Hq]: 0 dense, 1 sparse, 2 streaming
  const int32_t* head_sink = nullptr;  // [Hq] streaming sink blocks
  const int32_t* head_local = nullptr; // [Hq] streaming local blocks
  const int32_t* kv_num_blocks = nullptr;  // [mask_batch, Hq, mq]
  const int32_t* kv_indices = nullptr;     // [mask_batch, Hq, mq, mk]

  // Launch: the most CTAs a persistent kernel (sm90-ws) starts; 0 = one per multiprocessor. Tests set a
  // small number so that each CTA takes many work items.
  int max_ctas = 0;

  float scale = 1.f;  // softmax / SiLU scale
  bool silu = false;
  float silu_inv_n = 1.f;
  RabParams rab;      // SiLU only; launch picks a kernel with the bias when rab.on()
};

}  // namespace bsattn::cuda
