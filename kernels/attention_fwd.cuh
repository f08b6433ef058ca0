// Block-sparse attention forward, FlashAttention-2 style (mma.sync m16n8k16 + ldmatrix + cp.async).
//
// One CTA owns one query tile of BM = block_q rows of one (batch, head); it walks the KV tiles that
// the head's block row keeps (CSR row for sparse heads, the definition for dense and streaming
// heads), keeps the online softmax in fp32 registers and writes O (input dtype) and LSE. S x S is
// never materialized.
//
// Roles (STYLE.md 7; FlashAttention's hopper/ split), each a separate piece below:
//   FwdTraits        tile sizes, warps, stages, shared-memory layout (constexpr + static_asserts)
//   KvTileList       block iteration: which KV tiles a query tile visits (the only place sparsity enters)
//   TileMask         masking: only tiles that cross the causal diagonal or a sequence tail
//   OnlineSoftmax    running max / sum, rescaling; the SiLU (HSTU) score function beside it
//   MmaMainLoop      per KV tile: S = Q K^T, then O += P V (the part a Hopper wgmma/TMA main loop
//                    replaces; it sees only shared-memory tiles and register fragments)
//   epilogue         O = acc / l, LSE, empty rows O = 0 / LSE = -inf
//   scheduling       grid (q tile, head, batch); causal launches the longest rows first
//
// Variants (selected by name through AttentionRunner / kernel_variants(); timings in
// results/forward-*.md, measured with `scripts/gpu-check.sh` -> test_gpu -tc="forward table"):
//   fa2-w8      BM = block_q, BN = 64, 16 rows per warp (8 warps for BM=128), 2 cp.async stages,
//               Q fragments re-read from shared memory each k-step.
//   fa2-w4      BM = 128 with 4 warps, 32 rows per warp: each K/V fragment feeds two m16 tiles (half
//               the shared-memory traffic per FLOP, FA2's sm90 fallback shape), more registers.
//   fa2-w8-n128 BN = 128 (block_kv 128 only): fewer barriers and softmax rescales per key.
//   fa2-v2*     attention_fwd_kernel_v2, same roles, leaner main loop: one __syncthreads per KV tile
//               (next tile's cp.async issued after the barrier into the stage tile t-1 used), raw
//               scores (mask only boundary tiles; scale*log2e folded into one FFMA before ex2.approx),
//               non-volatile mma asm, optional Q fragments in registers (16-row warps). Shapes:
//                 fa2-v2      8 warps, BN 128, 3 stages (224 KB smem), Q in regs  255 regs, 24 B spill
//                 fa2-v2-s2   same with 2 stages                                  255 regs, 24 B spill
//                 fa2-v2-w4   4 warps x 32 rows, BN 64, 2 stages, Q from smem     255 regs, 100 B spill
//                 fa2-v2-w8   8 warps, BN 64, 2 stages, 2 CTAs/SM                 128 regs, 52 B spill
//                 fa2-v2-n64  8 warps, BN 64, 3 stages, Q in regs, 1 CTA/SM       224 regs, 0 spill
//   fa2-v3*     v2 + lazy rescale: O *= corr is skipped when no row max of the warp moved (exact).
//                 fa2-v3-w4   = fa2-v2-w4 + lazy rescale                          255 regs, 16 B spill
//                 fa2-v3-w4-n32  4 warps, BN 32                                   254 regs, 0 spill
//                 fa2-v3      = fa2-v2-s2 + lazy rescale                          255 regs, 0 spill
//   fa2-v4*     fa2-v3-w4 (4 warps x 32 rows, BN 64, 2 stages, lazy rescale) + three register/latency
//               changes, each a FwdTraitsV2 flag:
//                 IDX_PREFETCH  KV tile ids of tiles t, t+1 in registers; the CSR read of tile t+2 is
//                               issued one iteration before its cp.async (v3 waited on it each tile)
//                 PACK_P        P packed to bf16/f16 A fragments once, before the P.V loop
//                 XOR_ADDR      Q K^T ldmatrix addresses as lane base + ((k-step << 5) ^ lane bits)
//                 fa2-v4-w4-h   all three, lane bases fenced from loop-invariant  255 regs, 0 spill
//                               motion (XOR_ADDR 2)                               DEFAULT
//                 fa2-v4-w4     all three (XOR_ADDR 1)                            255 regs, 0 spill
//                 fa2-v4-w4-p   IDX_PREFETCH + PACK_P only                        255 regs, 8 B spill
//               (a V-side XOR address for P.V as well spilled 64 B; dropped)
//   (registers: ptxas sm_90a, bf16, D = 128.)
// The measured numbers for each variant are logged at the bottom of this comment after each run.
//
//   wg-*        the Hopper (sm_90a) main loops of attention_fwd_sm90.cuh (wgmma; wg-tma*: TMA + mbarriers);
//               their log is at the top of that file.
// Default ("" variant, resolve_fwd_variant in attention_fwd.cu): wg-tma-s2 on sm_90 for block_q 128,
// block_kv a multiple of 128 and softmax; fa2-v4-w4-h for block_q = 128 and scale > 0 elsewhere;
// else fa2-w8 (block_q = 64, and SiLU).
//
// Variant log (bf16, B=1, H=16, D=128, block 128, non-causal, effective TFLOP/s of the median launch,
// L2 flushed; H100 80GB HBM3, driver 580.159.04; BSATTN_COMMIT=968828ded988 scripts/gpu-check.sh (same kernels as 9243501b6451);
// results/forward-h100.md):
//   fa2-w8       S=8192: dense 193, d=0.1 171;  S=32768: dense 206, d=0.1 191.  128 regs (cap for 2
//                CTAs/SM), 48-56 B spills.
//   fa2-w4       S=8192: dense 208, d=0.1 181;  S=32768: dense 216, d=0.1 205.  255 regs, ~100 B spills.
//   fa2-w8-n128  S=8192: dense 216, d=0.1 179;  S=32768: dense 218, d=0.1 204.  1 CTA/SM (160 KB smem).
//   All three are ~60% of FA2's ~350 on this class of GPU and below the issue's 350 floor; the time
//   budget time(d) <= (d+0.03) x dense holds within 2% at every density (budget ratio 0.81-1.02).
// v2 run (same GPU and driver; BSATTN_COMMIT=c2303349a4c4 scripts/gpu-check.sh --no-bench, suite +
// memcheck + racecheck PASS; results/forward-h100-v2.md), dense / d=0.9 / d=0.1:
//   fa2-v2       S=8192: 275 / 264 / 224;  S=32768: 287 / 271 / 263
//   fa2-v2-s2    S=8192: 281 / 265 / 218;  S=32768: 286 / 271 / 261
//   fa2-v2-w4    S=8192: 294 / 282 / 237;  S=32768: 299 / 288 / 282   (fastest v2: +40% over v1)
//   fa2-v2-w8    S=8192: 266 / 250 / 220;  S=32768: 275 / 260 / 256
//   fa2-v2-n64   S=8192: 244 / 225 / 195;  S=32768: 252 / 230 / 223   (8 warps/SM, 1 CTA: too few)
//   (v1 in the same run: fa2-w8-n128 212 / 205 / 177 and 215 / 207 / 200.) Budget ratio 0.82-1.06;
//   above 1.0 mostly at d >= 0.4, where the sparse CSR path costs 1-6% over the dense segment path
//   (v1 showed the same, up to 1.02).
// v3 run (same GPU and driver; BSATTN_COMMIT=d6b46b92c87f BSATTN_FWD_VARIANTS=fa2-v3-w4,fa2-v3-w4-n32,
// fa2-v3,fa2-v2-w4,fa2-w8-n128 scripts/gpu-check.sh --no-bench, suite + memcheck + racecheck PASS;
// results/forward-h100-v3.md), dense / d=0.9 / d=0.1 (min over densities 0.1-0.9):
//   fa2-v3-w4      S=8192: 299 / 290 / 242 (242);  S=32768: 314 / 297 / 289 (289)   DEFAULT, fastest
//   fa2-v3-w4-n32  S=8192: 260 / 238 / 210;        S=32768: 269 / 247 / 236  (twice the barriers/rescales)
//   fa2-v3         S=8192: 255 / 243 / 204;        S=32768: 258 / 246 / 239  (lazy rescale hurts n128:
//                  the warp vote + branch splits the unrolled tile that ptxas interleaved; v2-s2 286)
//   fa2-v2-w4      S=8192: 298 / 285 / 246;        S=32768: 299 / 288 / 282  (repeat of the v2 run: +-1%)
//   fa2-w8-n128    S=8192: 213 / 206 / 180;        S=32768: 217 / 209 / 203  (v1 default, for reference)
//   Budget ratio of fa2-v3-w4: 0.84-1.02. Default went 218 -> 314 dense and 204 -> 289 at d=0.1
//   (S=32768), still under the issue's 350 floor (~85-90% of it).
//   Next, by expected gain: the Hopper wgmma main loop (sm_90a; mma.sync on H100 tops out near 2/3
//   of wgmma's rate); for FA2-level: remove the 16 B spill of fa2-v3-w4 (255 regs: Q re-read per
//   k-step costs 8 ldmatrix per tile; try a 2x4 warp grid or shorter-lived K fragments), software
//   pipelining of K-next ldmatrix under the PV mma across tiles, and fewer tiles per CTA overhead at
//   low density (d=0.1, S=8192: 242 vs 299 dense: only 16 tiles per CTA; a persistent scheduler).
// v4 run (same GPU and driver; BSATTN_COMMIT=264db5c34124 BSATTN_FWD_VARIANTS=fa2-v4-w4,fa2-v4-w4-h,
// fa2-v4-w4-p,fa2-v3-w4 scripts/gpu-check.sh --no-bench, suite 13/13 + memcheck + racecheck PASS;
// results/forward-h100.md), dense / d=0.9 / d=0.1, budget ratio range:
//   fa2-v4-w4-h   S=8192: 316 / 310 / 258;  S=32768: 325 / 317 / 306   budget 0.82-1.00   DEFAULT, fastest
//   fa2-v4-w4     S=8192: 306 / 303 / 256;  S=32768: 320 / 314 / 298   budget 0.83-0.99
//   fa2-v4-w4-p   S=8192: 304 / 292 / 251;  S=32768: 313 / 304 / 293   budget 0.83-1.01
//   fa2-v3-w4     S=8192: 301 / 287 / 249;  S=32768: 313 / 297 / 285   budget 0.85-1.02 (same run)
//   fa2-v4-w4-h over fa2-v3-w4: dense +5.0% / +4.0%, d=0.9 +8.0% / +6.8%, d=0.1 +3.7% / +7.6%
//   (S=8192 / S=32768); every density 0.1-0.9 gains, and the mid-density budget overshoot is gone
//   (max 1.00). Reading: the index prefetch alone (-p) recovers the sparse-path overshoot (d=0.9
//   +2%), removing the last spill via the XOR addresses adds ~2-3% everywhere, and fencing the lane
//   bases (-h, recompute the 8 k-step XORs per tile instead of keeping them) another 1-3%: at 255
//   registers the freed registers go to ptxas's scheduling. Still under the issue's 350 floor (93%).
//   Next: the same address form for P.V's V reads without the spill (its 8 chunk offsets stay live;
//   a per-j fence may do it), then the wgmma main loop; at S=8192 d=0.1 (258) a persistent scheduler.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/fwd_params.h"

