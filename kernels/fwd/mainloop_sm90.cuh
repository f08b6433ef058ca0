// The Hopper (sm_90a) main loop of the forward family, sm90-ws: persistent, warp-specialized CTAs with
// wgmma from shared-memory descriptors and TMA loads.
//
// Roles. One CTA per SM of three warpgroups:
//   producer   one lane of warpgroup 2 (which gives its registers to the others): draws work items
//              (scheduler.cuh) from a global counter, so a CTA that drew short rows takes more; publishes
//              each in one of two item slots with its Q (two Q buffers), and streams the item's K and V
//              tiles by TMA into a 2-stage ring, each tile's V after the next tile's K (K's stage frees
//              before the softmax, V's after it, so a V waiting for its stage never holds back the next
//              K, which Q K^T needs one step before P V needs that V). It runs up to one item ahead.
//   consumers  warpgroups 0 and 1, 64 query rows each: per KV tile, S = Q K^T (wgmma, both operands in
//              shared memory; with 64-row items Q from registers), the mask (boundary tiles only), the online softmax (or HSTU's SiLU score,
//              with or without its relative attention bias computed per pair: no row max, no rescaling,
//              no normalization), O += P V (P from
//              registers, V read MN-major by the descriptor). Q K^T of tile t and P V of tile t-1 are
//              issued together, so the softmax of t runs while P V of t-1 is on the tensor cores; the two
//              warpgroups take turns at issuing (ping-pong: named barriers 1 and 2), so one's softmax
//              runs beside the other's wgmma. The epilogue stages a full query tile's O in shared memory
//              and sends it by TMA store (tails: from registers).
// The roles meet only at mbarriers: q_full / q_empty per item slot, full / empty per stage for K and
// for V. Shared-memory tiles are D/64 column blocks of [rows][64 elements] (128-byte rows, 16-byte chunk
// c of row r at c ^ (r % 8)): the canonical 128B-swizzle layout, 1024-byte aligned.
// (Each step's measured effect: results/kernel-history.md.)
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudaTypedefs.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda_check.h"
#include "kernels/fwd/bias.cuh"
#include "kernels/fwd/block.cuh"
#include "kernels/fwd/epilogue.cuh"
#include "kernels/fwd/mainloop_sm80.cuh"  // TileShape
#include "kernels/fwd/mask.cuh"
#include "kernels/fwd/ptx.cuh"
#include "kernels/fwd/scheduler.cuh"
#include "kernels/fwd/softmax.cuh"
#include "lib/error.h"

