// Masking: only the KV tiles that cross the sequence end or the causal frontier (bottom-right aligned
// when q_len != kv_len) are masked; every other tile of a query tile's list has only visible pairs.
// TileMask also compiles for the host (tests/kernels checks it against the mask model).
#pragma once
#include <cmath>

namespace bsattn::cuda::fwd {

// Masking: needed only where a tile crosses the sequence end or the causal frontier.
struct TileMask {
  int len_k, off;  // off = len_k - len_q (bottom-right causal)
  bool causal;
  __host__ __device__ __forceinline__ bool needed(int q0, int k0, int bn) const {
    return k0 + bn > len_k || (causal && k0 + bn - 1 > q0 + off);
  }
  __host__ __device__ __forceinline__ bool visible(int q, int k) const { return k < len_k && (!causal || k <= q + off); }
  // Whether tile t of a BM-row query tile's ascending list of `count` tiles (KvTileList) can need
  // masking at all: the list stops at kv_limit, so the tile holding the sequence end is the last one and
  // the tiles crossing the causal diagonal are among the last (BM + BN - 1) / BN + 1. For the others the
  // main loop does not need the tile's id.
  template <int BM, int BN>
  __host__ __device__ __forceinline__ bool may_need(int t, int count) const {
    return (causal || len_k % BN != 0) && t + (BM + BN - 1) / BN + 1 >= count;
  }
};

// Sets the scores of invisible pairs of the KV tile starting at key k0 to `fill` (-inf: softmax scores;
// 0: SiLU probabilities), when the tile needs it.
// s holds a warp's S fragments (MT m16 tiles of rows from warp_row, NT n8 tiles of keys; the mma.sync
// C layout, which is also the wgmma accumulator layout of each warp of a warpgroup).
template <class T>
__device__ __forceinline__ void mask_tile(float (&s)[T::MT][T::NT][4], int q0, int k0, const TileMask& tm,
                                          int warp_row, int lane, float fill = -INFINITY) {
  if (tm.needed(q0, k0, T::BN)) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int q = q0 + warp_row + mt * 16 + (lane >> 2) + ((e >> 1) << 3);
          int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
          if (!tm.visible(q, k)) s[mt][nt][e] = fill;
        }
  }
}

}  // namespace bsattn::cuda::fwd