namespace bsattn::cuda::fwd {

// ---------------------------------------------------------------------------------------------
// Traits
template <typename Elem_, int D_, int BM_, int BN_, int NWARPS_, int STAGES_, bool SILU_>
struct FwdTraits {
  using Elem = Elem_;
  static constexpr int D = D_;            // head dim
  static constexpr int BM = BM_;          // query rows per CTA (= the mask's block_q)
  static constexpr int BN = BN_;          // keys per main-loop step (divides block_kv)
  static constexpr int NWARPS = NWARPS_;
  static constexpr int STAGES = STAGES_;  // cp.async K/V buffers
  static constexpr bool SILU = SILU_;
  static constexpr bool V2 = false;  // which kernel runs these traits (attention_fwd_kernel / _v2)
  static constexpr bool SM90 = false;  // attention_fwd_kernel_sm90* (attention_fwd_sm90.cuh)
  static constexpr bool OVERLAP = false, TMA = false, PERSISTENT = false;  // (FwdTraitsSm90 flags)
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
  // Two CTAs per SM when registers and shared memory allow it (latency hiding across CTAs).
  static constexpr int MIN_BLOCKS = (THREADS <= 128 || SMEM_BYTES > 110 * 1024) ? 1 : 2;
  static_assert(sizeof(Elem) == 2, "16-bit inputs only");
  static_assert(D % 64 == 0, "swizzle works on 8 chunks of 16 bytes: D must be a multiple of 64");
  static_assert(BM % (16 * NWARPS) == 0, "each warp owns whole m16 tiles");
  static_assert(BN % 16 == 0 && NT % 2 == 0, "ldmatrix.x4 loads K in pairs of n8 tiles");
  static_assert(DT % 2 == 0, "ldmatrix.x4.trans loads V in pairs of n8 tiles");
  static_assert(STAGES >= 2, "double buffering at least");
};

// ---------------------------------------------------------------------------------------------
// PTX helpers
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  int src_size = valid ? 16 : 0;  // 0: zero-fill (tails), nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(src_size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

// 2^x on the SFU, flush-to-zero; ex2(-inf) = +0 (masked scores). exp2f() adds a denormal range fix-up.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <typename Elem>
struct Mma;
template <>
struct Mma<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float x, float y) {
    __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <>
struct Mma<__half> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float x, float y) {
    __half2 h = __floats2half2_rn(x, y);
    return *reinterpret_cast<uint32_t*>(&h);
  }
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

