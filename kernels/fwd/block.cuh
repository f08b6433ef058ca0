// Block iteration: which query tile a CTA (or a work item) owns, and which KV tiles it visits. This is
// the only place sparsity enters the forward kernels: the main loops see a tile list and nothing else
// of the mask.
#pragma once
#include <cuda_runtime.h>  // min / max for host and device

#include <cstdint>

#include "kernels/fwd/mask.cuh"
#include "kernels/fwd_params.h"

namespace bsattn::cuda::fwd {

// Block iteration: the KV tiles (of BN keys, ascending) that one query tile visits. Sparse heads read
// their CSR row; dense and streaming heads are two ascending segments computed from their definition.
// KvTileList, make_tile_list and query_tile also compile for the host, where tests/kernels checks them
// against the mask model without a GPU.
// Everything past `kv_limit` (sequence end, causal frontier) is dropped here, so the main loop never
// visits a tile without a visible key.
struct KvTileList {
  const int32_t* idx = nullptr;  // CSR row (sparse); null for segment form
  int per_block = 1;             // BN tiles per mask block_kv
  int seg0_end = 0, seg1_begin = 0;
  int count = 0;
  __host__ __device__ __forceinline__ int tile(int t) const {
    if (idx) return idx[t / per_block] * per_block + t % per_block;
    return t < seg0_end ? t : seg1_begin + (t - seg0_end);
  }
};

// Row of the mask's CSR (kv_num_blocks / kv_indices) for query block i of head h of sequence b.
__host__ __device__ __forceinline__ int64_t csr_row(const FwdParams& p, int b, int h, int i) {
  return (int64_t(p.mask_batch == 1 ? 0 : b) * p.heads_q + h) * p.mq + i;
}

// SKIP_TRIM (sm90-ws): when no block can reach kv_limit, do not read the row's last entry
// (neither to trim nor to count the last block's tiles: each kept block then counts per_block tiles),
// and read the row's length beside the head type rather than after it, so that the two reads' latencies
// overlap (the CSR, when present, has a row for every head).
template <int BN, bool SKIP_TRIM = false>
__host__ __device__ __forceinline__ KvTileList make_tile_list(const FwdParams& p, int b, int h, int i, int kv_limit) {
  KvTileList L;
  L.per_block = p.block_kv / BN;
  if (kv_limit <= 0) return L;
  int limit_tiles = (kv_limit + BN - 1) / BN;  // tiles with a key below kv_limit
  const int64_t row = csr_row(p, b, h, i);
  const int nb_early = SKIP_TRIM && p.kv_num_blocks ? p.kv_num_blocks[row] : 0;
  int type = p.head_type[h];
  // The mask's own diagonal block (mask geometry, as fill_streaming / apply_causal use it).
  int key = min(p.q_len, (i + 1) * p.block_q) - 1 + (p.kv_len - p.q_len);
  int diag = key < 0 ? -1 : min(key / p.block_kv, p.mk - 1);
  if (type == 1) {  // sparse: CSR row
    const int32_t* idx = p.kv_indices + row * p.mk;
    int nb = SKIP_TRIM ? nb_early : p.kv_num_blocks[row];
    const bool trim = !SKIP_TRIM || limit_tiles < p.mk * L.per_block;
    if (trim)
      while (nb > 0 && idx[nb - 1] * L.per_block >= limit_tiles) --nb;
    if (nb == 0) return L;
    L.idx = idx;
    L.count = trim ? (nb - 1) * L.per_block + min(L.per_block, limit_tiles - idx[nb - 1] * L.per_block)
                   : nb * L.per_block;
    return L;
  }
  int blocks_end = p.causal ? diag + 1 : p.mk;  // blocks the bitmap can hold in this row
  int seg0 = 0, seg1b = 0, seg1e = 0;           // in blocks
  if (type == 0) {  // dense
    seg0 = blocks_end;
  } else {  // streaming: sinks, then the local window ending at the diagonal block
    seg0 = min(p.head_sink[h], blocks_end);
    if (diag >= 0) {
      seg1b = max(max(0, diag - p.head_local[h] + 1), seg0);
      seg1e = max(seg1b, min(diag + 1, blocks_end));
    }
  }
  int t0 = min(seg0 * L.per_block, limit_tiles);
  int t1b = seg1b * L.per_block, t1e = min(seg1e * L.per_block, limit_tiles);
  L.seg0_end = t0;
  L.seg1_begin = t1b;
  L.count = t0 + max(0, t1e - t1b);
  return L;
}

// One query tile i of head h of sequence b: where its sequence lies (varlen or fixed length), its rows,
// the masking rule and how far its keys reach (kv_limit: sequence end, causal frontier). Every kernel's
// prologue; a tile past its sequence's end (varlen) is not live and writes nothing.
struct QueryTile {
  int b, h, hk, i, q_start, len_q, k_start, len_k, q0, q_rows, kv_limit;
  TileMask tm;
  __host__ __device__ __forceinline__ bool live() const { return q0 < len_q; }
};
template <int BM>
__host__ __device__ __forceinline__ QueryTile query_tile(const FwdParams& p, int b, int h, int hk, int i) {
  QueryTile t;
  t.b = b, t.h = h, t.i = i;
  t.hk = hk;
  if (p.cu_q) {
    t.q_start = p.cu_q[b], t.len_q = p.cu_q[b + 1] - t.q_start;
    t.k_start = p.cu_k[b], t.len_k = p.cu_k[b + 1] - t.k_start;
  } else {
    t.q_start = b * p.q_len, t.len_q = p.q_len, t.k_start = b * p.kv_len, t.len_k = p.kv_len;
  }
  t.q0 = i * BM;
  t.q_rows = min(BM, t.len_q - t.q0);
  t.tm = TileMask{t.len_k, t.len_k - t.len_q, p.causal};
  t.kv_limit = t.len_k;
  if (p.causal) t.kv_limit = min(t.kv_limit, t.q0 + t.q_rows - 1 + t.tm.off + 1);
  return t;
}
template <int BM>
__host__ __device__ __forceinline__ QueryTile query_tile(const FwdParams& p, int b, int h, int i) {
  return query_tile<BM>(p, b, h, h / (p.heads_q / p.heads_kv), i);
}

// The query tile of this CTA in the one-CTA-per-query-tile kernels (grid: query tiles, heads, sequences).
// Causal: the longest rows (last query tiles) start first, so the tail of the grid is short work.
template <int BM>
__device__ __forceinline__ QueryTile block_query_tile(const FwdParams& p) {
  return query_tile<BM>(p, blockIdx.z, blockIdx.y, p.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
}

}  // namespace bsattn::cuda::fwd