namespace bsattn::cuda::fwd {

// sm90-ws: BM = 128 query rows per item (two consumer warpgroups of 64 rows: wgmma's M), BN = 128 keys
// per K/V tile (the widest wgmma N whose S accumulators, 64 registers, leave room for O at D = 128), two
// stages of K and of V (three at D = 64), two Q buffers and an O buffer: 192 KB of shared memory at D = 128.
// D = 256: BN = 64 (O alone is 128 registers per thread), one Q buffer and no O buffer: 192 KB too.
// SILU: HSTU's score (no online softmax, no LSE) instead of the softmax; BIAS: with HSTU's relative
// attention bias added to each score (kernels/fwd/bias.cuh). The K/V ring is 3 stages deep at D = 64 (a
// tile's wgmma takes half as long as at D = 128, so a load has less time to land; 2-3% faster than 2
// stages at S=8192 and 32768, results/kernel-history.md) and 2 at D = 128 (shared memory).
// BM_ = 64 (mask blocks of 64 query rows, whose neighbouring rows keep different tiles): two independent
// pipelines per CTA, each a producer warp and one consumer warpgroup drawing its own items of 64 rows,
// with its own Q buffers, O buffer and ring of 64-key K/V tiles (no ping-pong: the pipelines are apart).
template <class Elem_, int D_, bool SILU_ = false, bool BIAS_ = false, int BM_ = 128>
struct Sm90WsConfig : TileShape<Elem_, D_, BM_, /*BN=*/D_ == 256 ? 64 : BM_, /*NWARPS=*/BM_ / 16,
                                /*STAGES=*/D_ == 64 ? (BM_ == 64 ? 4 : 3) : 2, SILU_, BIAS_> {
  using Base = TileShape<Elem_, D_, BM_, D_ == 256 ? 64 : BM_, BM_ / 16, D_ == 64 ? (BM_ == 64 ? 4 : 3) : 2, SILU_,
                         BIAS_>;
  static constexpr int PIPES = BM_ == 64 ? 2 : 1;  // independent pipelines per CTA
  static constexpr bool PINGPONG = PIPES == 1;     // two consumer warpgroups on one item take turns
  // Q K^T takes Q from registers (loaded once per item) at 64-key tiles: with both operands in shared
  // memory a 64 x 64 x 16 wgmma reads 4 KB in its 32 cycles, the SM's whole shared-memory bandwidth
  static constexpr bool Q_REGS = BM_ == 64;
  // D = 256: one Q buffer (64 KB) and no O buffer beside the 2-stage ring of 64-key tiles (128 KB): the
  // next item's Q loads once this one's last Q K^T is done, and O is stored from registers.
  static constexpr int Q_BUFS = D_ == 256 ? 1 : 2;
  static constexpr bool O_SMEM = D_ <= 128;
  static constexpr int WARPGROUPS = 2;             // consumers, over all pipelines
  static constexpr int CONSUMER_WARPS = 8;
  // + a producer warpgroup (a lone producer warp would cap every thread at 168 registers: each of the
  // 4 SM sub-partitions holds 16384 registers and gets 3 of the 9 warps); warp 8 + k produces for
  // pipeline k
  static constexpr int THREADS = 3 * 128;
  // per pipeline: the Q buffers and the O buffer beside the K/V ring (Base::SMEM_BYTES holds one Q);
  // slack to align the tiles to 1024 bytes; the mbarriers of each pipeline (q_full / q_empty of 2
  // slots, full / empty of K and of V per stage) after all the tiles
  static constexpr int PIPE_TILE_BYTES = Base::SMEM_BYTES + (Q_BUFS - 1 + (O_SMEM ? 1 : 0)) * Base::Q_ELEMS * 2;
  static constexpr int PIPE_BAR_BYTES = 8 * (2 * 2 + 4 * Base::STAGES);
  static constexpr int SMEM_LAUNCH = PIPES * (PIPE_TILE_BYTES + PIPE_BAR_BYTES) + 1024;
  static constexpr int MIN_BLOCKS = 1;
  static_assert(D_ == 64 || D_ == 128 || D_ == 256, "wgmma N = D for P V: 64 or 128 (two of 128 at D = 256)");
  static_assert(BM_ == 64 || BM_ == 128, "items of 64 rows (two pipelines) or 128 (one, ping-pong)");
  static_assert(!(D_ == 256 && BM_ == 64), "D = 256 runs 128-row items");
  static_assert(!(BIAS_ && BM_ == 64), "the relative bias runs on 128-row items only");
  static_assert(!(BIAS_ && D_ == 256), "the relative bias runs up to D = 128");
  static_assert(Base::MT == 1, "16 rows per warp");
  static_assert(PIPE_TILE_BYTES % 1024 == 0, "each pipeline's tiles stay 1024-byte aligned");
  static_assert(SMEM_LAUNCH <= 227 * 1024, "shared memory per CTA");
};

// Shared memory of one pipeline: Q buffers 0 and 1, the K/V ring (stage s: K, then V), the O buffer (one
// half per consumer warpgroup of the pipeline); its mbarriers lie after every pipeline's tiles.
template <class T>
struct WsSmem {
  static constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2, Q_BYTES = T::Q_ELEMS * 2;
  static constexpr int S = T::STAGES;
  uint32_t q_, kv_, o_, bars_;
  __device__ __forceinline__ WsSmem(uint32_t base_1024, int pipe)
      : q_(base_1024 + pipe * T::PIPE_TILE_BYTES),
        kv_(q_ + T::Q_BUFS * Q_BYTES),
        o_(kv_ + 2 * S * KV_BYTES),
        bars_(base_1024 + T::PIPES * T::PIPE_TILE_BYTES + pipe * T::PIPE_BAR_BYTES) {}
  __device__ __forceinline__ uint32_t q(int k) const { return q_ + (T::Q_BUFS == 2 ? k : 0) * Q_BYTES; }
  __device__ __forceinline__ uint32_t k_stage(int s) const { return kv_ + 2 * s * KV_BYTES; }
  __device__ __forceinline__ uint32_t v_stage(int s) const { return kv_ + 2 * s * KV_BYTES + KV_BYTES; }
  __device__ __forceinline__ uint32_t o_half(int wg) const { return o_ + wg * (64 * T::D * 2); }  // O_SMEM
  __device__ __forceinline__ uint32_t q_full(int k) const { return bars_ + 8 * k; }  // slot k published, Q landed
  __device__ __forceinline__ uint32_t q_empty(int k) const { return bars_ + 16 + 8 * k; }  // consumers done with it
  __device__ __forceinline__ uint32_t full_k(int s) const { return bars_ + 32 + 8 * s; }
  __device__ __forceinline__ uint32_t empty_k(int s) const { return bars_ + 32 + 8 * S + 8 * s; }
  __device__ __forceinline__ uint32_t full_v(int s) const { return bars_ + 32 + 16 * S + 8 * s; }
  __device__ __forceinline__ uint32_t empty_v(int s) const { return bars_ + 32 + 24 * S + 8 * s; }
};

// The launch's parameters: the tensor maps (2D [rows][heads * D], 128B swizzle; boxes of 64 elements x
// BM rows for Q, BN rows for K and V, 64 rows for O), the plain parameters, the scheduler's words (next
// item and finished CTAs, zero at launch; two spare words; then two ItemSlots per CTA) and the divisors
// that decode an item's number.
struct Sm90Params {
  CUtensorMap q, k, v, o;
  FwdParams p;
  unsigned* sched = nullptr;
  ItemDivs divs;
};

// The two wgmma groups of a tile (issued, not committed): S = Q K^T (Q from shared memory, or from
// registers with Q_REGS) and O += P V (P from registers).
template <class T>
struct QFrags {  // with Q_REGS: this warp's 16 rows of Q as wgmma A fragments, one per 16 columns
  uint32_t a[T::Q_REGS ? T::KT : 1][4];
};
template <class T>
__device__ __forceinline__ void issue_qk(float (&s)[1][T::NT][4], uint32_t sq_wg, const QFrags<T>& q, uint32_t sk) {
#pragma unroll
  for (int kt = 0; kt < T::KT; ++kt) {
    uint64_t db = wg_desc(sk + (kt >> 2) * (T::BN * 128) + (kt & 3) * 32, 16, 1024);
    if constexpr (T::Q_REGS) {
      Wgmma<typename T::Elem, T::BN>::rs(s[0], q.a[kt], db, kt > 0);
    } else {
      uint64_t da = wg_desc(sq_wg + (kt >> 2) * (T::BM * 128) + (kt & 3) * 32, 16, 1024);
      Wgmma<typename T::Elem, T::BN>::ss(s[0], da, db, kt > 0);
    }
  }
}
// Q_REGS: loads this warp's rows of the warpgroup's Q (sq_wg: its 64 rows in each 128B-swizzled column
// block) into A fragments: lane l reads row (l % 16) at 8-column chunk l / 16 of each 16-column step.
template <class T>
__device__ __forceinline__ void load_q_frags(QFrags<T>& q, uint32_t sq_wg, int warp_row, int lane) {
  const int r = (warp_row & 63) + (lane & 15);
#pragma unroll
  for (int kt = 0; kt < T::KT; ++kt) {
    const int chunk = (kt & 3) * 2 + (lane >> 4);
    ldmatrix_x4_a(q.a[kt], sq_wg + (kt >> 2) * (T::BM * 128) + r * 128 + ((chunk ^ (r & 7)) << 4));
  }
}
template <class T>
__device__ __forceinline__ void issue_pv(float (&o)[1][T::DT][4], const uint32_t (&pa)[1][T::BN / 16][4],
                                         uint32_t sv) {
#pragma unroll
  for (int j = 0; j < T::BN / 16; ++j) {
    if constexpr (T::D <= 128) {
      Wgmma<typename T::Elem, T::D>::rs_mn(o[0], pa[0][j], wg_desc(sv + j * 2048, T::BN * 128, 1024));
    } else {  // D = 256: O's two halves of 128 columns (V's column blocks 0-1 and 2-3), one wgmma each
#pragma unroll
      for (int h = 0; h < T::D / 128; ++h)
        Wgmma<typename T::Elem, 128>::rs_mn(*reinterpret_cast<float(*)[16][4]>(&o[0][16 * h]), pa[0][j],
                                            wg_desc(sv + h * 2 * (T::BN * 128) + j * 2048, T::BN * 128, 1024));
    }
  }
}

// Masks tile t of an item's list: only the tiles that can need it (TileMask::may_need: the last ones of a
// causal or tailed row) read the tile's id, a global read for sparse rows.
template <class T>
__device__ __forceinline__ void mask_scores(float (&s)[1][T::NT][4], int q0, const KvTileList& tiles, int t,
                                            const TileMask& tm, int warp_row, int lane, float fill) {
  if (tm.template may_need<T::BM, T::BN>(t, tiles.count))
    mask_tile<T>(s, q0, tiles.tile(t) * T::BN, tm, warp_row, lane, fill);
}

// The score constants of a launch: the softmax's scale * log2(e); SiLU's -scale * log2(e) and scale / n
// (with the bias, whose add scales the scores first: -log2(e) and 1 / n).
struct ScoreConsts {
  float scale_log2, c_exp, c_lin;
  __device__ __forceinline__ ScoreConsts(const FwdParams& p, bool scaled)
      : scale_log2(p.scale * 1.44269504088896340736f),
        c_exp(scaled ? -1.44269504088896340736f : -scale_log2),
        c_lin(scaled ? p.silu_inv_n : p.scale * p.silu_inv_n) {}
};

// What the bias needs per item: this thread's rows' positions and query timestamps (nothing without it).
struct NoRab {
  __device__ __forceinline__ NoRab(const RabParams&, const QueryTile&, int, int) {}
};
template <class T>
using ItemRab = std::conditional_t<T::BIAS, RabRows<T>, NoRab>;

// Tile t's scores -> probabilities in place: masked, then the online softmax (returns whether O needs
// rescaling, corrs the factors); or SiLU, then masked with 0 (never rescales).
template <class T>
__device__ __forceinline__ bool score_tile(float (&s)[1][T::NT][4], const WorkItem& it, int t, int warp_row, int lane,
                                           const ScoreConsts& sc, const FwdParams& p, const ItemRab<T>& rr,
                                           OnlineSoftmax<T>& sm, float (&corrs)[1][2]) {
  if constexpr (T::SILU) {
    if constexpr (T::BIAS) add_rab_tile<T>(s, p.scale, p.rab, rr, it, it.tiles.tile(t) * T::BN, lane);
    silu_tile<T>(s, sc.c_exp, sc.c_lin);
    mask_scores<T>(s, it.q0, it.tiles, t, it.tm, warp_row, lane, 0.f);
    return false;
  } else {
    mask_scores<T>(s, it.q0, it.tiles, t, it.tm, warp_row, lane, -INFINITY);
    return sm.probs(s, sc.scale_log2, corrs);
  }
}

// Consumer: one work item's K/V tiles for one consumer warpgroup (wg: its rank in the pipeline; Q in
// buffer k). g counts the K/V tiles taken over all items (stage g % S, phase (g / S) & 1); the item's Q
// is released (q_empty) after its last Q K^T (with Q_REGS: once it is in registers).
template <class T>
__device__ __forceinline__ void consume_item(const WsSmem<T>& L, int k, const WorkItem& it, int& g, int wg,
                                             int warp_row, int lane, const ScoreConsts& sc, const FwdParams& p,
                                             OnlineSoftmax<T>& sm,
                                             float (&o)[1][T::DT][4]) {
  const uint32_t sq_wg = L.q(k) + wg * 64 * 128;  // this warpgroup's 64 rows in each column block of Q
  constexpr int S = T::STAGES;
  auto turn = [&] {  // this warpgroup's turn to issue
    if constexpr (T::PINGPONG) named_bar_sync(1 + wg, 256);
  };
  auto done = [&] {  // the other's turn
    if constexpr (T::PINGPONG) named_bar_arrive(2 - wg, 256);
  };
  auto release = [&](uint32_t empty_bar) {  // this warp is done with a stage
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_bar);
  };
  const int n = it.tiles.count;
  const ItemRab<T> rr(p.rab, it, warp_row, lane);
  float s[1][T::NT][4];
  uint32_t pa[1][T::BN / 16][4];
  QFrags<T> q;
  if constexpr (T::Q_REGS) {  // Q into registers; its buffer is free for the next item's Q at once
    load_q_frags<T>(q, sq_wg, warp_row, lane);
    __syncwarp();
    if (lane == 0) mbar_arrive(L.q_empty(k));
  }
  // tile 0: Q K^T alone
  mbar_wait(L.full_k(g % S), (g / S) & 1);
  turn();
  wg_fence();
  issue_qk<T>(s, sq_wg, q, L.k_stage(g % S));
  wg_commit();
  done();
  wg_wait<0>();
  fence_regs(s[0]);
  release(L.empty_k(g % S));
  {
    float corrs[1][2];
    score_tile<T>(s, it, 0, warp_row, lane, sc, p, rr, sm, corrs);  // o is still zero: nothing to rescale
  }
  pack_p<T>(s, pa);
  for (int t = 1; t < n; ++t) {
    const int gt = g + t, gp = gt - 1;
    mbar_wait(L.full_v(gp % S), (gp / S) & 1);
    mbar_wait(L.full_k(gt % S), (gt / S) & 1);
    turn();
    wg_fence();
    issue_qk<T>(s, sq_wg, q, L.k_stage(gt % S));
    wg_commit();
    issue_pv<T>(o, pa, L.v_stage(gp % S));
    wg_commit();
    done();
    wg_wait<1>();  // Q K^T of tile t (P V of t-1 may still run)
    fence_regs(s[0]);
    release(L.empty_k(gt % S));
    float corrs[1][2];
    const bool rescale = score_tile<T>(s, it, t, warp_row, lane, sc, p, rr, sm, corrs);
    wg_wait<0>();  // P V of tile t-1: o and the registers of P are free
    fence_regs(o[0]);
    fence_regs(pa[0]);
    release(L.empty_v(gp % S));
    if (rescale) sm.rescale(o, corrs);
    pack_p<T>(s, pa);
  }
  if constexpr (!T::Q_REGS) {
    __syncwarp();
    if (lane == 0) mbar_arrive(L.q_empty(k));  // every Q K^T of the item is done
  }
  // last tile: P V alone
  const int gl = g + n - 1;
  mbar_wait(L.full_v(gl % S), (gl / S) & 1);
  turn();
  wg_fence();
  issue_pv<T>(o, pa, L.v_stage(gl % S));
  wg_commit();
  done();
  wg_wait<0>();
  fence_regs(o[0]);
  fence_regs(pa[0]);
  release(L.empty_v(gl % S));
  g += n;
}