// ---------------------------------------------------------------------------------------------
// Block iteration: the KV tiles (of BN keys, ascending) that one query tile visits. Sparse heads read
// their CSR row; dense and streaming heads are two ascending segments computed from their definition.
// KvTileList, make_tile_list, TileMask and query_tile (below) also compile for the host, where
// tests/kernels checks them against the mask model without a GPU.
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

// SKIP_TRIM (wg-tma-s2e, wg-tma-ws*): when no block can reach kv_limit, do not read the row's last entry
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

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
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

// One work item of the persistent kernel (wg-tma-ws): a query tile and its tile list, from the item
// number w (query tiles fastest, then heads, then sequences; causal: each head's longest rows first).
struct WorkItem : QueryTile {
  KvTileList tiles;
  __host__ __device__ __forceinline__ bool loads() const { return live() && tiles.count > 0; }  // tiles to visit
};
template <int BM>
__host__ __device__ __forceinline__ QueryTile item_tile(const FwdParams& p, int w) {
  const int mtiles = (p.q_len + BM - 1) / BM;
  const int ir = w % mtiles;
  return query_tile<BM>(p, w / (mtiles * p.heads_q), (w / mtiles) % p.heads_q, p.causal ? mtiles - 1 - ir : ir);
}
// Division by a run-time divisor d (1 <= d < 2^31) of an n < 2^31 as a multiply-high, an add and a shift
// (Granlund and Montgomery, PLDI 1994): with l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1,
// n / d = (umulhi(m, n) + n) >> l, and the sum fits 32 bits because umulhi(m, n) < n. The host computes
// m and l once per launch; the device then runs no integer-division routine. A divisor below 1 (no
// work items at all) is taken as 1.
struct FastDiv {
  uint32_t d = 1, m = 1, l = 0;
  FastDiv() = default;
  __host__ explicit FastDiv(int divisor) : d(uint32_t(divisor < 1 ? 1 : divisor)) {
    while ((uint64_t(1) << l) < d) ++l;
    m = uint32_t((uint64_t(1) << 32) * ((uint64_t(1) << l) - d) / d + 1);
  }
  __host__ __device__ __forceinline__ int div(int n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(m, uint32_t(n));
#else
    const uint32_t hi = uint32_t((uint64_t(m) * uint32_t(n)) >> 32);
#endif
    return int((hi + uint32_t(n)) >> l);
  }
};
// The three divisors of a work item's number: query tiles per head, heads, query heads per K/V head.
struct ItemDivs {
  FastDiv mtiles, heads, group;
  ItemDivs() = default;
  template <int BM>
  __host__ static ItemDivs of(const FwdParams& p) {
    ItemDivs v;
    v.mtiles = FastDiv((p.q_len + BM - 1) / BM), v.heads = FastDiv(p.heads_q), v.group = FastDiv(p.heads_q / p.heads_kv);
    return v;
  }
};
// item_tile by multiply-and-shift (wg-tma-ws-ppf): the same item as item_tile(p, w).
template <int BM>
__host__ __device__ __forceinline__ QueryTile item_tile(const FwdParams& p, int w, const ItemDivs& v) {
  const int mtiles = int(v.mtiles.d);
  const int bh = v.mtiles.div(w), ir = w - bh * mtiles;
  const int b = v.heads.div(bh), h = bh - b * p.heads_q;
  return query_tile<BM>(p, b, h, v.group.div(h), p.causal ? mtiles - 1 - ir : ir);
}
template <int BN>
__host__ __device__ __forceinline__ WorkItem work_item(const FwdParams& p, QueryTile q) {
  WorkItem it;
  static_cast<QueryTile&>(it) = q;
  it.tiles = it.live() ? make_tile_list<BN, true>(p, it.b, it.h, it.i, it.kv_limit) : KvTileList{};
  return it;
}
template <int BM, int BN>
__host__ __device__ __forceinline__ WorkItem work_item(const FwdParams& p, int w) {
  return work_item<BN>(p, item_tile<BM>(p, w));
}
// What wg-tma-ws's producer publishes for an item: its number and the tile list's shape, which it read
// from the head type and the CSR row. The consumers rebuild the item from it (work_item below) with no
// global read of their own. seg0_end < 0: the CSR row form (idx).
struct ItemSlot {
  int w, count, seg0_end, seg1_begin;
};
__host__ __device__ __forceinline__ ItemSlot item_slot(int w, const KvTileList& t) {
  return ItemSlot{w, t.count, t.idx ? -1 : t.seg0_end, t.seg1_begin};
}
template <int BN>
__host__ __device__ __forceinline__ WorkItem work_item(const FwdParams& p, const ItemSlot& s, QueryTile q) {
  WorkItem it;
  static_cast<QueryTile&>(it) = q;
  it.tiles.per_block = p.block_kv / BN;
  it.tiles.count = s.count;
  if (s.seg0_end < 0) {
    it.tiles.idx = p.kv_indices + csr_row(p, it.b, it.h, it.i) * p.mk;
  } else {
    it.tiles.seg0_end = s.seg0_end, it.tiles.seg1_begin = s.seg1_begin;
  }
  return it;
}
template <int BM, int BN>
__host__ __device__ __forceinline__ WorkItem work_item(const FwdParams& p, const ItemSlot& s) {
  return work_item<BN>(p, s, item_tile<BM>(p, s.w));
}

