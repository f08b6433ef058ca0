// The sm_80 main loops of the forward family (FlashAttention-2 style: mma.sync m16n8k16, ldmatrix,
// cp.async into a 2-stage K/V ring). One CTA owns one query tile of BM = block_q rows of one (batch,
// head) and walks its KV tile list; S x S is never materialized.
//   sm80          softmax, block_q 128: 4 warps x 32 rows, BN 64. One __syncthreads per KV tile (the
//                 next tile's cp.async goes out after it, into the stage every warp finished reading);
//                 the KV tile ids of tiles t and t+1 live in registers and the id of t+2 is read one
//                 iteration before its copies need it (sparse rows: a global read of the CSR row);
//                 raw scores (masking only on boundary tiles, scale * log2(e) folded into one FFMA
//                 before ex2.approx); lazy rescale of O; P packed to 16 bits before P V; Q K^T's
//                 ldmatrix addresses as lane base ^ step. Needs scale > 0 (the row max is taken on raw
//                 scores). The default on GPUs other than sm_90.
//   sm80-general  any block_q (64, 128), softmax with any scale or SiLU (HSTU, with or without its
//                 relative attention bias, kernels/fwd/bias.cuh): 16 rows per warp, BN 64, scores
//                 scaled before the max, two barriers per tile.
// (Each step's measured effect: results/kernel-history.md.)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/fwd/bias.cuh"
#include "kernels/fwd/block.cuh"
#include "kernels/fwd/epilogue.cuh"
#include "kernels/fwd/mask.cuh"
#include "kernels/fwd/ptx.cuh"
#include "kernels/fwd/softmax.cuh"
#include "kernels/fwd_params.h"

