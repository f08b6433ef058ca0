// The sm_80 kernels of the backward family (FlashAttention-2's scheme: mma.sync m16n8k16, ldmatrix,
// cp.async; runs on sm_80 and newer). Four kernels per launch:
//   bwd_preprocess_kernel  one warp per (query row, head): D_i = rowsum(dO * O) in fp32 (softmax), and
//                          the row's fp32 dQ accumulator zeroed (atomic mode).
//   bwd_dkdv_kernel        one CTA per (KV tile of BN keys, KV head, sequence): K and V stay in shared
//                          memory; for each query head of the GQA group it walks the query tiles that
//                          keep its key block (block.cuh, the column form), Q and dO (and the rows' LSE
//                          and D_i) in a 2-stage cp.async ring. Per query tile, with the CTA's keys as
//                          rows: S^T = K Q^T, P^T = exp(scale S^T - LSE) (softmax; masking only on boundary
//                          tiles), dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D), dK += dS^T Q; in
//                          atomic mode also dS^T to shared memory and dQ += dS K by fp32 atomics. SiLU:
//                          P = SiLU(x)/n and dS = dP SiLU'(x)/n with x = scale S. The group's heads are
//                          summed in registers, so dK and dV need no atomics. Writes dK (times scale),
//                          dV.
//   bwd_dq_kernel          deterministic mode: one CTA per query tile walking the forward's row form
//                          (make_tile_list) with K/V in a 2-stage ring; recomputes P and dS per KV tile and
//                          sums dQ += dS K in registers, then writes dQ (times scale).
//   bwd_postprocess_kernel atomic mode: dQ = scale * accumulator.
// Each warp owns 16 rows of a 64-row tile (4 warps), as the forward's sm80-general.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bwd/block.cuh"
#include "kernels/bwd_params.h"
#include "kernels/fwd/epilogue.cuh"  // lse_index
#include "kernels/fwd/mainloop_sm80.cuh"
#include "kernels/fwd/ptx.cuh"

