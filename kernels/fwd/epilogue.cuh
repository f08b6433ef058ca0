// Epilogue of the forward kernels: O = acc / l in the input dtype and LSE (natural log), from a warp's
// O fragments and its OnlineSoftmax state; empty rows give O = 0 and LSE = -inf. store_output writes
// from registers (any query tile, tails too); store_output_tma (sm90-ws) stages a full tile's O in
// shared memory and sends it by TMA store.
#pragma once
#include <cstdint>

#include "kernels/fwd/block.cuh"
#include "kernels/fwd/ptx.cuh"
#include "kernels/fwd/softmax.cuh"

namespace bsattn::cuda::fwd {

// Where query row q (of the sequence starting at q_start) of head h puts its LSE.
__device__ __forceinline__ int64_t lse_index(const FwdParams& p, int b, int h, int q_start, int q) {
  return p.cu_q ? int64_t(h) * (p.cu_q[p.batch]) + q_start + q : (int64_t(b) * p.heads_q + h) * p.q_len + q;
}
template <class T>
__device__ __forceinline__ void store_output(const FwdParams& p, const QueryTile& qt, int warp_row, int lane,
                                             const OnlineSoftmax<T>& sm, const float (&o)[T::MT][T::DT][4]) {
  using Elem = typename T::Elem;
  const int b = qt.b, h = qt.h, q_start = qt.q_start, q0 = qt.q0, q_rows = qt.q_rows;
  const int64_t ldq = int64_t(p.heads_q) * T::D;
  Elem* go = static_cast<Elem*>(p.o) + (int64_t(q_start) + q0) * ldq + int64_t(h) * T::D;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const RowNorm nr = row_norm<T>(sm, mt, r);
      const float inv = nr.inv;
      int row = warp_row + mt * 16 + (lane >> 2) + r * 8;
      // Lane j of a quad holds columns 2j, 2j+1 of every 8-column block. For each pair of blocks, two
      // shuffles give lane j four consecutive columns (block 2m + j/2, columns 4(j%2)..+3), so a quad
      // writes 32 contiguous bytes of its row (a full sector) with one 8-byte store per lane, instead
      // of two half sectors with 4-byte stores.
      const int j = lane & 3, quad = lane & ~3;
      const int src1 = quad | ((j & 1) << 1) | (j >> 1), src2 = src1 ^ 1;
      uint2 out[T::DT / 2];
#pragma unroll
      for (int m = 0; m < T::DT / 2; ++m) {
        const uint32_t a = Mma<Elem>::pack(o[mt][2 * m][2 * r] * inv, o[mt][2 * m][2 * r + 1] * inv);
        const uint32_t b = Mma<Elem>::pack(o[mt][2 * m + 1][2 * r] * inv, o[mt][2 * m + 1][2 * r + 1] * inv);
        const uint32_t x1 = __shfl_sync(0xffffffffu, (lane & 1) ? b : a, src1);
        const uint32_t x2 = __shfl_sync(0xffffffffu, (lane & 1) ? a : b, src2);
        out[m] = (j & 2) ? make_uint2(x2, x1) : make_uint2(x1, x2);
      }
      if (row < q_rows) {
        Elem* orow = go + int64_t(row) * ldq + (j >> 1) * 8 + (j & 1) * 4;
#pragma unroll
        for (int m = 0; m < T::DT / 2; ++m) *reinterpret_cast<uint2*>(orow + m * 16) = out[m];
        if ((lane & 3) == 0) p.lse[lse_index(p, b, h, q_start, q0 + row)] = nr.lse;
      }
    }
}


// sm90-ws's epilogue for a full query tile (q_rows == BM): this warpgroup's 64 rows of O, normalized,
// go into its half of the O buffer (so_wg: D / 64 boxes of [64 rows][64 elements], 128B-swizzled like
// the map's boxes), then its first thread sends them by TMA store and does not wait for it; LSE as
// store_output. Before writing, that thread waits until its previous store has read the buffer (one item
// ago), and a named barrier of the warpgroup (3 + wg) passes that on; a second one, after every thread's
// writes and proxy fence, lets the store go.
template <class T>
__device__ __forceinline__ void store_output_tma(const CUtensorMap& o_map, const FwdParams& p, const QueryTile& it,
                                                 uint32_t so_wg, int wg, int bar,
                                                 int warp_row, int lane, const OnlineSoftmax<T>& sm,
                                                 const float (&o)[1][T::DT][4]) {
  using Elem = typename T::Elem;
  const bool leader = (threadIdx.x & 127) == 0;
  if (leader) bulk_wait_read();
  named_bar_sync(bar, 128);
  const int wrow = warp_row - 64 * wg;  // this warp's first row in the warpgroup's 64
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const RowNorm nr = row_norm<T>(sm, 0, r);
    const int row = wrow + (lane >> 2) + r * 8;  // row % 8 == lane / 4
    const uint32_t srow = so_wg + row * 128 + (lane & 3) * 4;
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt) {
      const uint32_t v = Mma<Elem>::pack(o[0][dt][2 * r] * nr.inv, o[0][dt][2 * r + 1] * nr.inv);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(srow + (dt / 8) * (64 * 128) + (((dt % 8) ^ (lane >> 2)) << 4)),
                   "r"(v)
                   : "memory");
    }
    if ((lane & 3) == 0)
      p.lse[lse_index(p, it.b, it.h, it.q_start, it.q0 + warp_row + (lane >> 2) + r * 8)] = nr.lse;
  }
  fence_proxy_async_smem();
  named_bar_sync(bar, 128);
  if (leader) {
#pragma unroll
    for (int cb = 0; cb < T::D / 64; ++cb)
      tma_store_2d(&o_map, so_wg + cb * (64 * 128), it.h * T::D + cb * 64, it.q_start + it.q0 + 64 * wg);
    bulk_commit();
  }
}

}  // namespace bsattn::cuda::fwd