// ---------------------------------------------------------------------------------------------
// Online softmax over a thread's rows (2 per m16 tile: lane/4 and lane/4 + 8), fp32, exp2 domain.
template <class T>
struct OnlineSoftmax {
  float m[T::MT][2];  // running max of scale*log2(e)*s
  float l[T::MT][2];  // this thread's partial row sum (reduced over the quad in the epilogue)
  __device__ __forceinline__ void init() {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) m[mt][r] = -INFINITY, l[mt][r] = 0.f;
  }
  // s (already scaled to the exp2 domain, masked = -inf) -> p in place; rescales o.
  __device__ __forceinline__ void update(float (&s)[T::MT][T::NT][4], float (&o)[T::MT][T::DT][4]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = m[mt][r];
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float base = mx == -INFINITY ? 0.f : mx;  // a row with nothing visible yet stays at 0
        float corr = exp2f(m[mt][r] - base);
        m[mt][r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) {
          float p0 = exp2f(s[mt][nt][2 * r] - base), p1 = exp2f(s[mt][nt][2 * r + 1] - base);
          s[mt][nt][2 * r] = p0, s[mt][nt][2 * r + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][r] = l[mt][r] * corr + sum;
#pragma unroll
        for (int dt = 0; dt < T::DT; ++dt) o[mt][dt][2 * r] *= corr, o[mt][dt][2 * r + 1] *= corr;
      }
  }
  // Same update on raw scores s (masked = -inf) with scale_log2 = scale * log2(e) > 0: the max is taken
  // raw and scaled once per row, and each p = 2^(s * scale_log2 - m) is one FFMA and one ex2.approx.
  // In two halves, so that a pipelined loop can compute p while the previous P V still accumulates
  // into o: probs() turns s into p and returns each row's correction (and whether any lane of the
  // warp needs it when LAZY); rescale() applies it to o.
  template <bool LAZY>
  __device__ __forceinline__ bool probs(float (&s)[T::MT][T::NT][4], float scale_log2, float (&corrs)[T::MT][2]) {
    bool rescale = false;
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float m_new = fmaxf(m[mt][r], mx * scale_log2);
        float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet stays at 0
        float corr = ex2(m[mt][r] - base);
        m[mt][r] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) {
          float p0 = ex2(fmaf(s[mt][nt][2 * r], scale_log2, -base));
          float p1 = ex2(fmaf(s[mt][nt][2 * r + 1], scale_log2, -base));
          s[mt][nt][2 * r] = p0, s[mt][nt][2 * r + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][r] = l[mt][r] * corr + sum;
        corrs[mt][r] = corr;
        rescale |= corr != 1.f;
      }
    // Lazy rescale (fa2-v3): once the row maxima settle, most tiles leave every max unchanged
    // (corr == 1 exactly): skip the 4*MT*DT multiplies when no lane of the warp needs them. Exact.
    return !LAZY || __any_sync(0xffffffffu, rescale);
  }
  __device__ __forceinline__ static void rescale(float (&o)[T::MT][T::DT][4], const float (&corrs)[T::MT][2]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mt][dt][e] *= corrs[mt][e >> 1];
  }
  template <bool LAZY>
  __device__ __forceinline__ void update_raw(float (&s)[T::MT][T::NT][4], float (&o)[T::MT][T::DT][4],
                                             float scale_log2) {
    float corrs[T::MT][2];
    if (probs<LAZY>(s, scale_log2, corrs)) rescale(o, corrs);
  }
};

// SiLU (HSTU): p = SiLU(scale * s) / n for visible pairs, 0 for masked ones; no normalization.
__device__ __forceinline__ float silu_score(float x, float inv_n) { return x / (1.f + __expf(-x)) * inv_n; }

// ---------------------------------------------------------------------------------------------
// Main loop pieces on shared-memory tiles and register fragments (the replaceable part).
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
  // Q fragments of this warp's rows, loaded once (fa2-v2 with 16-row warps keeps them in registers).
  __device__ __forceinline__ static void load_q(const Elem* sq, int warp_row, int lane, uint32_t (&qf)[T::MT][T::KT][4]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int kt = 0; kt < T::KT; ++kt)
        ldmatrix_x4(qf[mt][kt], sq + swz<T::D>(warp_row + mt * 16 + (lane & 15), kt * 2 + (lane >> 4)));
  }
  // S = Q K^T with Q from registers.
  __device__ __forceinline__ static void qk_regs(const uint32_t (&qf)[T::MT][T::KT][4], const Elem* sk, int lane,
                                                 float (&s)[T::MT][T::NT][4]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kt = 0; kt < T::KT; ++kt)