namespace bsattn::cuda::bwd {

using fwd::Mma;
using fwd::swz;

constexpr float LOG2E = 1.44269504088896340736f;

// BM = BN = 64: a query tile and a KV tile are each inside one mask block (block_q 64 or 128, block_kv a
// multiple of 64), and the dK/dV loop's operands are symmetric (its rows are keys, its columns
// queries), so the forward's tile steps (MmaMainLoop: X Y^T and P Y) serve both kernels. 4 warps of 16
// rows keep dK and dV (2 x 16 x D fp32 per warp) plus S and dP in registers at D = 128.
template <class Elem, int D, bool SILU>
struct BwdSm80Config : fwd::TileShape<Elem, D, /*BM=*/64, /*BN=*/64, /*NWARPS=*/4, /*STAGES=*/2, SILU> {
  using Base = fwd::TileShape<Elem, D, 64, 64, 4, 2, SILU>;
  static constexpr int TILE = 64 * D;        // elements of one 64-row operand tile
  static constexpr int DS_ELEMS = 64 * 64;   // dS^T of one step, 16-bit (atomic mode)
  static constexpr int ROW_FLOATS = 2 * 64;  // a stage's per-row LSE (log2 domain) and D_i
  // dK/dV loop: K, V, the Q/dO ring, dS^T, the per-row ring.
  static constexpr int SMEM_DKDV =
      (2 * TILE + Base::STAGES * 2 * TILE + DS_ELEMS) * 2 + Base::STAGES * ROW_FLOATS * 4;
  // dQ pass: Q, dO, and the forward's K/V ring.
  static constexpr int SMEM_DQ = (2 * TILE + Base::STAGES * 2 * TILE) * 2;
  static constexpr int DQ_CHUNK = 64;  // dQ columns summed per pass over dS (atomic mode): 32 registers
  static_assert(Base::MT == 1, "one m16 tile per warp");
  static_assert(D % DQ_CHUNK == 0, "dQ chunks divide the head dim");
};

// Index of row `row` (of the packed [total_q] rows) of head h in the LSE / D_i layout.
__device__ __forceinline__ int64_t row_stat_index(const BwdParams& p, int64_t row, int h) {
  if (p.cu_q) return int64_t(h) * p.total_q + row;
  return (row / p.q_len * p.heads_q + h) * int64_t(p.q_len) + row % p.q_len;
}

// The probability and the score gradient of one visible pair from its raw score s = q.k, its dP and
// its row's LSE (log2 domain, +inf for an empty row: p = 0) and D_i. Softmax: p = exp(scale s - LSE),
// dS = p (dP - D_i). SiLU: p = SiLU(x)/n, dS = dP SiLU'(x)/n with x = scale s. dS is the gradient with
// respect to x; dK and dQ take the factor scale at the end.
template <bool SILU>
__device__ __forceinline__ void pair_grad(float s, float dp, float lse2, float delta, const BwdParams& p,
                                          float scale_log2, float& prob, float& ds) {
  if constexpr (SILU) {
    const float x = s * p.scale;
    const float sg = 1.f / (1.f + __expf(-x));
    prob = x * sg * p.silu_inv_n;
    ds = dp * sg * (1.f + x * (1.f - sg)) * p.silu_inv_n;
  } else {
    prob = fwd::ex2(fmaf(s, scale_log2, -lse2));
    ds = prob * (dp - delta);
  }
}

// LSE in the log2 domain for the kernels: -inf (an empty row) becomes +inf, so that exp2(x - LSE) = 0.
__device__ __forceinline__ float lse_log2(float lse) { return lse == -INFINITY ? INFINITY : lse * LOG2E; }

// Two adjacent gradient values at element i of an output (dQ, dK or dV): fp32, or with p.grads16 the
// inputs' 16-bit type (BwdParams).
template <class Elem>
__device__ __forceinline__ void store_grad2(float* out, int64_t i, float a, float b, bool grads16) {
  if (grads16)
    *reinterpret_cast<uint32_t*>(reinterpret_cast<Elem*>(out) + i) = fwd::Mma<Elem>::pack(a, b);
  else
    *reinterpret_cast<float2*>(out + i) = make_float2(a, b);
}

// ---------------------------------------------------------------------------------------------
template <class Elem, int D>
__global__ void __launch_bounds__(256) bwd_preprocess_kernel(const BwdParams p) {
  const int64_t rows = p.total_q * p.heads_q;
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= rows) return;
  const int64_t base = w * D;  // [row, h, :] of a [total_q, Hq, D] tensor
  if (p.dq_accum)
    for (int d = lane * 4; d < D; d += 128) *reinterpret_cast<float4*>(p.dq_accum + base + d) = make_float4(0.f, 0.f, 0.f, 0.f);
  if (p.silu) return;
  const Elem* o = static_cast<const Elem*>(p.o) + base;
  const Elem* g = static_cast<const Elem*>(p.dout) + base;
  float acc = 0.f;
  for (int d = lane; d < D; d += 32) acc += float(o[d]) * float(g[d]);
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if (lane == 0) p.delta[row_stat_index(p, w / p.heads_q, int(w % p.heads_q))] = acc;
}

// atomic mode: dQ = scale * accumulator, four elements per thread.
template <class Elem, int D>
__global__ void __launch_bounds__(256) bwd_postprocess_kernel(const BwdParams p) {
  const int64_t n4 = p.total_q * p.heads_q * D / 4;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    float4 a = reinterpret_cast<const float4*>(p.dq_accum)[i];
    a.x *= p.scale, a.y *= p.scale, a.z *= p.scale, a.w *= p.scale;
    if (p.grads16)
      reinterpret_cast<uint2*>(p.dq)[i] = make_uint2(fwd::Mma<Elem>::pack(a.x, a.y), fwd::Mma<Elem>::pack(a.z, a.w));
    else
      reinterpret_cast<float4*>(p.dq)[i] = a;
  }
}

// ---------------------------------------------------------------------------------------------
// dQ[warp's 16 rows, columns c0 .. c0 + DQ_CHUNK) = dS K, with dS^T [keys][queries] in shared memory
// (16-bit, swizzled rows of 64): ldmatrix.trans gives the A fragments of dS, and K [keys][D] the B
// fragments as V in the forward's P V.
template <class T>
__device__ __forceinline__ void dq_chunk(const typename T::Elem* sds, const typename T::Elem* sk, int warp_row,
                                         int lane, int c0, float (&acc)[T::DQ_CHUNK / 8][4]) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int n = 0; n < T::DQ_CHUNK / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[n][e] = 0.f;