// Producer of pipeline `pipe`: draws items, publishes them in the pipeline's item slots with their Q, and
// streams their K/V tiles (see the top of this file). One lane runs it.
template <class T>
__device__ __forceinline__ void produce(const Sm90Params& tp, const WsSmem<T>& L, int n_items, int pipe) {
  const FwdParams& p = tp.p;
  constexpr uint32_t KV_BYTES = WsSmem<T>::KV_BYTES, Q_BYTES = WsSmem<T>::Q_BYTES;
  constexpr int S = T::STAGES;
  unsigned* counter = tp.sched;
  const int first = int(blockIdx.x) * T::PIPES + pipe;  // the pipeline's first item: its own number
  auto slot = [&](int k) { return tp.sched + 4 + 8 * first + 4 * k; };
  // The next item: its number from the counter (each pipeline's first item is its own number), its tile
  // list from the head type and the CSR row (make_tile_list reads the type and the row's length side
  // by side); the row's first entry (the item's first K tile) is prefetched into L1 beside them
  // rather than read after them.
  auto tile_list = [&](WorkItem& x) {
    if (p.kv_indices) prefetch_l1(p.kv_indices + csr_row(p, x.b, x.h, x.i) * p.mk);
    x.tiles = make_tile_list<T::BN, true>(p, x.b, x.h, x.i, x.kv_limit);
  };
  auto draw = [&](int& w, WorkItem& it) {
    w = int(T::PIPES * gridDim.x + atomicAdd(counter, 1u));
    it = WorkItem{};
    if (w >= n_items) return;
    static_cast<QueryTile&>(it) = item_tile<T::BM>(p, w, tp.divs);
    if (it.live()) tile_list(it);
  };
  auto load_q = [&](int k, const QueryTile& x) {  // into Q buffer k, completing on q_full(k)
#pragma unroll
    for (int cb = 0; cb < T::D / 64; ++cb)
      tma_load_2d(L.q(k) + cb * (T::BM * 128), &tp.q, x.h * T::D + cb * 64, x.q_start + x.q0, L.q_full(k));
  };
  int w = first;
  WorkItem it;
  // The first item's Q load goes out before its tile list's reads (the barrier's arrive follows them,
  // with the item's slot).
  bool q_early = false;
  if (w < n_items) {
    static_cast<QueryTile&>(it) = item_tile<T::BM>(p, w, tp.divs);
    if (it.live()) {
      mbar_expect_tx_only(L.q_full(0), Q_BYTES);
      load_q(0, it);
      q_early = true;
      tile_list(it);
    }
  }
  int gp = 0;  // K/V tiles issued (over all items)
  // Each tile's V goes out after the next tile's K (over item ends too, but not past an item without
  // loads: the consumers finish the item that V belongs to before they take the next slot).
  int v_gp = -1, v_krow = 0, v_hk = 0;  // the V not yet issued (v_gp < 0: none)
  auto issue_v = [&] {
    const int sv = v_gp % S;
    if (v_gp >= S) mbar_wait(L.empty_v(sv), ((v_gp / S) - 1) & 1);
    mbar_expect_tx(L.full_v(sv), KV_BYTES);
    const uint32_t dv = L.v_stage(sv);
#pragma unroll
    for (int cb = 0; cb < T::D / 64; ++cb)
      tma_load_2d(dv + cb * (T::BN * 128), &tp.v, v_hk * T::D + cb * 64, v_krow, L.full_v(sv));
    v_gp = -1;
  };
  for (int nq = 0;; ++nq) {
    const int k = nq & 1;
    if (nq >= 2) mbar_wait(L.q_empty(k), ((nq >> 1) - 1) & 1);
    if constexpr (T::Q_BUFS == 1) {  // the one Q buffer frees after the previous item's last Q K^T, whose
      if (nq >= 1) {                 // last P V needs the V still held back: that V goes out first
        if (v_gp >= 0) issue_v();
        mbar_wait(L.q_empty(k ^ 1), ((nq - 1) >> 1) & 1);
      }
    }
    slot_store(slot(k), item_slot(w, it.tiles));
    const bool q_sent = nq == 0 && q_early;
    if (!(w < n_items && it.loads())) {  // no more work, or nothing to load: the slot alone
      mbar_arrive(L.q_full(k));          // (q_sent: the phase also waits for Q's bytes)
      if (v_gp >= 0) issue_v();
      if (w >= n_items) break;
      draw(w, it);
      continue;
    }
    if (q_sent) {
      mbar_arrive(L.q_full(k));
    } else {
      mbar_expect_tx(L.q_full(k), Q_BYTES);
      load_q(k, it);
    }
    int w_next;
    WorkItem next;
    for (int t = 0; t < it.tiles.count; ++t, ++gp) {
      const int s = gp % S;
      const int krow = it.k_start + it.tiles.tile(t) * T::BN;
      // The next item is drawn before the last tile waits for its stage: the draw's reads run during
      // that wait, not between this item's last tile and the next one's first.
      if (t == it.tiles.count - 1) draw(w_next, next);
      if (gp >= S) mbar_wait(L.empty_k(s), ((gp / S) - 1) & 1);
      const uint32_t sk = L.k_stage(s);
      mbar_expect_tx(L.full_k(s), KV_BYTES);  // this K, then the previous tile's V
#pragma unroll
      for (int cb = 0; cb < T::D / 64; ++cb)
        tma_load_2d(sk + cb * (T::BN * 128), &tp.k, it.hk * T::D + cb * 64, krow, L.full_k(s));
      if (v_gp >= 0) issue_v();
      v_gp = gp, v_krow = krow, v_hk = it.hk;
    }
    w = w_next;
    it = next;
  }
  // This pipeline draws no more items; the last one to get here resets the pair for the next launch.
  __threadfence();
  if (atomicAdd(counter + 1, 1u) == T::PIPES * gridDim.x - 1) {
    atomicExch(counter, 0u);
    atomicExch(counter + 1, 0u);
  }
}