#pragma unroll
      for (int n2 = 0; n2 < T::NT / 2; ++n2) {
        uint32_t b[4];
        ldmatrix_x4(b, sk + swz<T::D>(n2 * 16 + ((lane >> 4) << 3) + (lane & 7), kt * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int mt = 0; mt < T::MT; ++mt) {
          Mma<Elem>::run(s[mt][2 * n2], qf[mt][kt], b[0], b[1]);
          Mma<Elem>::run(s[mt][2 * n2 + 1], qf[mt][kt], b[2], b[3]);
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

// P (fp32 C fragments) -> 16-bit A fragments of P.V, all at once (fa2-v4: the 64 fp32 P registers
// die before the V loop starts instead of living through it).
template <class T>
__device__ __forceinline__ void pack_p(const float (&p)[T::MT][T::NT][4], uint32_t (&a)[T::MT][T::BN / 16][4]) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int j = 0; j < T::BN / 16; ++j) {
      a[mt][j][0] = Mma<Elem>::pack(p[mt][2 * j][0], p[mt][2 * j][1]);
      a[mt][j][1] = Mma<Elem>::pack(p[mt][2 * j][2], p[mt][2 * j][3]);
      a[mt][j][2] = Mma<Elem>::pack(p[mt][2 * j + 1][0], p[mt][2 * j + 1][1]);
      a[mt][j][3] = Mma<Elem>::pack(p[mt][2 * j + 1][2], p[mt][2 * j + 1][3]);
    }
}
// fa2-v4 XOR_ADDR: ldmatrix addresses as 32-bit shared addresses. Every ldmatrix row r of the swizzled
// tile reads logical chunk 2*step + c (c = 0/1 per lane), stored at chunk (2*step + c) ^ (r & 7); since
// bit 0 of 2*step is 0 that is 2*step ^ (c ^ (r & 7)), so the byte offset is (step << 5) ^ x with a
// per-lane x = (c ^ (r & 7)) << 4, and the rows of the other m16 / n16 blocks are immediates (Q K^T
// only: the same form for the V reads of P.V spilled 64 B). XOR_ADDR 2 also hides the lane bases from
// loop-invariant motion (empty asm volatile per tile), so the per-k-step XORs are redone each tile.
__device__ __forceinline__ void ldmatrix_x4_a(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
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
// O[mt] += P[mt] . V[tile] with P already packed (fa2-v4).
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
// Epilogue: normalize, write O (input dtype) and LSE; empty rows give O = 0, LSE = -inf. `sm.m` is the
// running max in the exp2 domain (scale * log2(e) * s), `sm.l` this thread's partial row sum.
// row_norm: one of the thread's rows (m16 tile mt, half r): 1 / l with l summed over the quad, and LSE.
struct RowNorm {
  float inv, lse;
};
template <class T>
__device__ __forceinline__ RowNorm row_norm(const OnlineSoftmax<T>& sm, int mt, int r) {
  float l = sm.l[mt][r];
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (T::SILU) return {1.f, 0.f};
  return {l > 0.f ? 1.f / l : 0.f, l > 0.f ? (sm.m[mt][r] + __log2f(l)) * 0.69314718055994530942f : -INFINITY};
}
// Where query row q (of the sequence starting at q_start) of head h puts its LSE.
__device__ __forceinline__ int64_t lse_index(const FwdParams& p, int b, int h, int q_start, int q) {
  return p.cu_q ? int64_t(h) * (p.cu_q[p.batch]) + q_start + q : (int64_t(b) * p.heads_q + h) * p.q_len + q;
}
template <class T>
__device__ __forceinline__ void store_output(const FwdParams& p, int b, int h, int q_start, int q0, int q_rows,
                                             int warp_row, int lane, const OnlineSoftmax<T>& sm,
                                             const float (&o)[T::MT][T::DT][4]) {
  using Elem = typename T::Elem;
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

// ---------------------------------------------------------------------------------------------
// The kernel: scheduling, pipeline, and the roles above.
template <class T>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS) attention_fwd_kernel(const FwdParams p) {
  using Elem = typename T::Elem;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Elem* sq = reinterpret_cast<Elem*>(smem_raw);
  Elem* skv = sq + T::Q_ELEMS;  // stage s: K at skv + 2*s*KV_ELEMS, V right after

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const QueryTile qt = block_query_tile<T::BM>(p);
  if (!qt.live()) return;  // varlen: this sequence is shorter than the mask's rows
  const int b = qt.b, h = qt.h, hk = qt.hk, i = qt.i, q_start = qt.q_start, k_start = qt.k_start, len_k = qt.len_k;
  const int q0 = qt.q0, q_rows = qt.q_rows, kv_limit = qt.kv_limit;
  const TileMask tm = qt.tm;
  const KvTileList tiles = make_tile_list<T::BN>(p, b, h, i, kv_limit);

  const int64_t ldq = int64_t(p.heads_q) * T::D, ldk = int64_t(p.heads_kv) * T::D;
  const Elem* gq = static_cast<const Elem*>(p.q) + (int64_t(q_start) + q0) * ldq + int64_t(h) * T::D;
  const Elem* gk = static_cast<const Elem*>(p.k) + int64_t(k_start) * ldk + int64_t(hk) * T::D;
  const Elem* gv = static_cast<const Elem*>(p.v) + int64_t(k_start) * ldk + int64_t(hk) * T::D;
  const Elem* safe = static_cast<const Elem*>(p.q);

  auto load_kv = [&](int t, int stage) {
    int k0 = tiles.tile(t) * T::BN;
    int rows = min(T::BN, len_k - k0);
    load_tile<T, T::BN>(skv + (2 * stage) * T::KV_ELEMS, gk + int64_t(k0) * ldk, ldk, rows, safe, tid);
    load_tile<T, T::BN>(skv + (2 * stage + 1) * T::KV_ELEMS, gv + int64_t(k0) * ldk, ldk, rows, safe, tid);
  };

  float o[T::MT][T::DT][4];
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
  OnlineSoftmax<T> sm;
  sm.init();

  const int warp_row = warp * (16 * T::MT);
  const float scale_log2 = p.scale * 1.44269504088896340736f;

  if (tiles.count > 0) {
    load_tile<T, T::BM>(sq, gq, ldq, q_rows, safe, tid);
#pragma unroll
    for (int s = 0; s < T::STAGES - 1; ++s) {
      if (s < tiles.count) load_kv(s, s);
      cp_async_commit();
    }
    for (int t = 0; t < tiles.count; ++t) {
      int tn = t + T::STAGES - 1;
      if (tn < tiles.count) load_kv(tn, tn % T::STAGES);
      cp_async_commit();
      cp_async_wait<T::STAGES - 1>();
      __syncthreads();
      const int stage = t % T::STAGES;
      const Elem* sk = skv + (2 * stage) * T::KV_ELEMS;
      const Elem* sv = sk + T::KV_ELEMS;
      const int k0 = tiles.tile(t) * T::BN;

      float s[T::MT][T::NT][4];
      MmaMainLoop<T>::qk(sq, sk, warp_row, lane, s);

      const bool need_mask = tm.needed(q0, k0, T::BN);
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            int q = q0 + warp_row + mt * 16 + (lane >> 2) + ((e >> 1) << 3);
            int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
            bool vis = !need_mask || tm.visible(q, k);
            float x = s[mt][nt][e];
            if constexpr (T::SILU)
              s[mt][nt][e] = vis ? silu_score(x * p.scale, p.silu_inv_n) : 0.f;
            else
              s[mt][nt][e] = vis ? x * scale_log2 : -INFINITY;
          }
      if constexpr (!T::SILU) sm.update(s, o);
      MmaMainLoop<T>::pv(s, sv, lane, o);
      __syncthreads();
    }
    cp_async_wait<0>();
  }

  store_output<T>(p, b, h, q_start, q0, q_rows, warp_row, lane, sm, o);
}

// ---------------------------------------------------------------------------------------------
// Variant 2 (fa2-v2*): the same roles (tile list, mask, softmax, epilogue) with a leaner main loop.
//   - one __syncthreads per KV tile: the next tile's cp.async goes out after the barrier, into the
//     stage that every warp finished reading in the previous iteration (v1: two barriers);
//   - a STAGES-deep K/V ring (3 for BN=128: 32 KB Q + 3 x 64 KB K/V = 224 KB, one CTA per SM);
//   - Q fragments in registers (Q_IN_REGS, 16-row warps: 32 registers at D=128), read once;
//   - raw scores: masking only on boundary tiles, scale * log2(e) folded into one FFMA before ex2.approx;
//   - mma.sync is a plain (non-volatile) asm, so the compiler may interleave it with ldmatrix.
// Needs scale > 0 (the row max is taken on raw scores); the host falls back to v1 otherwise.
template <typename Elem, int D, int BM, int BN, int NWARPS, int STAGES, bool Q_IN_REGS_, bool LAZY_RESCALE_ = false,
          bool PACK_P_ = false, bool IDX_PREFETCH_ = false, int XOR_ADDR_ = 0>
struct FwdTraitsV2 : FwdTraits<Elem, D, BM, BN, NWARPS, STAGES, false> {
  static constexpr bool Q_IN_REGS = Q_IN_REGS_;
  static constexpr bool LAZY_RESCALE = LAZY_RESCALE_;  // fa2-v3: skip O *= corr when no max moved
  static constexpr bool PACK_P = PACK_P_;              // fa2-v4: P -> 16-bit A fragments before P.V
  static constexpr bool IDX_PREFETCH = IDX_PREFETCH_;  // fa2-v4: next tiles' KV index in registers
  static constexpr int XOR_ADDR = XOR_ADDR_;  // fa2-v4: Q K^T ldmatrix address = lane base + (k-step ^ x); 2: + asm fence
  static_assert(!IDX_PREFETCH || STAGES == 2, "the index prefetch ring is written for 2 stages");
  static constexpr bool V2 = true;
  static_assert(!Q_IN_REGS || FwdTraits<Elem, D, BM, BN, NWARPS, STAGES, false>::MT == 1,
                "Q in registers only for 16-row warps (32 rows would take 64 more registers)");
};

template <class T>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS) attention_fwd_kernel_v2(const FwdParams p) {
  using Elem = typename T::Elem;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Elem* sq = reinterpret_cast<Elem*>(smem_raw);
  Elem* skv = sq + T::Q_ELEMS;  // stage s: K at skv + 2*s*KV_ELEMS, V right after

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const QueryTile qt = block_query_tile<T::BM>(p);
  if (!qt.live()) return;  // varlen: this sequence is shorter than the mask's rows
  const int b = qt.b, h = qt.h, hk = qt.hk, i = qt.i, q_start = qt.q_start, k_start = qt.k_start, len_k = qt.len_k;
  const int q0 = qt.q0, q_rows = qt.q_rows, kv_limit = qt.kv_limit;
  const TileMask tm = qt.tm;
  const KvTileList tiles = make_tile_list<T::BN>(p, b, h, i, kv_limit);

  const int64_t ldq = int64_t(p.heads_q) * T::D, ldk = int64_t(p.heads_kv) * T::D;
  const Elem* gq = static_cast<const Elem*>(p.q) + (int64_t(q_start) + q0) * ldq + int64_t(h) * T::D;
  const Elem* gk = static_cast<const Elem*>(p.k) + int64_t(k_start) * ldk + int64_t(hk) * T::D;
  const Elem* gv = static_cast<const Elem*>(p.v) + int64_t(k_start) * ldk + int64_t(hk) * T::D;
  const Elem* safe = static_cast<const Elem*>(p.q);

  auto load_kv_at = [&](int kv_tile, int stage) {
    int k0 = kv_tile * T::BN;
    int rows = min(T::BN, len_k - k0);
    load_tile<T, T::BN>(skv + (2 * stage) * T::KV_ELEMS, gk + int64_t(k0) * ldk, ldk, rows, safe, tid);
    load_tile<T, T::BN>(skv + (2 * stage + 1) * T::KV_ELEMS, gv + int64_t(k0) * ldk, ldk, rows, safe, tid);
  };
  auto load_kv = [&](int t, int stage) { load_kv_at(tiles.tile(t), stage); };

  float o[T::MT][T::DT][4];
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
  OnlineSoftmax<T> sm;
  sm.init();

  const int warp_row = warp * (16 * T::MT);
  const float scale_log2 = p.scale * 1.44269504088896340736f;

  if (tiles.count > 0) {
    load_tile<T, T::BM>(sq, gq, ldq, q_rows, safe, tid);  // in the first group, with tile 0
    // fa2-v4 (IDX_PREFETCH, 2 stages): the KV tile ids of tiles t and t+1 live in registers and the
    // id of t+2 is read one whole iteration before its cp.async needs it (sparse heads: a global
    // load of the CSR row that v2/v3 wait on right before issuing the copies).
    int cur_tile = 0, next_tile = 0;
    if constexpr (T::IDX_PREFETCH) {
      cur_tile = tiles.tile(0);
      next_tile = tiles.tile(min(1, tiles.count - 1));
      load_kv_at(cur_tile, 0);
      cp_async_commit();
    } else {
#pragma unroll
      for (int s = 0; s < T::STAGES - 1; ++s) {
        if (s < tiles.count) load_kv(s, s);
        cp_async_commit();
      }
    }
    uint32_t qf[T::Q_IN_REGS ? T::MT : 1][T::Q_IN_REGS ? T::KT : 1][4];
    for (int t = 0; t < tiles.count; ++t) {
      int after_tile = 0;
      if constexpr (T::IDX_PREFETCH) after_tile = tiles.tile(min(t + 2, tiles.count - 1));
      cp_async_wait<T::STAGES - 2>();  // this thread's copies of tile t (and Q) have landed
      __syncthreads();                 // everyone's have; and every warp is done with tile t-1
      if constexpr (T::Q_IN_REGS)
        if (t == 0) MmaMainLoop<T>::load_q(sq, warp_row, lane, qf);
      const int tn = t + T::STAGES - 1;
      if constexpr (T::IDX_PREFETCH) {
        if (tn < tiles.count) load_kv_at(next_tile, tn % T::STAGES);
      } else {
        if (tn < tiles.count) load_kv(tn, tn % T::STAGES);  // into the stage tile t-1 used
      }
      cp_async_commit();
      const int stage = t % T::STAGES;
      const Elem* sk = skv + (2 * stage) * T::KV_ELEMS;
      const Elem* sv = sk + T::KV_ELEMS;
      const int k0 = (T::IDX_PREFETCH ? cur_tile : tiles.tile(t)) * T::BN;
      if constexpr (T::IDX_PREFETCH) cur_tile = next_tile, next_tile = after_tile;

      float s[T::MT][T::NT][4];
      LaneAddr la;
      if constexpr (T::XOR_ADDR != 0) {
        la = lane_addr<T>(sq, warp_row, lane);
        if constexpr (T::XOR_ADDR == 2) asm volatile("" : "+r"(la.q), "+r"(la.k), "+r"(la.xqv), "+r"(la.xk));
      }
      if constexpr (T::XOR_ADDR != 0)
        qk_xor<T>(la, smem_u32(sk), s);
      else if constexpr (T::Q_IN_REGS)
        MmaMainLoop<T>::qk_regs(qf, sk, lane, s);
      else
        MmaMainLoop<T>::qk(sq, sk, warp_row, lane, s);

      if (tm.needed(q0, k0, T::BN)) {
#pragma unroll
        for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              int q = q0 + warp_row + mt * 16 + (lane >> 2) + ((e >> 1) << 3);
              int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
              if (!tm.visible(q, k)) s[mt][nt][e] = -INFINITY;
            }
      }
      sm.template update_raw<T::LAZY_RESCALE>(s, o, scale_log2);
      if constexpr (T::PACK_P) {
        uint32_t pa[T::MT][T::BN / 16][4];
        pack_p<T>(s, pa);
        pv_packed<T>(pa, sv, lane, o);  // (a pv_xor with the V lane base spilled 64 B: the 8 V chunk offsets stay)
      } else {
        MmaMainLoop<T>::pv(s, sv, lane, o);
      }
    }
    cp_async_wait<0>();
  }
  store_output<T>(p, b, h, q_start, q0, q_rows, warp_row, lane, sm, o);
}

}  // namespace bsattn::cuda::fwd