#pragma unroll
  for (int j = 0; j < T::BN / 16; ++j) {
    // matrices 0..3: (queries 0-7, keys 0-7), (queries 8-15, keys 0-7), (0-7, 8-15), (8-15, 8-15),
    // each stored transposed at rows = keys, chunk = queries / 8.
    uint32_t a[4];
    fwd::ldmatrix_x4_trans(a, sds + swz<64>(j * 16 + ((lane >> 4) << 3) + (lane & 7), (warp_row >> 3) + ((lane >> 3) & 1)));
#pragma unroll
    for (int d2 = 0; d2 < T::DQ_CHUNK / 16; ++d2) {
      uint32_t b[4];
      fwd::ldmatrix_x4_trans(b, sk + swz<T::D>(j * 16 + (((lane >> 3) & 1) << 3) + (lane & 7), c0 / 8 + d2 * 2 + (lane >> 4)));
      Mma<Elem>::run(acc[2 * d2], a, b[0], b[1]);
      Mma<Elem>::run(acc[2 * d2 + 1], a, b[2], b[3]);
    }
  }
}

template <class T, bool DQ_ATOMIC>
__global__ void __launch_bounds__(T::THREADS, 1) bwd_dkdv_kernel(const BwdParams p) {
  using Elem = typename T::Elem;
  constexpr int BM = T::BM, BN = T::BN, DT = T::DT, NT = T::NT;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const KvTile kv = kv_tile<BM, BN>(p, blockIdx.z, blockIdx.y, blockIdx.x);
  if (!kv.live()) return;  // varlen: this sequence has fewer keys than the longest
  Elem* sk = reinterpret_cast<Elem*>(smem_raw);
  Elem* sv = sk + T::TILE;
  Elem* sqo = sv + T::TILE;  // stage s: Q at sqo + 2 s TILE, dO after it
  Elem* sds = sqo + T::STAGES * 2 * T::TILE;
  float* srow = reinterpret_cast<float*>(sds + T::DS_ELEMS);  // stage s: LSE (log2) at srow + s ROW_FLOATS, D_i after
  const int tid = int(threadIdx.x), lane = tid & 31, warp_row = (tid >> 5) * 16;
  const int64_t ldq = int64_t(p.heads_q) * T::D, ldk = int64_t(p.heads_kv) * T::D;
  const Elem* safe = static_cast<const Elem*>(p.k);
  const int64_t kv_off = (int64_t(kv.k_start) + kv.k0) * ldk + int64_t(kv.hk) * T::D;
  fwd::load_tile<T, BN>(sk, static_cast<const Elem*>(p.k) + kv_off, ldk, kv.k_rows, safe, tid);
  fwd::load_tile<T, BN>(sv, static_cast<const Elem*>(p.v) + kv_off, ldk, kv.k_rows, safe, tid);
  fwd::cp_async_commit();

  float dk[1][DT][4], dv[1][DT][4];
  fwd::zero<T>(dk);
  fwd::zero<T>(dv);
  const float scale_log2 = p.scale * LOG2E;
  const int group = p.heads_q / p.heads_kv;
  for (int h = kv.hk * group; h < (kv.hk + 1) * group; ++h) {
    const QTileList L = make_q_tile_list<BM>(p, kv.b, h, kv.j, kv.t_lo, kv.t_hi);
    if (L.count == 0) continue;
    const int64_t q_off = int64_t(kv.q_start) * ldq + int64_t(h) * T::D;
    const Elem* qg = static_cast<const Elem*>(p.q) + q_off;
    const Elem* dog = static_cast<const Elem*>(p.dout) + q_off;
    // Query tile `qtile` into ring stage `stage`: Q and dO rows (zero past the sequence), and each row's
    // LSE (log2; +inf past the sequence or for an empty row, so P = 0) and D_i.
    auto load = [&](int stage, int qtile) {
      const int q0 = qtile * BM, rows = min(BM, kv.len_q - q0);
      fwd::load_tile<T, BM>(sqo + 2 * stage * T::TILE, qg + q0 * ldq, ldq, rows, safe, tid);
      fwd::load_tile<T, BM>(sqo + (2 * stage + 1) * T::TILE, dog + q0 * ldq, ldq, rows, safe, tid);
      if (tid < BM) {
        float l2 = INFINITY, dl = 0.f;
        if (tid < rows && !T::SILU) {
          const int64_t ix = fwd::lse_index(p, kv.b, h, kv.q_start, q0 + tid);
          l2 = lse_log2(p.lse[ix]);
          dl = p.delta[ix];
        }
        srow[stage * T::ROW_FLOATS + tid] = l2;
        srow[stage * T::ROW_FLOATS + BM + tid] = dl;
      }
    };
    load(0, L.tile(0));
    fwd::cp_async_commit();
    for (int t = 0; t < L.count; ++t) {
      if (t + 1 < L.count) load((t + 1) & 1, L.tile(t + 1));  // into the stage every warp finished with
      fwd::cp_async_commit();
      fwd::cp_async_wait<1>();  // K, V and this tile have landed (this thread's copies)
      __syncthreads();          // everyone's, and the row values
      const int stage = t & 1;
      const Elem* sq = sqo + 2 * stage * T::TILE;
      const Elem* sdo = sq + T::TILE;
      const float* slse = srow + stage * T::ROW_FLOATS;
      const float* sdl = slse + BM;
      const int q0 = L.tile(t) * BM;

      float s[1][NT][4], dp[1][NT][4];
      fwd::MmaMainLoop<T>::qk(sk, sq, warp_row, lane, s);    // S^T: rows keys, columns queries
      fwd::MmaMainLoop<T>::qk(sv, sdo, warp_row, lane, dp);  // dP^T
      // Masking only where the tile crosses the sequence's end (keys or query rows) or the causal frontier.
      const bool need_mask = kv.tm.needed(q0, kv.k0, BN) || q0 + BM > kv.len_q;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int qc = nt * 8 + ((lane & 3) << 1) + (e & 1);
          const int key = kv.k0 + warp_row + (lane >> 2) + ((e >> 1) << 3);
          const bool vis = !need_mask || (q0 + qc < kv.len_q && kv.tm.visible(q0 + qc, key));
          float prob, ds;
          pair_grad<T::SILU>(s[0][nt][e], dp[0][nt][e], slse[qc], sdl[qc], p, scale_log2, prob, ds);
          s[0][nt][e] = vis ? prob : 0.f;
          dp[0][nt][e] = vis ? ds : 0.f;
        }
      fwd::MmaMainLoop<T>::pv(s, sdo, lane, dv);  // dV += P^T dO
      fwd::MmaMainLoop<T>::pv(dp, sq, lane, dk);  // dK += dS^T Q
      if constexpr (DQ_ATOMIC) {
        // dS^T to shared memory as 16-bit [keys][queries]: lane holds (key, query pair) per element pair.
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int key = warp_row + (lane >> 2) + r * 8, qc = nt * 8 + ((lane & 3) << 1);
            *reinterpret_cast<uint32_t*>(sds + swz<64>(key, qc >> 3) + (qc & 7)) =
                Mma<Elem>::pack(dp[0][nt][2 * r], dp[0][nt][2 * r + 1]);
          }
        __syncthreads();
        // dQ[this warp's 16 query rows] += dS K, added to the fp32 accumulator.
        const int64_t dq_row0 = (int64_t(kv.q_start) + q0) * p.heads_q + h;
#pragma unroll
        for (int c0 = 0; c0 < T::D; c0 += T::DQ_CHUNK) {
          float acc[T::DQ_CHUNK / 8][4];
          dq_chunk<T>(sds, sk, warp_row, lane, c0, acc);
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int row = warp_row + (lane >> 2) + r * 8;
            if (q0 + row >= kv.len_q) continue;
            float* dst = p.dq_accum + (dq_row0 + int64_t(row) * p.heads_q) * T::D + c0 + ((lane & 3) << 1);
#pragma unroll
            for (int n = 0; n < T::DQ_CHUNK / 8; ++n) {
              atomicAdd(dst + n * 8, acc[n][2 * r]);
              atomicAdd(dst + n * 8 + 1, acc[n][2 * r + 1]);
            }
          }
        }
      }
      __syncthreads();  // every warp is done with this stage (and dS^T) before they are written again
    }
  }
  fwd::cp_async_wait<0>();

  // dK (times scale: dS is the gradient of the scaled score) and dV (fp32 or 16-bit), rows that exist.
  const int64_t out0 = (int64_t(kv.k_start) + kv.k0) * p.heads_kv + kv.hk;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = warp_row + (lane >> 2) + r * 8;
    if (key >= kv.k_rows) continue;
    const int64_t at = (out0 + int64_t(key) * p.heads_kv) * T::D + ((lane & 3) << 1);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      store_grad2<Elem>(p.dk, at + dt * 8, dk[0][dt][2 * r] * p.scale, dk[0][dt][2 * r + 1] * p.scale, p.grads16);
      store_grad2<Elem>(p.dv, at + dt * 8, dv[0][dt][2 * r], dv[0][dt][2 * r + 1], p.grads16);
    }
  }
}

