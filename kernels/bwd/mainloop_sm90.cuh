// The Hopper (sm_90a) dK/dV loop of the backward family, sm90: warp-specialized CTAs with wgmma and
// TMA loads, one CTA per (KV tile of 128 keys, KV head, sequence), as the sm80 loop's grid.
//
// Roles. Three warpgroups:
//   producer   warp 8 (warpgroup 2 gives its registers to the others): K and V of the CTA's tile by TMA
//              once, then for each query head of the GQA group the query tiles (64 rows) that keep the
//              tile's key block (block.cuh, the column form): Q and dO by TMA into a 3-stage ring, and the
//              rows' LSE (log2 domain) and D_i written by the warp's lanes beside them.
//   consumers  warpgroups 0 and 1, 64 keys each (wgmma's M). Per query tile, with keys as rows:
//              S^T = K Q^T and dP^T = V dO^T (wgmma, both operands in shared memory, K-major), then
//              P^T = exp2(scale S^T - LSE) and dS^T = P^T (dP^T - D_i) in registers (SiLU: P = SiLU(x)/n,
//              dS = dP SiLU'(x)/n), masked only on tiles that cross the causal frontier or a sequence end;
//              dV += P^T dO and dK += dS^T Q (A from registers, B = dO / Q read MN-major by the
//              descriptor). Atomic mode: dS^T also goes to shared memory (16-bit, [keys][queries], two
//              buffers by step parity) and dQ[64 x D] = dS K is computed by wgmma with both operands
//              MN-major into a 64 x 64 fp32 block per warpgroup, staged in shared memory. At D = 128 the
//              two warpgroups exchange dS^T (named barrier 1) and each takes 64 of dQ's columns over all
//              128 keys; at D = 64 each takes all columns over its own 64 keys (no exchange).
//   dQ writer  one lane of warp 9 (atomic mode): adds each staged dQ block to the fp32 accumulator by one
//              TMA reduction, off the consumers' path.
//   The GQA group's heads are summed in registers, so dK and dV need no atomics.
// The roles meet at mbarriers: kv_full (K and V landed), full / empty per ring stage, dq_full / dq_empty
// per consumer warpgroup. Shared-memory tiles
// are D/64 column blocks of [rows][64 elements] in the canonical 128B-swizzle layout, 1024-byte aligned,
// as the forward's sm90-ws. Deterministic mode runs this loop without dQ, then the sm80 dQ pass.
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/bwd/block.cuh"
#include "kernels/bwd/mainloop_sm80.cuh"  // pair_grad, lse_log2
#include "kernels/bwd_params.h"
#include "kernels/fwd/epilogue.cuh"       // lse_index
#include "kernels/fwd/mainloop_sm90.cuh"  // encode_map
#include "kernels/fwd/ptx.cuh"