#include "kernels/attention_fwd_sm90.cuh"

// ---------------------------------------------------------------------------------------------
// Host side: launch one instantiation, and the per-dtype dispatch over head dim, block_q, score
// function and variant (instantiated once per dtype in attention_fwd_<dtype>.cu).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/attention_fwd.h"  // device_cc, device_sm_count, ws_sched_block
#include "kernels/cuda_check.h"
#include "lib/error.h"

namespace bsattn::cuda::fwd {

template <class T>
void launch(const FwdParams& p, cudaStream_t stream) {
  auto kernel = [] {
    if constexpr (T::SM90) {
      if constexpr (T::PERSISTENT) return attention_fwd_kernel_sm90_tma_ws<T>;
      else if constexpr (T::TMA) return attention_fwd_kernel_sm90_tma<T>;
      else if constexpr (T::OVERLAP) return attention_fwd_kernel_sm90_ov<T>;
      else return attention_fwd_kernel_sm90<T>;
    }
    else if constexpr (T::V2) return attention_fwd_kernel_v2<T>;
    else return attention_fwd_kernel<T>;
  }();
  static bool configured = false;  // per instantiation; the attribute is per function
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::SMEM_LAUNCH));
    configured = true;
  }
  dim3 grid((p.q_len + T::BM - 1) / T::BM, p.heads_q, p.batch);
  if constexpr (T::SM90 && T::PERSISTENT) {  // one CTA per multiprocessor, looping over the items
    const int64_t items = int64_t(grid.x) * grid.y * grid.z;
    int64_t ctas = device_sm_count();
    // BSATTN_PERSISTENT_CTAS=n (tests): n CTAs, so that each takes many items
    if (const char* e = std::getenv("BSATTN_PERSISTENT_CTAS")) ctas = std::max(1, std::atoi(e));
    grid = dim3(unsigned(std::min<int64_t>({items, ctas, WS_MAX_CTAS})), 1, 1);
  }
  if constexpr (T::SM90 && T::TMA) {
    Sm90TmaParams tp = make_tma_params<T>(p);
    if constexpr (T::PERSISTENT) tp.sched = ws_sched_block();
    kernel<<<grid, T::THREADS, T::SMEM_LAUNCH, stream>>>(tp);
  } else {
    kernel<<<grid, T::THREADS, T::SMEM_LAUNCH, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH("attention_fwd_kernel");
}