// Consumers: take the items the producer publishes, in slot order, until it publishes the end.
// wg_cta: the warpgroup's number in the CTA (0, 1); with two pipelines it is the pipeline's only one.
template <class T>
__device__ __forceinline__ void consume(const Sm90Params& tp, const WsSmem<T>& L, int n_items, int wg_cta, int warp,
                                        int lane, int tid) {
  const FwdParams& p = tp.p;
  const int pipe = T::PIPES == 2 ? wg_cta : 0, wg = T::PIPES == 2 ? 0 : wg_cta;
  const int first = int(blockIdx.x) * T::PIPES + pipe;
  auto slot = [&](int k) { return tp.sched + 4 + 8 * first + 4 * k; };
  const int warp_row = (warp - 4 * pipe) * 16;  // this warp's first row in the item
  const ScoreConsts sc(p, T::BIAS);
  int g = 0;  // K/V tiles taken so far (over all items)
  if (T::PINGPONG && wg == 1) named_bar_arrive(1, 256);  // warpgroup 0 issues first
  // The first item is the pipeline's own number: its tile list is read here while Q loads, rather than
  // from the slot after Q has landed.
  ItemSlot cur{n_items, 0, 0, 0};
  if (first < n_items) cur = item_slot(first, work_item<T::BN>(p, item_tile<T::BM>(p, first, tp.divs)).tiles);
  mbar_wait(L.q_full(0), 0);
  for (int nq = 0; cur.w < n_items; ++nq) {
    const int k = nq & 1;
    const WorkItem it = work_item<T::BN>(p, cur, item_tile<T::BM>(p, cur.w, tp.divs));
    float o[1][T::DT][4];
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
    OnlineSoftmax<T> sm;
    sm.init();
    if (it.loads()) consume_item<T>(L, k, it, g, wg, warp_row, lane, sc, p, sm, o);
    __syncwarp();
    if (lane == 0 && !it.loads()) mbar_arrive(L.q_empty(k));  // done with the slot (no Q was loaded)
    // The next item's slot is read before this item's epilogue, so that its latency hides under the
    // stores (the producer publishes it about one K/V tile before this item's last tile ends); with one
    // Q buffer after it, since the slot is published with the next Q, which loads only now.
    ItemSlot next;
    auto take_next = [&] {
      mbar_wait(L.q_full(k ^ 1), ((nq + 1) >> 1) & 1);
      next = slot_load(slot(k ^ 1));
    };
    if constexpr (T::Q_BUFS == 2) take_next();
    if (it.live() && T::O_SMEM && it.q_rows == T::BM)
      store_output_tma<T>(tp.o, p, it, L.o_half(wg), wg, 3 + wg_cta, warp_row, lane, sm, o);
    else if (it.live())
      store_output<T>(p, it, warp_row, lane, sm, o);
    if constexpr (T::Q_BUFS == 1) take_next();
    cur = next;
  }
  if ((tid & 127) == 0) bulk_wait_all();  // the O buffer stays until the last store has read it
  if (T::PINGPONG && wg == 0) named_bar_sync(1, 256);  // warpgroup 1's last arrive is matched here
}