namespace bsattn::cuda::bwd {

// sm90: BM = 64 query rows per step (wgmma's N for S^T and its K for dV, dK), BN = 128 keys per CTA
// (two consumer warpgroups of 64), a 3-stage Q/dO ring (2 stages were 3-8% slower at D = 64; at D = 128
// the third stage just fits in shared memory). Registers per consumer thread at D = 128: dK and dV 64
// each, S^T and dP^T 32 each (dQ reuses theirs), P^T and dS^T as 16-bit A fragments 16 each.
template <class Elem_, int D_, bool SILU_>
struct BwdSm90Config {
  using Elem = Elem_;
  static constexpr int D = D_, BM = 64, BN = 128, STAGES = 3;
  static constexpr bool SILU = SILU_;
  static constexpr int WARPGROUPS = 2, NWARPS = 8, THREADS = 384;  // + the producer warpgroup
  static constexpr uint32_t KV_BYTES = BN * D * 2;  // K or V
  static constexpr uint32_t QT_BYTES = BM * D * 2;  // Q or dO of one stage
  static constexpr uint32_t DS_BYTES = BN * BM * 2; // dS^T of one step
  static constexpr uint32_t ROW_BYTES = 2 * BM * 4; // a stage's LSE (log2) and D_i
  static constexpr uint32_t DQ_BYTES = BM * 64 * 4; // one consumer warpgroup's fp32 dQ block [64][64]
  static constexpr int SMEM_LAUNCH = int(2 * KV_BYTES + STAGES * 2 * QT_BYTES + 2 * DS_BYTES + 2 * DQ_BYTES +
                                         STAGES * ROW_BYTES) + 1024 + 8 * (1 + 2 * STAGES + 4);
  static_assert(D == 64 || D == 128, "wgmma N = D for dV and dK");
  static_assert(SMEM_LAUNCH <= 227 * 1024, "shared memory per CTA");
};

template <class T>
struct BwdSm90Smem {
  uint32_t base;
  __device__ __forceinline__ explicit BwdSm90Smem(uint32_t base_1024) : base(base_1024) {}
  __device__ __forceinline__ uint32_t k() const { return base; }
  __device__ __forceinline__ uint32_t v() const { return base + T::KV_BYTES; }
  __device__ __forceinline__ uint32_t q(int s) const { return base + 2 * T::KV_BYTES + 2 * s * T::QT_BYTES; }
  __device__ __forceinline__ uint32_t dout(int s) const { return q(s) + T::QT_BYTES; }
  __device__ __forceinline__ uint32_t ds(int b) const {
    return base + 2 * T::KV_BYTES + 2 * T::STAGES * T::QT_BYTES + b * T::DS_BYTES;
  }
  __device__ __forceinline__ uint32_t dq(int wg) const { return ds(2) + wg * T::DQ_BYTES; }
  __device__ __forceinline__ uint32_t rows(int s) const { return dq(2) + s * T::ROW_BYTES; }
  __device__ __forceinline__ uint32_t bars() const { return rows(T::STAGES); }
  __device__ __forceinline__ uint32_t kv_full() const { return bars(); }
  __device__ __forceinline__ uint32_t full(int s) const { return bars() + 8 + 8 * s; }
  __device__ __forceinline__ uint32_t empty(int s) const { return bars() + 8 + 8 * T::STAGES + 8 * s; }
  __device__ __forceinline__ uint32_t dq_full(int wg) const { return bars() + 8 + 16 * T::STAGES + 8 * wg; }
  __device__ __forceinline__ uint32_t dq_empty(int wg) const { return bars() + 24 + 16 * T::STAGES + 8 * wg; }
};

// The launch's parameters: tensor maps over [rows][heads * D] (128B swizzle; boxes of 64 elements x 128
// rows for K and V, x 64 rows for Q and dO; the fp32 dQ accumulator 128B-swizzled in boxes of 32 x 64) and
// the plain parameters.
struct BwdSm90Params {
  CUtensorMap q, k, v, dout, dq;
  BwdParams p;
};

// The CTA's steps, in the order all three roles take them: for each query head h of the KV head's GQA
// group, the 64-row query tiles that keep the tile's key block (block.cuh, the column form); f(n, h, q0)
// with n counting the steps over the heads.
template <int BM, class F>
__device__ __forceinline__ void for_each_step(const BwdParams& p, const KvTile& kv, F&& f) {
  const int group = p.heads_q / p.heads_kv;
  int n = 0;
  for (int h = kv.hk * group; h < (kv.hk + 1) * group; ++h) {
    const QTileList ql = make_q_tile_list<BM>(p, kv.b, h, kv.j, kv.t_lo, kv.t_hi);
    for (int t = 0; t < ql.count; ++t, ++n) f(n, h, ql.tile(t) * BM);
  }
}

// Producer warp: K and V once, then Q, dO and the row values of each query tile the CTA visits.
template <class T>
__device__ __forceinline__ void bwd_produce(const BwdSm90Params& tp, const BwdSm90Smem<T>& L, const KvTile& kv,
                                            unsigned char* smem_generic, uint32_t smem_base, int lane) {
  const BwdParams& p = tp.p;
  constexpr int BM = T::BM, D = T::D, S = T::STAGES;
  if (lane == 0) {
    fwd::mbar_expect_tx(L.kv_full(), 2 * T::KV_BYTES);
#pragma unroll
    for (int cb = 0; cb < D / 64; ++cb) {
      fwd::tma_load_2d(L.k() + cb * (T::BN * 128), &tp.k, kv.hk * D + cb * 64, kv.k_start + kv.k0, L.kv_full());
      fwd::tma_load_2d(L.v() + cb * (T::BN * 128), &tp.v, kv.hk * D + cb * 64, kv.k_start + kv.k0, L.kv_full());
    }
  }
  for_each_step<BM>(p, kv, [&](int n, int h, int q0) {
    const int s = n % S;
    if (n >= S) fwd::mbar_wait(L.empty(s), ((n / S) - 1) & 1);
    float* rows = reinterpret_cast<float*>(smem_generic + (L.rows(s) - smem_base));
    for (int r = lane; r < BM; r += 32) {
      float l2 = INFINITY, dl = 0.f;  // past the sequence: P = 0
      if (!T::SILU && q0 + r < kv.len_q) {
        const int64_t ix = fwd::lse_index(p, kv.b, h, kv.q_start, q0 + r);
        l2 = lse_log2(p.lse[ix]);
        dl = p.delta[ix];
      }
      rows[r] = l2;
      rows[BM + r] = dl;
    }
    // Each lane's arrive (release) publishes its own row values; lane 0's also expects the TMA bytes. The
    // stage is full once all 32 lanes have arrived and Q and dO have landed.
    if (lane != 0) {
      fwd::mbar_arrive(L.full(s));
    } else {
      fwd::mbar_expect_tx(L.full(s), 2 * T::QT_BYTES);
#pragma unroll
      for (int cb = 0; cb < D / 64; ++cb) {
        fwd::tma_load_2d(L.q(s) + cb * (BM * 128), &tp.q, h * D + cb * 64, kv.q_start + q0, L.full(s));
        fwd::tma_load_2d(L.dout(s) + cb * (BM * 128), &tp.dout, h * D + cb * 64, kv.q_start + q0, L.full(s));
      }
    }
  });
}

// dQ writer (one lane of warp 9, atomic mode): per step, each consumer warpgroup's fp32 dQ block is added
// to the accumulator by two TMA reductions of 32 columns each (at D = 128 the two blocks are the tile's
// two column halves, at D = 64 two partial sums of the same columns); the block's buffer is free again
// once the reductions have read it.
template <class T>
__device__ __forceinline__ void bwd_write_dq(const BwdSm90Params& tp, const BwdSm90Smem<T>& L, const KvTile& kv) {
  const BwdParams& p = tp.p;
  constexpr int BM = T::BM, D = T::D;
  for_each_step<BM>(p, kv, [&](int n, int h, int q0) {
#pragma unroll
    for (int wg = 0; wg < 2; ++wg) {
      fwd::mbar_wait(L.dq_full(wg), n & 1);
#pragma unroll
      for (int b = 0; b < 2; ++b)
        fwd::tma_reduce_add_2d(&tp.dq, L.dq(wg) + b * (BM * 128), h * D + (D == 128 ? wg * 64 : 0) + b * 32,
                               kv.q_start + q0);
      fwd::bulk_commit();
    }
#pragma unroll
    for (int wg = 0; wg < 2; ++wg) {
      fwd::bulk_wait_read();  // (both: wait_group.read 0)
      fwd::mbar_arrive(L.dq_empty(wg));
    }
  });
  fwd::bulk_wait_all();  // the reductions are done before the CTA ends
}

// P^T or dS^T (a warp's S^T-shaped accumulator, 16 rows x 64 query columns) as four 16-bit A fragments
// of k16 steps over the queries: the accumulator of n8 tiles 2kk and 2kk+1 is the A fragment of step kk.
template <class Elem>
__device__ __forceinline__ void pack_a(const float (&x)[8][4], uint32_t (&a)[4][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    a[kk][0] = fwd::Mma<Elem>::pack(x[2 * kk][0], x[2 * kk][1]);
    a[kk][1] = fwd::Mma<Elem>::pack(x[2 * kk][2], x[2 * kk][3]);
    a[kk][2] = fwd::Mma<Elem>::pack(x[2 * kk + 1][0], x[2 * kk + 1][1]);
    a[kk][3] = fwd::Mma<Elem>::pack(x[2 * kk + 1][2], x[2 * kk + 1][3]);
  }
}

// Consumer warpgroup wg: keys kv.k0 + 64 wg .. + 64 of the tile.
template <class T, bool DQ_ATOMIC>
__device__ __forceinline__ void bwd_consume(const BwdSm90Params& tp, const BwdSm90Smem<T>& L, const KvTile& kv,
                                            const unsigned char* smem_generic, uint32_t smem_base, int wg,
                                            int warp, int lane) {
  using Elem = typename T::Elem;
  const BwdParams& p = tp.p;
  constexpr int BM = T::BM, BN = T::BN, D = T::D, DT = D / 8, S = T::STAGES;
  const int wrow = (warp & 3) * 16;  // this warp's 16 keys within the warpgroup's 64
  const int kw0 = kv.k0 + wg * 64;   // the warpgroup's first key
  const uint32_t sk_wg = L.k() + wg * 64 * 128, sv_wg = L.v() + wg * 64 * 128;
  const float scale_log2 = p.scale * LOG2E;
  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[i][e] = 0.f, dv[i][e] = 0.f;

  fwd::mbar_wait(L.kv_full(), 0);
  for_each_step<BM>(p, kv, [&](int n, int, int q0) {
    const int s = n % S;
    fwd::mbar_wait(L.full(s), (n / S) & 1);
    float sacc[8][4], dpacc[8][4];
    fwd::wg_fence();
#pragma unroll
    for (int kt = 0; kt < D / 16; ++kt) {
      const uint32_t off_k = (kt >> 2) * (BN * 128) + (kt & 3) * 32, off_q = (kt >> 2) * (BM * 128) + (kt & 3) * 32;
      fwd::Wgmma<Elem, 64>::ss(sacc, fwd::wg_desc(sk_wg + off_k, 16, 1024), fwd::wg_desc(L.q(s) + off_q, 16, 1024), kt > 0);
    }
    fwd::wg_commit();
#pragma unroll
    for (int kt = 0; kt < D / 16; ++kt) {
      const uint32_t off_k = (kt >> 2) * (BN * 128) + (kt & 3) * 32, off_q = (kt >> 2) * (BM * 128) + (kt & 3) * 32;
      fwd::Wgmma<Elem, 64>::ss(dpacc, fwd::wg_desc(sv_wg + off_k, 16, 1024), fwd::wg_desc(L.dout(s) + off_q, 16, 1024), kt > 0);
    }
    fwd::wg_commit();
    // The row values (LSE, D_i) of this thread's 16 query columns j * 8 + 2 (lane % 4) + c are read
    // from shared memory per n8 tile below.
    const float* rows = reinterpret_cast<const float*>(smem_generic + (L.rows(s) - smem_base));
    const bool need_mask = kv.tm.needed(q0, kw0, 64) || q0 + BM > kv.len_q;
    fwd::wg_wait<1>();  // S^T
    fwd::fence_regs(sacc);
    fwd::wg_wait<0>();  // dP^T
    fwd::fence_regs(dpacc);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 l2 = *reinterpret_cast<const float2*>(rows + j * 8 + ((lane & 3) << 1));
      const float2 dl = *reinterpret_cast<const float2*>(rows + BM + j * 8 + ((lane & 3) << 1));
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qc = j * 8 + ((lane & 3) << 1) + (e & 1);
        const int key = kw0 + wrow + (lane >> 2) + ((e >> 1) << 3);
        const bool vis = !need_mask || (q0 + qc < kv.len_q && kv.tm.visible(q0 + qc, key));
        float prob, ds;
        pair_grad<T::SILU>(sacc[j][e], dpacc[j][e], (e & 1) ? l2.y : l2.x, (e & 1) ? dl.y : dl.x, p, scale_log2,
                           prob, ds);
        sacc[j][e] = vis ? prob : 0.f;
        dpacc[j][e] = vis ? ds : 0.f;
      }
    }
    uint32_t pa[4][4], da[4][4];
    pack_a<Elem>(sacc, pa);
    pack_a<Elem>(dpacc, da);
    if constexpr (DQ_ATOMIC) {
      // dS^T as 16-bit [keys][queries] (one 128-byte row per key, swizzled) into buffer n % 2.
      unsigned char* sds = const_cast<unsigned char*>(smem_generic) + (L.ds(n & 1) - smem_base);
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int key = wg * 64 + wrow + (lane >> 2) + r * 8;
          const int chunk = j ^ (key & 7);
          *reinterpret_cast<uint32_t*>(sds + key * 128 + chunk * 16 + (lane & 3) * 4) = da[j >> 1][(j & 1) * 2 + r];
        }
      fwd::fence_proxy_async_smem();  // visible to wgmma (the async proxy)
    }
    fwd::wg_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      fwd::Wgmma<Elem, D>::rs_mn(dv, pa[kk], fwd::wg_desc(L.dout(s) + kk * 2048, BM * 128, 1024));
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      fwd::Wgmma<Elem, D>::rs_mn(dk, da[kk], fwd::wg_desc(L.q(s) + kk * 2048, BM * 128, 1024));
    fwd::wg_commit();
    if constexpr (DQ_ATOMIC) {
      float dq[8][4];
      if constexpr (D == 128) {
        fwd::named_bar_sync(1, 256);  // both warpgroups' dS^T are in the buffer
#pragma unroll
        for (int j = 0; j < BN / 16; ++j)
          fwd::WgmmaMn64<Elem>::ss(dq, fwd::wg_desc(L.ds(n & 1) + j * 2048, BN * 128, 1024),
                                   fwd::wg_desc(L.k() + wg * (BN * 128) + j * 2048, BN * 128, 1024), j > 0);
      } else {
        fwd::named_bar_sync(2 + wg, 128);  // this warpgroup's dS^T is in the buffer
#pragma unroll
        for (int j = 0; j < 4; ++j)
          fwd::WgmmaMn64<Elem>::ss(dq, fwd::wg_desc(L.ds(n & 1) + wg * 64 * 128 + j * 2048, BN * 128, 1024),
                                   fwd::wg_desc(L.k() + wg * 64 * 128 + j * 2048, BN * 128, 1024), j > 0);
      }
      fwd::wg_commit();
      fwd::wg_wait<0>();
      fwd::fence_regs(dv);
      fwd::fence_regs(dk);
      fwd::fence_regs(dq);
      fwd::fence_regs(pa);
      fwd::fence_regs(da);
      fwd::mbar_arrive(L.empty(s));  // each thread's reads of the stage done (release)
      // The dQ block to this warpgroup's buffer (two [64 rows][32 fp32] boxes, 128-byte rows swizzled as the
      // reduction's map says: each warp's float2 stores take two wavefronts, not eight) once
      // the writer has sent the previous one; rows past the sequence hold zeros (dS is 0 there).
      if (n > 0) fwd::mbar_wait(L.dq_empty(wg), (n - 1) & 1);
      float* sdq = reinterpret_cast<float*>(const_cast<unsigned char*>(smem_generic) + (L.dq(wg) - smem_base));
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = wrow + (lane >> 2) + r * 8;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int chunk = (((j & 3) << 1) | ((lane & 3) >> 1)) ^ (row & 7);
          *reinterpret_cast<float2*>(sdq + (j >> 2) * (BM * 32) + row * 32 + chunk * 4 + ((lane & 1) << 1)) =
              make_float2(dq[j][2 * r], dq[j][2 * r + 1]);
        }
      }
      fwd::fence_proxy_async_smem();  // visible to the reduction (the async proxy)
      __syncwarp();
      if (lane == 0) fwd::mbar_arrive(L.dq_full(wg));
    } else {
      fwd::wg_wait<0>();
      fwd::fence_regs(dv);
      fwd::fence_regs(dk);
      fwd::fence_regs(pa);
      fwd::fence_regs(da);
      fwd::mbar_arrive(L.empty(s));  // each thread's reads of the stage done (release)
    }
  });
  // dK (times scale: dS is the gradient of the scaled score) and dV (fp32 or 16-bit), keys that exist.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = kw0 + wrow + (lane >> 2) + r * 8;
    if (key >= kv.len_k) continue;
    const int64_t row = (int64_t(kv.k_start) + key) * p.heads_kv + kv.hk;
    const int64_t at = row * D + ((lane & 3) << 1);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      store_grad2<Elem>(p.dk, at + dt * 8, dk[dt][2 * r] * p.scale, dk[dt][2 * r + 1] * p.scale, p.grads16);
      store_grad2<Elem>(p.dv, at + dt * 8, dv[dt][2 * r], dv[dt][2 * r + 1], p.grads16);
    }
  }
}