template <class Elem, int D, int BM, bool SILU>
void launch_variant(const FwdParams& p, const std::string& v, cudaStream_t s) {
  if (v.rfind("wg-", 0) == 0) {  // Hopper wgmma main loop (attention_fwd_sm90.cuh)
    if (device_cc() != 90)
      throw UsageError("kernel " + v + " needs an sm_90 GPU (H100/H200); this one is sm_" +
                       std::to_string(device_cc()) + " (use an fa2-* kernel)");
    if constexpr (!SILU) {
      if (!(p.scale > 0.f)) throw UsageError("kernel " + v + " needs softmax scale > 0 (use fa2-w4)");
      if (v == "wg-n64") return launch<FwdTraitsSm90<Elem, D, BM, 64, 3>>(p, s);
      if (v == "wg-n64-ov") return launch<FwdTraitsSm90<Elem, D, BM, 64, 3, true>>(p, s);
      if (v.rfind("wg-tma", 0) == 0) {  // the TMA kernels (check_fwd_supported has vetted the name)
        if (p.block_kv % 128 != 0) throw UsageError("kernel " + v + " needs block_kv a multiple of 128 (use wg-n64)");
        if (v == "wg-tma-s2") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true>>(p, s);
        if (v == "wg-tma-s2e") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, false, true>>(p, s);
        if (v == "wg-tma-ws") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true>>(p, s);
        if (v == "wg-tma-ws-ov") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true, false, 1>>(p, s);
        if (v == "wg-tma-ws-pp") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true, false, 2>>(p, s);
        if (v == "wg-tma-ws-ppv") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true, false, 2, true>>(p, s);
        if (v == "wg-tma-ws-ppo")
          return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true, false, 2, true, true>>(p, s);
        if (v == "wg-tma-ws-ppf")
          return launch<FwdTraitsSm90<Elem, D, BM, 128, 2, false, true, true, false, 2, true, true, true>>(p, s);
        if constexpr (BM * D * 2 + 3 * 2 * 128 * D * 2 + 1024 + 56 <= 227 * 1024)
          return launch<FwdTraitsSm90<Elem, D, BM, 128, 3, false, true>>(p, s);
      }
      if (v == "wg-n128" || v == "wg-n128-s3") {
        if (p.block_kv % 128 != 0) throw UsageError("kernel " + v + " needs block_kv a multiple of 128 (use wg-n64)");
        if (v == "wg-n128") return launch<FwdTraitsSm90<Elem, D, BM, 128, 2>>(p, s);
        if constexpr (BM * D * 2 + 3 * 2 * 128 * D * 2 + 1024 <= 227 * 1024)
          return launch<FwdTraitsSm90<Elem, D, BM, 128, 3>>(p, s);
      }
    }
  }
  if constexpr (BM == 128 && !SILU) {
    // Default: the fastest measured shape that fits (results/forward-h100.md, H100).
    if (v.empty()) return launch_variant<Elem, D, BM, SILU>(p, p.scale > 0.f ? "fa2-v4-w4-h" : "fa2-w4", s);
    if (v.rfind("fa2-v2", 0) == 0) {
      if (!(p.scale > 0.f)) throw UsageError("kernel " + v + " needs softmax scale > 0 (use fa2-w4)");
      if (v == "fa2-v2" || v == "fa2-v2-s2") {
        if (p.block_kv % 128 != 0) throw UsageError("kernel " + v + " needs block_kv a multiple of 128");
        if (v == "fa2-v2") return launch<FwdTraitsV2<Elem, D, BM, 128, 8, 3, true>>(p, s);
        return launch<FwdTraitsV2<Elem, D, BM, 128, 8, 2, true>>(p, s);
      }
      if (v == "fa2-v2-w4") return launch<FwdTraitsV2<Elem, D, BM, 64, 4, 2, false>>(p, s);
      if (v == "fa2-v2-w8") return launch<FwdTraitsV2<Elem, D, BM, 64, 8, 2, false>>(p, s);
      if (v == "fa2-v2-n64") return launch<FwdTraitsV2<Elem, D, BM, 64, 8, 3, true>>(p, s);
    }
    if (v.rfind("fa2-v4", 0) == 0) {
      if (!(p.scale > 0.f)) throw UsageError("kernel " + v + " needs softmax scale > 0 (use fa2-w4)");
      if (v == "fa2-v4-w4") return launch<FwdTraitsV2<Elem, D, BM, 64, 4, 2, false, true, true, true, 1>>(p, s);
      if (v == "fa2-v4-w4-h") return launch<FwdTraitsV2<Elem, D, BM, 64, 4, 2, false, true, true, true, 2>>(p, s);
      if (v == "fa2-v4-w4-p") return launch<FwdTraitsV2<Elem, D, BM, 64, 4, 2, false, true, true, true>>(p, s);
    }
    if (v.rfind("fa2-v3", 0) == 0) {
      if (!(p.scale > 0.f)) throw UsageError("kernel " + v + " needs softmax scale > 0 (use fa2-w4)");
      if (v == "fa2-v3-w4") return launch<FwdTraitsV2<Elem, D, BM, 64, 4, 2, false, true>>(p, s);
      if (v == "fa2-v3-w4-n32") return launch<FwdTraitsV2<Elem, D, BM, 32, 4, 2, false, true>>(p, s);
      if (v == "fa2-v3") {
        if (p.block_kv % 128 != 0) throw UsageError("kernel fa2-v3 needs block_kv a multiple of 128");
        return launch<FwdTraitsV2<Elem, D, BM, 128, 8, 2, true, true>>(p, s);
      }
    }
  }
  if (v == "fa2-w8" || v.empty()) return launch<FwdTraits<Elem, D, BM, 64, BM / 16, 2, SILU>>(p, s);
  if constexpr (BM == 128 && !SILU) {
    if (v == "fa2-w4") return launch<FwdTraits<Elem, D, BM, 64, 4, 2, SILU>>(p, s);
    if (v == "fa2-w8-n128") {
      if (p.block_kv % 128 != 0) throw UsageError("kernel fa2-w8-n128 needs block_kv a multiple of 128");
      return launch<FwdTraits<Elem, D, BM, 128, 8, 2, SILU>>(p, s);
    }
  }
  throw UsageError("kernel variant '" + v + "' is not available for this problem (block_q " +
                   std::to_string(BM) + ", head_dim " + std::to_string(D) + (SILU ? ", silu" : "") +
                   "); see kernel_variants()");
}

template <class Elem>
void launch_typed(const FwdParams& p, const std::string& v, cudaStream_t s) {
  auto by_bm = [&](auto d_tag) {
    constexpr int D = decltype(d_tag)::value;
    if (p.block_q == 64)
      return p.silu ? launch_variant<Elem, D, 64, true>(p, v, s) : launch_variant<Elem, D, 64, false>(p, v, s);
    return p.silu ? launch_variant<Elem, D, 128, true>(p, v, s) : launch_variant<Elem, D, 128, false>(p, v, s);
  };
  if (p.head_dim == 64) return by_bm(std::integral_constant<int, 64>{});
  return by_bm(std::integral_constant<int, 128>{});
}

}  // namespace bsattn::cuda::fwd