namespace bsattn::cuda::fwd {

// The tile shape of a main loop and the fragment counts it implies: BM query rows per CTA (the mask's
// block_q), BN keys per step (divides block_kv), NWARPS warps, a STAGES-deep K/V ring.
template <typename Elem_, int D_, int BM_, int BN_, int NWARPS_, int STAGES_, bool SILU_, bool BIAS_ = false>
struct TileShape {
  using Elem = Elem_;
  static constexpr int D = D_;
  static constexpr int BM = BM_;
  static constexpr int BN = BN_;
  static constexpr int NWARPS = NWARPS_;
  static constexpr int STAGES = STAGES_;
  static constexpr bool SILU = SILU_;
  static constexpr bool BIAS = BIAS_;  // HSTU's relative attention bias (FwdParams::rab), SiLU only
  static constexpr int THREADS = NWARPS * 32;
  static constexpr int MT = BM / (16 * NWARPS);  // m16 tiles per warp (rows per warp / 16)
  static constexpr int NT = BN / 8;              // n8 tiles of S per warp
  static constexpr int KT = D / 16;              // k16 steps of Q K^T
  static constexpr int DT = D / 8;               // n8 tiles of O per warp
  static constexpr int CHUNKS = D / 8;           // 16-byte chunks per smem row
  static constexpr int Q_ELEMS = BM * D;
  static constexpr int KV_ELEMS = BN * D;
  static constexpr int SMEM_BYTES = (Q_ELEMS + STAGES * 2 * KV_ELEMS) * 2;
  static constexpr int SMEM_LAUNCH = SMEM_BYTES;  // dynamic shared memory asked at launch
  // Two CTAs per SM when registers and shared memory allow it (latency hiding across CTAs); with the
  // bias, whose per-pair work would spill within 128 registers, one.
  static constexpr int MIN_BLOCKS = (THREADS <= 128 || SMEM_BYTES > 110 * 1024 || BIAS) ? 1 : 2;
  static_assert(sizeof(Elem) == 2, "16-bit inputs only");
  static_assert(D % 64 == 0, "swizzle works on 8 chunks of 16 bytes: D must be a multiple of 64");
  static_assert(BM % (16 * NWARPS) == 0, "each warp owns whole m16 tiles");
  static_assert(BN % 16 == 0 && NT % 2 == 0, "ldmatrix.x4 loads K in pairs of n8 tiles");
  static_assert(DT % 2 == 0, "ldmatrix.x4.trans loads V in pairs of n8 tiles");
  static_assert(STAGES >= 2, "double buffering at least");
  static_assert(!BIAS || SILU, "the relative attention bias is HSTU's: SiLU scores only");
};

// sm80: 4 warps of 32 rows each share every K/V fragment between two m16 tiles (half the shared-memory
// traffic per FLOP of 16-row warps); BN 64 keeps the 255 registers free of spills; 2 stages (the tile-id
// prefetch ring is written for 2).
template <class Elem, int D>
struct Sm80Config : TileShape<Elem, D, /*BM=*/128, /*BN=*/64, /*NWARPS=*/4, /*STAGES=*/2, /*SILU=*/false> {
  static constexpr bool RAW_SCORES = true;  // the row max on raw scores: needs scale > 0
};

// sm80-general: 16 rows per warp (BM / 16 warps), BN 64, 2 stages, for block_q 64 and 128.
template <class Elem, int D, int BM, bool SILU, bool BIAS = false>
struct Sm80GeneralConfig : TileShape<Elem, D, BM, /*BN=*/64, /*NWARPS=*/BM / 16, /*STAGES=*/2, SILU, BIAS> {
  static constexpr bool RAW_SCORES = false;
};

// Shared-memory tile [rows][D] in 16-byte chunks, chunk index XOR (row % 8): ldmatrix reads of 8 rows
// at one logical chunk and cp.async writes of one row both hit 8 distinct bank groups.
template <int D>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// Global [rows][D] (row stride ld elements) -> swizzled smem; rows >= nvalid are zero-filled.
template <class T, int ROWS>
__device__ __forceinline__ void load_tile(typename T::Elem* smem, const typename T::Elem* g, int64_t ld,
                                          int nvalid, const typename T::Elem* safe, int tid) {
#pragma unroll
  for (int idx = tid; idx < ROWS * T::CHUNKS; idx += T::THREADS) {
    int r = idx / T::CHUNKS, c = idx % T::CHUNKS;
    bool ok = r < nvalid;
    cp_async_16(smem + swz<T::D>(r, c), ok ? g + int64_t(r) * ld + c * 8 : safe, ok);
  }
}

// Where one query tile's operands live in global memory: its Q rows, and K / V of its KV head from the
// start of its sequence (row strides ldq, ldk in elements). `safe` is a valid address that zero-filled
// copies name.
template <class T>
struct QkvRows {
  using Elem = typename T::Elem;
  int64_t ldq, ldk;
  const Elem *q, *k, *v, *safe;
  __device__ __forceinline__ QkvRows(const FwdParams& p, const QueryTile& qt)
      : ldq(int64_t(p.heads_q) * T::D), ldk(int64_t(p.heads_kv) * T::D) {
    q = static_cast<const Elem*>(p.q) + (int64_t(qt.q_start) + qt.q0) * ldq + int64_t(qt.h) * T::D;
    k = static_cast<const Elem*>(p.k) + int64_t(qt.k_start) * ldk + int64_t(qt.hk) * T::D;
    v = static_cast<const Elem*>(p.v) + int64_t(qt.k_start) * ldk + int64_t(qt.hk) * T::D;
    safe = static_cast<const Elem*>(p.q);
  }
  // K and V of KV tile `kv_tile` into ring stage `stage` (K, then V); keys past len_k are zero-filled.
  __device__ __forceinline__ void load_kv(Elem* skv, int stage, int kv_tile, int len_k, int tid) const {
    const int k0 = kv_tile * T::BN;
    const int rows = min(T::BN, len_k - k0);
    load_tile<T, T::BN>(skv + (2 * stage) * T::KV_ELEMS, k + int64_t(k0) * ldk, ldk, rows, safe, tid);
    load_tile<T, T::BN>(skv + (2 * stage + 1) * T::KV_ELEMS, v + int64_t(k0) * ldk, ldk, rows, safe, tid);
  }
};

template <class T>
__device__ __forceinline__ void zero(float (&o)[T::MT][T::DT][4]) {
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
}

// The tensor-core steps of sm80-general on swizzled shared-memory tiles and register fragments.
template <class T>
struct MmaMainLoop {
  using Elem = typename T::Elem;
  // S[mt][nt] = Q[warp rows] . K[tile]^T
  __device__ __forceinline__ static void qk(const Elem* sq, const Elem* sk, int warp_row, int lane,
                                            float (&s)[T::MT][T::NT][4]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kt = 0; kt < T::KT; ++kt) {
      uint32_t a[T::MT][4];
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt)
        ldmatrix_x4(a[mt], sq + swz<T::D>(warp_row + mt * 16 + (lane & 15), kt * 2 + (lane >> 4)));
#pragma unroll
      for (int n2 = 0; n2 < T::NT / 2; ++n2) {
        uint32_t b[4];
        ldmatrix_x4(b, sk + swz<T::D>(n2 * 16 + ((lane >> 4) << 3) + (lane & 7), kt * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int mt = 0; mt < T::MT; ++mt) {
          Mma<Elem>::run(s[mt][2 * n2], a[mt], b[0], b[1]);
          Mma<Elem>::run(s[mt][2 * n2 + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }
  // O[mt] += P[mt] . V[tile]; P comes straight from the S accumulators (C layout == A layout).
  __device__ __forceinline__ static void pv(const float (&p)[T::MT][T::NT][4], const Elem* sv, int lane,
                                            float (&o)[T::MT][T::DT][4]) {
#pragma unroll
    for (int j = 0; j < T::BN / 16; ++j) {
      uint32_t a[T::MT][4];
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt) {
        a[mt][0] = Mma<Elem>::pack(p[mt][2 * j][0], p[mt][2 * j][1]);
        a[mt][1] = Mma<Elem>::pack(p[mt][2 * j][2], p[mt][2 * j][3]);
        a[mt][2] = Mma<Elem>::pack(p[mt][2 * j + 1][0], p[mt][2 * j + 1][1]);
        a[mt][3] = Mma<Elem>::pack(p[mt][2 * j + 1][2], p[mt][2 * j + 1][3]);
      }
#pragma unroll
      for (int d2 = 0; d2 < T::DT / 2; ++d2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sv + swz<T::D>(j * 16 + (((lane >> 3) & 1) << 3) + (lane & 7), d2 * 2 + (lane >> 4)));
#pragma unroll
        for (int mt = 0; mt < T::MT; ++mt) {
          Mma<Elem>::run(o[mt][2 * d2], a[mt], b[0], b[1]);
          Mma<Elem>::run(o[mt][2 * d2 + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }
};

// sm80: Q K^T's ldmatrix addresses as 32-bit shared addresses. Every ldmatrix row r of the swizzled
// tile reads logical chunk 2*step + c (c = 0/1 per lane), stored at chunk (2*step + c) ^ (r & 7); since
// bit 0 of 2*step is 0 that is 2*step ^ (c ^ (r & 7)), so the byte offset is (step << 5) ^ x with a
// per-lane x = (c ^ (r & 7)) << 4, and the rows of the other m16 / n16 blocks are immediates (Q K^T
// only). The kernel hides the lane bases from loop-invariant motion (an empty asm volatile per tile), so
// the per-k-step XORs are redone each tile rather than kept in registers.
struct LaneAddr {
  uint32_t q;   // shared address of this lane's Q row (warp_row + lane % 16), chunk 0
  uint32_t k;   // byte offset of this lane's K row in a K tile (row (lane / 16) * 8 + lane % 8)
  uint32_t xqv; // ((lane / 16) ^ (lane % 8)) << 4: Q chunk bits
  uint32_t xk;  // (((lane / 8) % 2) ^ (lane % 8)) << 4
};
template <class T>
__device__ __forceinline__ LaneAddr lane_addr(const typename T::Elem* sq, int warp_row, int lane) {
  constexpr int RB = T::D * 2;  // bytes per smem row
  LaneAddr a;
  a.q = smem_u32(sq) + (warp_row + (lane & 15)) * RB;
  a.k = (((lane >> 4) << 3) + (lane & 7)) * RB;
  a.xqv = ((lane >> 4) ^ (lane & 7)) << 4;
  a.xk = (((lane >> 3) & 1) ^ (lane & 7)) << 4;
  return a;
}
template <class T>
__device__ __forceinline__ void qk_xor(const LaneAddr& la, uint32_t sk, float (&s)[T::MT][T::NT][4]) {
  using Elem = typename T::Elem;
  constexpr int RB = T::D * 2;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
  const uint32_t kb = sk + la.k;
#pragma unroll
  for (int kt = 0; kt < T::KT; ++kt) {
    const uint32_t qa = la.q + ((kt << 5) ^ la.xqv), ka = kb + ((kt << 5) ^ la.xk);
    uint32_t a[T::MT][4];
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt) ldmatrix_x4_a(a[mt], qa + mt * 16 * RB);
#pragma unroll
    for (int n2 = 0; n2 < T::NT / 2; ++n2) {
      uint32_t b[4];
      ldmatrix_x4_a(b, ka + n2 * 16 * RB);
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt) {
        Mma<Elem>::run(s[mt][2 * n2], a[mt], b[0], b[1]);
        Mma<Elem>::run(s[mt][2 * n2 + 1], a[mt], b[2], b[3]);
      }
    }
  }
}
// O[mt] += P[mt] . V[tile] with P already packed (pack_p).
template <class T>
__device__ __forceinline__ void pv_packed(const uint32_t (&a)[T::MT][T::BN / 16][4], const typename T::Elem* sv,
                                          int lane, float (&o)[T::MT][T::DT][4]) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int j = 0; j < T::BN / 16; ++j)
#pragma unroll
    for (int d2 = 0; d2 < T::DT / 2; ++d2) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, sv + swz<T::D>(j * 16 + (((lane >> 3) & 1) << 3) + (lane & 7), d2 * 2 + (lane >> 4)));
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt) {
        Mma<Elem>::run(o[mt][2 * d2], a[mt][j], b[0], b[1]);
        Mma<Elem>::run(o[mt][2 * d2 + 1], a[mt][j], b[2], b[3]);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// One query tile's CTA: shared memory (Q, then the K/V ring: stage s holds K at kv + 2*s*KV_ELEMS, V
// right after), the tile and its KV tile list, its operands in global memory, and this thread's place.
template <class T>
struct Sm80Cta {
  using Elem = typename T::Elem;
  Elem* sq;
  Elem* skv;
  QueryTile qt;
  KvTileList tiles;
  QkvRows<T> g;
  int tid, lane, warp_row;
  __device__ __forceinline__ Sm80Cta(const FwdParams& p, unsigned char* smem, const QueryTile& tile)
      : sq(reinterpret_cast<Elem*>(smem)),
        skv(sq + T::Q_ELEMS),
        qt(tile),
        tiles(make_tile_list<T::BN>(p, tile.b, tile.h, tile.i, tile.kv_limit)),
        g(p, tile),
        tid(int(threadIdx.x)),
        lane(tid & 31),
        warp_row((tid >> 5) * (16 * T::MT)) {}
};

// sm80-general's loop: per tile, both barriers around the step; the scores are scaled (softmax) or
// turned into SiLU probabilities before the row max.
template <class T>
__device__ __forceinline__ void sm80_general_loop(const FwdParams& p, const Sm80Cta<T>& c, float scale_log2,
                                                  OnlineSoftmax<T>& sm, float (&o)[T::MT][T::DT][4]) {
  using Elem = typename T::Elem;
  const QueryTile& qt = c.qt;
  const KvTileList& tiles = c.tiles;
  const int lane = c.lane, warp_row = c.warp_row;
  load_tile<T, T::BM>(c.sq, c.g.q, c.g.ldq, qt.q_rows, c.g.safe, c.tid);
  [[maybe_unused]] const auto rab_rows = [&] {
    if constexpr (T::BIAS) return RabRows<T>(p.rab, qt, warp_row, lane);
    else return 0;
  }();
#pragma unroll
  for (int s = 0; s < T::STAGES - 1; ++s) {
    if (s < tiles.count) c.g.load_kv(c.skv, s, tiles.tile(s), qt.len_k, c.tid);
    cp_async_commit();
  }
  for (int t = 0; t < tiles.count; ++t) {
    int tn = t + T::STAGES - 1;
    if (tn < tiles.count) c.g.load_kv(c.skv, tn % T::STAGES, tiles.tile(tn), qt.len_k, c.tid);
    cp_async_commit();
    cp_async_wait<T::STAGES - 1>();
    __syncthreads();
    const int stage = t % T::STAGES;
    const Elem* sk = c.skv + (2 * stage) * T::KV_ELEMS;
    const Elem* sv = sk + T::KV_ELEMS;
    const int k0 = tiles.tile(t) * T::BN;

    float s[T::MT][T::NT][4];
    MmaMainLoop<T>::qk(c.sq, sk, warp_row, lane, s);
    if constexpr (T::BIAS) add_rab_tile<T>(s, p.scale, p.rab, rab_rows, qt, k0, lane);  // s = scale * s + rab

    const bool need_mask = qt.tm.needed(qt.q0, k0, T::BN);
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int q = qt.q0 + warp_row + mt * 16 + (lane >> 2) + ((e >> 1) << 3);
          int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
          bool vis = !need_mask || qt.tm.visible(q, k);
          float x = s[mt][nt][e];
          if constexpr (T::SILU)
            s[mt][nt][e] = vis ? silu_score(T::BIAS ? x : x * p.scale, p.silu_inv_n) : 0.f;
          else
            s[mt][nt][e] = vis ? x * scale_log2 : -INFINITY;
        }
    if constexpr (!T::SILU) sm.update(s, o);
    MmaMainLoop<T>::pv(s, sv, lane, o);
    __syncthreads();
  }
  cp_async_wait<0>();
}

// sm80's loop (see the top of this file).
template <class T>
__device__ __forceinline__ void sm80_raw_softmax_loop(const Sm80Cta<T>& c, float scale_log2, OnlineSoftmax<T>& sm,
                                                      float (&o)[T::MT][T::DT][4]) {
  static_assert(T::STAGES == 2, "the tile-id prefetch ring is written for 2 stages");
  static_assert(!T::SILU, "raw-score softmax only");
  using Elem = typename T::Elem;
  const QueryTile& qt = c.qt;
  const KvTileList& tiles = c.tiles;
  const int lane = c.lane, warp_row = c.warp_row;
  load_tile<T, T::BM>(c.sq, c.g.q, c.g.ldq, qt.q_rows, c.g.safe, c.tid);  // in the first group, with tile 0
  // The KV tile ids of tiles t and t+1 live in registers; the id of t+2 is read one whole iteration
  // before its cp.async needs it.
  int cur_tile = tiles.tile(0);
  int next_tile = tiles.tile(min(1, tiles.count - 1));
  c.g.load_kv(c.skv, 0, cur_tile, qt.len_k, c.tid);
  cp_async_commit();
  for (int t = 0; t < tiles.count; ++t) {
    const int after_tile = tiles.tile(min(t + 2, tiles.count - 1));
    cp_async_wait<T::STAGES - 2>();  // this thread's copies of tile t (and Q) have landed
    __syncthreads();                 // everyone's have; and every warp is done with tile t-1
    const int tn = t + T::STAGES - 1;
    if (tn < tiles.count) c.g.load_kv(c.skv, tn % T::STAGES, next_tile, qt.len_k, c.tid);  // into t-1's stage
    cp_async_commit();
    const int stage = t % T::STAGES;
    const Elem* sk = c.skv + (2 * stage) * T::KV_ELEMS;
    const Elem* sv = sk + T::KV_ELEMS;
    const int k0 = cur_tile * T::BN;
    cur_tile = next_tile, next_tile = after_tile;

    float s[T::MT][T::NT][4];
    LaneAddr la = lane_addr<T>(c.sq, warp_row, lane);
    asm volatile("" : "+r"(la.q), "+r"(la.k), "+r"(la.xqv), "+r"(la.xk));
    qk_xor<T>(la, smem_u32(sk), s);
    mask_tile<T>(s, qt.q0, k0, qt.tm, warp_row, lane);
    sm.update_raw(s, o, scale_log2);
    uint32_t pa[T::MT][T::BN / 16][4];
    pack_p<T>(s, pa);
    pv_packed<T>(pa, sv, lane, o);
  }
  cp_async_wait<0>();
}

// The sm80 kernels: one CTA per query tile (grid: query tiles, heads, sequences); T::RAW_SCORES picks
// the loop (sm80 or sm80-general).
template <class T>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS) fwd_sm80_kernel(const FwdParams p) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const QueryTile qt = block_query_tile<T::BM>(p);
  if (!qt.live()) return;  // varlen: this sequence is shorter than the mask's rows
  const Sm80Cta<T> c(p, smem_raw, qt);
  float o[T::MT][T::DT][4];
  zero<T>(o);
  OnlineSoftmax<T> sm;
  sm.init();
  const float scale_log2 = p.scale * 1.44269504088896340736f;
  if (c.tiles.count > 0) {
    if constexpr (T::RAW_SCORES)
      sm80_raw_softmax_loop<T>(c, scale_log2, sm, o);
    else
      sm80_general_loop<T>(p, c, scale_log2, sm, o);
  }
  store_output<T>(p, qt, c.warp_row, c.lane, sm, o);
}

}  // namespace bsattn::cuda::fwd