template <class T, bool DQ_ATOMIC>
__global__ void __launch_bounds__(T::THREADS, 1) bwd_sm90_kernel(const __grid_constant__ BwdSm90Params tp) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) unsigned char smem_bwd90[];
  const uint32_t raw = fwd::smem_u32(smem_bwd90);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const BwdSm90Smem<T> L(base);
  unsigned char* gen = smem_bwd90 + (base - raw);  // generic pointer of `base`
  const KvTile kv = kv_tile<T::BM, T::BN>(tp.p, blockIdx.z, blockIdx.y, blockIdx.x);
  if (!kv.live()) return;  // varlen: this sequence has fewer keys than the longest (whole CTA)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  if (tid == 0) {
    fwd::mbar_init(L.kv_full(), 1);
    for (int s = 0; s < T::STAGES; ++s) fwd::mbar_init(L.full(s), 32), fwd::mbar_init(L.empty(s), 32 * T::NWARPS);
    for (int wg = 0; wg < 2; ++wg) fwd::mbar_init(L.dq_full(wg), 4), fwd::mbar_init(L.dq_empty(wg), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fwd::fence_proxy_async_smem();
  }
  __syncthreads();
  if (wg == T::WARPGROUPS) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp == T::NWARPS) bwd_produce<T>(tp, L, kv, gen, base, lane);
    if (DQ_ATOMIC && warp == T::NWARPS + 1 && lane == 0) bwd_write_dq<T>(tp, L, kv);
    return;
  }
  // consumers: 128 x 24 + 256 x 240 = 64512 of the SM's 65536 registers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  bwd_consume<T, DQ_ATOMIC>(tp, L, kv, gen, base, wg, warp, lane);
