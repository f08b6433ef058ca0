// Block iteration of the backward: which query tiles the CTA of one KV tile visits (the mask's column
// form), beside the forward's row form (kernels/fwd/block.cuh), which the deterministic dQ pass walks.
// Sparse heads read the column CSR built on the GPU from the bitmap; dense and streaming heads keep one
// contiguous range of query blocks per key block, derived from the same rule make_tile_list applies per
// row. Everything here also compiles for the host, where tests/kernels/test_bwd_block_iteration.cu
// checks it against the mask model.
#pragma once
#include <cuda_runtime.h>  // min / max for host and device

#include <cstdint>

#include "kernels/bwd_params.h"
#include "kernels/fwd/block.cuh"
#include "kernels/fwd/mask.cuh"

namespace bsattn::cuda::bwd {

// The mask's diagonal block of query block i, as make_tile_list computes it (the mask's geometry,
// bottom-right): the key block holding the last key that block's last row may see; -1 when none.
__host__ __device__ __forceinline__ int diag_block(const FwdParams& p, int i) {
  const int key = min(p.q_len, (i + 1) * p.block_q) - 1 + (p.kv_len - p.q_len);
  return key < 0 ? -1 : min(key / p.block_kv, p.mk - 1);
}

// The first query block whose diagonal block is at least j (mq when none); diag_block does not
// decrease with i, so this is a binary search.
__host__ __device__ __forceinline__ int first_row_reaching(const FwdParams& p, int j) {
  int lo = 0, hi = p.mq;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (diag_block(p, mid) >= j) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// The query tiles (of BM rows, ascending) that one KV tile visits for one query head.
struct QTileList {
  const int32_t* idx = nullptr;  // column CSR (sparse heads): ascending query blocks; null: a range
  int per_block = 1;             // BM-row tiles per mask block_q
  int first = 0;                 // CSR: position of tile 0 in the expansion of idx; range: tile 0 itself
  int count = 0;
  __host__ __device__ __forceinline__ int tile(int t) const {
    if (!idx) return first + t;
    const int u = first + t;
    return idx[u / per_block] * per_block + u % per_block;
  }
};

// Query tiles of head h (sequence b) that keep key block j, restricted to tiles [t_lo, t_hi) (those
// with a row that sees a key of the KV tile: below the sequence's end, at or after the causal frontier).
template <int BM>
__host__ __device__ __forceinline__ QTileList make_q_tile_list(const BwdParams& p, int b, int h, int j, int t_lo,
                                                               int t_hi) {
  QTileList L;
  const int pb = p.block_q / BM;
  L.per_block = pb;
  if (t_lo >= t_hi) return L;
  const int type = p.head_type[h];
  if (type == 1) {  // sparse: the column of the CSR, trimmed at both ends by binary search
    const int64_t col = (int64_t(p.mask_batch == 1 ? 0 : b) * p.heads_q + h) * p.mk + j;
    const int32_t* idx = p.q_indices + col * p.mq;
    const int nb = p.q_num_blocks[col];
    int lo = 0, hi = nb;  // first entry with a tile at or after t_lo
    while (lo < hi) {
      const int mid = (lo + hi) >> 1;
      if ((idx[mid] + 1) * pb > t_lo) hi = mid;
      else lo = mid + 1;
    }
    const int n0 = lo;
    hi = nb;  // first entry starting at or after t_hi
    while (lo < hi) {
      const int mid = (lo + hi) >> 1;
      if (idx[mid] * pb >= t_hi) hi = mid;
      else lo = mid + 1;
    }
    const int n1 = lo;
    if (n0 >= n1) return L;
    L.idx = idx;
    L.first = n0 * pb + max(0, t_lo - idx[n0] * pb);
    const int end = (n1 - 1) * pb + min(pb, t_hi - idx[n1 - 1] * pb);
    L.count = max(0, end - L.first);
    return L;
  }
  // Dense: every block row whose reach includes j (all rows without causal). Streaming: the sink blocks
  // as dense; a local block j is kept by the rows whose diagonal block lies in [j, j + local).
  int i0 = 0, i1 = p.mq;
  if (type == 0 || j < p.head_sink[h]) {
    if (p.causal) i0 = first_row_reaching(p, j);
  } else {
    i0 = first_row_reaching(p, j);
    i1 = first_row_reaching(p, j + min(p.head_local[h], p.mk));
  }
  const int a = max(i0 * pb, t_lo), e = min(i1 * pb, t_hi);
  if (a < e) L.first = a, L.count = e - a;
  return L;
}

// One KV tile (kt, of BN keys) of KV head hk of sequence b: where its sequence lies, its keys, the
// mask block holding it, the masking rule and the query tiles (of BM rows) that can see it.
struct KvTile {
  int b, hk, kt, j, k0, k_rows, q_start, len_q, k_start, len_k, t_lo, t_hi;
  fwd::TileMask tm;
  __host__ __device__ __forceinline__ bool live() const { return k0 < len_k; }
};
template <int BM, int BN>
__host__ __device__ __forceinline__ KvTile kv_tile(const BwdParams& p, int b, int hk, int kt) {
  KvTile t;
  t.b = b, t.hk = hk, t.kt = kt;
  if (p.cu_q) {
    t.q_start = p.cu_q[b], t.len_q = p.cu_q[b + 1] - t.q_start;
    t.k_start = p.cu_k[b], t.len_k = p.cu_k[b + 1] - t.k_start;
  } else {
    t.q_start = b * p.q_len, t.len_q = p.q_len, t.k_start = b * p.kv_len, t.len_k = p.kv_len;
  }
  t.k0 = kt * BN;
  t.k_rows = min(BN, t.len_k - t.k0);
  t.j = t.k0 / p.block_kv;
  t.tm = fwd::TileMask{t.len_k, t.len_k - t.len_q, p.causal};
  t.t_hi = (t.len_q + BM - 1) / BM;
  // Causal: row q sees key k0 or later only when q + off >= k0; the first tile with such a row.
  const int first_row = t.k0 - t.tm.off;
  t.t_lo = p.causal && first_row > 0 ? first_row / BM : 0;
  return t;
}

}  // namespace bsattn::cuda::bwd