// ---------------------------------------------------------------------------------------------
template <class T>
__global__ void __launch_bounds__(T::THREADS, 1) bwd_dq_kernel(const BwdParams p) {
  using Elem = typename T::Elem;
  constexpr int BM = T::BM, BN = T::BN, DT = T::DT, NT = T::NT;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const fwd::QueryTile qt = fwd::query_tile<BM>(p, blockIdx.z, blockIdx.y, blockIdx.x);
  if (!qt.live()) return;  // varlen: this sequence is shorter than the mask's rows
  // The forward's tile list for this 64-row tile: its mask block row, its own key reach.
  const fwd::KvTileList tiles = fwd::make_tile_list<BN>(p, qt.b, qt.h, qt.q0 / p.block_q, qt.kv_limit);
  Elem* sq = reinterpret_cast<Elem*>(smem_raw);
  Elem* sdo = sq + T::TILE;
  Elem* skv = sdo + T::TILE;  // the forward's ring: stage s holds K at skv + 2 s KV_ELEMS, V after it
  const int tid = int(threadIdx.x), lane = tid & 31, warp_row = (tid >> 5) * 16;
  const fwd::QkvRows<T> g(p, qt);
  const Elem* dog = static_cast<const Elem*>(p.dout) + (g.q - static_cast<const Elem*>(p.q));
  fwd::load_tile<T, BM>(sq, g.q, g.ldq, qt.q_rows, g.safe, tid);
  fwd::load_tile<T, BM>(sdo, dog, g.ldq, qt.q_rows, g.safe, tid);
  // This thread's two rows: LSE (log2) and D_i.
  float lse2[2], dl[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp_row + (lane >> 2) + r * 8;
    lse2[r] = INFINITY, dl[r] = 0.f;
    if (row < qt.q_rows && !T::SILU) {
      const int64_t ix = fwd::lse_index(p, qt.b, qt.h, qt.q_start, qt.q0 + row);
      lse2[r] = lse_log2(p.lse[ix]);
      dl[r] = p.delta[ix];
    }
  }
  float dq[1][DT][4];
  fwd::zero<T>(dq);
  const float scale_log2 = p.scale * LOG2E;
#pragma unroll
  for (int s = 0; s < T::STAGES - 1; ++s) {
    if (s < tiles.count) g.load_kv(skv, s, tiles.tile(s), qt.len_k, tid);
    fwd::cp_async_commit();
  }
  for (int t = 0; t < tiles.count; ++t) {
    const int tn = t + T::STAGES - 1;
    if (tn < tiles.count) g.load_kv(skv, tn % T::STAGES, tiles.tile(tn), qt.len_k, tid);
    fwd::cp_async_commit();
    fwd::cp_async_wait<T::STAGES - 1>();
    __syncthreads();
    const Elem* sk = skv + (2 * (t % T::STAGES)) * T::KV_ELEMS;
    const Elem* sv = sk + T::KV_ELEMS;
    const int k0 = tiles.tile(t) * BN;
    float s[1][NT][4], dp[1][NT][4];
    fwd::MmaMainLoop<T>::qk(sq, sk, warp_row, lane, s);    // S = Q K^T
    fwd::MmaMainLoop<T>::qk(sdo, sv, warp_row, lane, dp);  // dP = dO V^T
    const bool need_mask = qt.tm.needed(qt.q0, k0, BN);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int q = qt.q0 + warp_row + (lane >> 2) + r * 8;
        const int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
        const bool vis = !need_mask || qt.tm.visible(q, k);
        float prob, ds;
        pair_grad<T::SILU>(s[0][nt][e], dp[0][nt][e], lse2[r], dl[r], p, scale_log2, prob, ds);
        s[0][nt][e] = vis ? ds : 0.f;
      }
    fwd::MmaMainLoop<T>::pv(s, sk, lane, dq);  // dQ += dS K
    __syncthreads();
  }
  fwd::cp_async_wait<0>();
  const int64_t row0 = (int64_t(qt.q_start) + qt.q0) * p.heads_q + qt.h;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp_row + (lane >> 2) + r * 8;
    if (row >= qt.q_rows) continue;
    const int64_t at = (row0 + int64_t(row) * p.heads_q) * T::D + ((lane & 3) << 1);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
      store_grad2<Elem>(p.dq, at + dt * 8, dq[0][dt][2 * r] * p.scale, dq[0][dt][2 * r + 1] * p.scale, p.grads16);
  }
}

}  // namespace bsattn::cuda::bwd
