// Parameters of one forward launch: device pointers and sizes, plain C++ (no CUDA types) so that the
// runner and the kernel family share them. Everything the kernel needs to decide which KV tiles a
// query tile visits is here: the row CSR for sparse heads, the two numbers of streaming heads, and
// nothing for dense heads.
#pragma once
#include <cstdint>

namespace bsattn::cuda {

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
};

}  // namespace bsattn::cuda