// The counters (next item, finished CTAs) are reset by the last CTA to finish, so each launch finds them
// at zero; launches in flight at once use different blocks (ws_sched_block hands them out in turn).
template <class T>
__global__ void __launch_bounds__(T::THREADS, 1) fwd_sm90_ws_kernel(const __grid_constant__ Sm90Params tp) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) unsigned char smem_sm90[];
  const uint32_t base = (smem_u32(smem_sm90) + 1023u) & ~1023u;
  const FwdParams& p = tp.p;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int n_items = ((p.q_len + T::BM - 1) / T::BM) * p.heads_q * p.batch;

  if (tid == 0) {
    for (int pipe = 0; pipe < T::PIPES; ++pipe) {
      const WsSmem<T> L(base, pipe);  // T::NWARPS: the consumer warps of one pipeline
      for (int k = 0; k < 2; ++k) mbar_init(L.q_full(k), 1), mbar_init(L.q_empty(k), T::NWARPS);
      for (int s = 0; s < T::STAGES; ++s) mbar_init(L.full_k(s), 1), mbar_init(L.empty_k(s), T::NWARPS);
      for (int s = 0; s < T::STAGES; ++s) mbar_init(L.full_v(s), 1), mbar_init(L.empty_v(s), T::NWARPS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fence_proxy_async_smem();
  }
  __syncthreads();  // the last CTA-wide barrier: from here on the roles meet only at mbarriers

  if (wg == T::WARPGROUPS) {  // producer warpgroup: gives registers back; lane 0 of warp 8 + k works for pipeline k
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (lane == 0) {
      if (warp == T::CONSUMER_WARPS) produce<T>(tp, WsSmem<T>(base, 0), n_items, 0);
      if (T::PIPES == 2 && warp == T::CONSUMER_WARPS + 1) produce<T>(tp, WsSmem<T>(base, 1), n_items, 1);
    }
    return;
  }
  // consumers: 128 x 40 + 256 x 232 = 64512 of the SM's 65536 registers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  consume<T>(tp, WsSmem<T>(base, T::PIPES == 2 ? wg : 0), n_items, wg, warp, lane, tid);
#else
  __trap();  // built for another architecture: the host launches this kernel on sm_90 only
#endif
}

// Host: the tensor maps of one launch (cuTensorMapEncodeTiled through the runtime's driver entry point,
// so the build needs no libcuda at link time). A 2D map over [rows][cols] row-major elements with boxes
// of box_cols x box_rows.
inline void encode_map_2d(CUtensorMap* map, CUtensorMapDataType type, int elem_bytes, const void* ptr, int64_t rows,
                          int64_t cols, int box_cols, int box_rows, CUtensorMapSwizzle swizzle) {
  using Fn = PFN_cuTensorMapEncodeTiled_v12000;
  static Fn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
    if (!f || q != cudaDriverEntryPointSuccess)
      throw RuntimeFailure("CUDA driver has no cuTensorMapEncodeTiled (needed by the sm90 kernels)");
    return reinterpret_cast<Fn>(f);
  }();
  cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(cols) * elem_bytes};
  cuuint32_t box[2] = {cuuint32_t(box_cols), cuuint32_t(box_rows)};
  cuuint32_t estr[2] = {1, 1};
  CUresult r = fn(map, type, 2, const_cast<void*>(ptr), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw RuntimeFailure("cuTensorMapEncodeTiled failed (error " + std::to_string(int(r)) + ")");
}
// 16-bit Q/K/V/O: boxes of 64 elements (128 bytes, the 128B swizzle's span) x box_rows.
inline void encode_map(CUtensorMap* map, bool bf16, const void* ptr, int64_t rows, int64_t cols, int box_rows) {
  encode_map_2d(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, ptr, rows, cols, 64,
                box_rows, CU_TENSOR_MAP_SWIZZLE_128B);
}

template <class T>
Sm90Params make_sm90_params(const FwdParams& p) {
  Sm90Params tp;
  constexpr bool bf16 = std::is_same_v<typename T::Elem, __nv_bfloat16>;
  const int64_t tq = p.total_q ? p.total_q : int64_t(p.batch) * p.q_len;
  const int64_t tk = p.total_k ? p.total_k : int64_t(p.batch) * p.kv_len;
  encode_map(&tp.q, bf16, p.q, tq, int64_t(p.heads_q) * T::D, T::BM);
  encode_map(&tp.k, bf16, p.k, tk, int64_t(p.heads_kv) * T::D, T::BN);
  encode_map(&tp.v, bf16, p.v, tk, int64_t(p.heads_kv) * T::D, T::BN);
  encode_map(&tp.o, bf16, p.o, tq, int64_t(p.heads_q) * T::D, 64);
  tp.p = p;
  tp.divs = ItemDivs::of<T::BM>(p);
  return tp;
}

}  // namespace bsattn::cuda::fwd