#else
  __trap();  // built for another architecture: the host launches this kernel on sm_90 only
#endif
}

template <class T>
BwdSm90Params make_bwd_sm90_params(const BwdParams& p) {
  BwdSm90Params tp;
  constexpr bool bf16 = std::is_same_v<typename T::Elem, __nv_bfloat16>;
  const int64_t tq = p.total_q ? p.total_q : int64_t(p.batch) * p.q_len;
  const int64_t tk = p.total_k ? p.total_k : int64_t(p.batch) * p.kv_len;
  fwd::encode_map(&tp.q, bf16, p.q, tq, int64_t(p.heads_q) * T::D, T::BM);
  fwd::encode_map(&tp.dout, bf16, p.dout, tq, int64_t(p.heads_q) * T::D, T::BM);
  fwd::encode_map(&tp.k, bf16, p.k, tk, int64_t(p.heads_kv) * T::D, T::BN);
  fwd::encode_map(&tp.v, bf16, p.v, tk, int64_t(p.heads_kv) * T::D, T::BN);
  if (p.dq_accum)
    fwd::encode_map_2d(&tp.dq, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, p.dq_accum, tq, int64_t(p.heads_q) * T::D, 32, 64,
                       CU_TENSOR_MAP_SWIZZLE_128B);
  tp.p = p;
  return tp;
}

}  // namespace bsattn::cuda::bwd
