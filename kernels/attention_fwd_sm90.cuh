// Hopper (sm_90a) main loop for the forward kernel family: wgmma from shared-memory descriptors.
//
// Same roles as attention_fwd.cuh (KvTileList block iteration, TileMask, OnlineSoftmax, store_output
// epilogue, grid scheduling); only the main loop differs:
//   - one warpgroup (4 warps, 128 threads) per 64 query rows; BM = 128 runs two warpgroups;
//   - S = Q K^T as wgmma m64nBNk16 with both operands in shared memory (K-major, 128-byte swizzle);
//   - O += P V as wgmma m64nDk16 with P in registers (the S accumulators packed to 16 bits: the wgmma
//     accumulator layout of each warp is the mma.sync C layout, which is the A-fragment layout) and V
//     in shared memory read MN-major (transposed by the descriptor, no copy);
//   - K/V tiles arrive by cp.async (all threads) into a STAGES-deep ring; after a thread's copies land
//     it fences them to the async proxy (fence.proxy.async) before the barrier that wgmma reads after.
// Shared-memory tiles are stored as D/64 column blocks of [rows][64 elements] (128-byte rows), 16-byte
// chunk c of row r at chunk c ^ (r % 8): the canonical 128B-swizzle layout, 1024-byte aligned atoms.
// Variants (all: 2 warpgroups for BM = 128, one per 64 rows; registers: ptxas sm_90a, bf16, D = 128):
//   wg-n128      BN 128, 2 cp.async stages, __syncthreads per tile                        230 regs, 0 spill
//   wg-n128-s3   BN 128, 3 stages (225 KB shared memory)                                   233 regs, 0 spill
//   wg-n64       BN 64, 3 stages                                                           177 regs, 0 spill
//   wg-n64-ov    wg-n64 + the next tile's Q K^T issued before this tile's softmax          230 regs, 0 spill
//                (a BN 128 version spilled 788 B and was dropped)
//   wg-tma       BN 128, 3 stages loaded by TMA (thread 0 issues 128B-swizzled boxes), full/empty
//                mbarriers per stage instead of __syncthreads: the two warpgroups drift apart, so
//                one's softmax runs beside the other's wgmma                                206 regs, 0 spill
//   wg-tma-s2    wg-tma with 2 stages (161 KB)                                     206 regs, 0 spill
//   wg-tma-s2e   wg-tma-s2 with thread 0 prefetching the CSR row into L1 and sending Q's TMA before
//                the tile list is read (no trim read when no block can pass kv_limit); same main
//                loop                                                                203 regs, 0 spill
//   wg-tma-ws    persistent and warp-specialized: one CTA per SM of two consumer warpgroups (setmaxnreg
//                232) and a producer warpgroup (40; one lane draws items from a global counter, loads
//                each item's Q into one of two buffers and streams its K/V tiles); the consumers' step
//                is wg-tma-s2's                        168 regs at launch; 12 bytes of spill stores
//                (ptxas of the single kernel), from the producer holding two items since run 7
//   wg-tma-ws-ov wg-tma-ws with the consumers pipelined (ws_pipe_item): Q K^T of tile t and P V of t-1
//                issued together, the softmax of t beside P V of t-1, K and V on their own mbarriers
//   wg-tma-ws-pp wg-tma-ws-ov + ping-pong: the two consumer warpgroups take turns at issuing their
//                wgmma (named barriers 1, 2), one's softmax beside the other's wgmma from each item's
//                first tile on                          232 regs (consumers), 8 bytes of spill stores
//   wg-tma-ws-ppv wg-tma-ws-pp whose producer issues each tile's V after the next tile's K (V_AFTER_K)
//   wg-tma-ws-ppo wg-tma-ws-ppv whose consumers send a full query tile's O by TMA store from an O buffer
//                of their own (O_TMA, store_output_tma; 32 KB more shared memory)   36 bytes of spill
//                stores (the kernel)
//   wg-tma-ws-ppf wg-tma-ws-ppo whose producer and consumers decode an item's number with the
//                launch's precomputed divisors (FAST_DIV, ItemDivs: multiply-high, add, shift) rather
//                than three run-time integer divisions        36 bytes of spill stores; DEFAULT on sm_90
//   (wg-tma-p, a persistent wg-tma-s2 with static round-robin items and the producer inline in warp 0,
//   242 regs, slower than wg-tma-s2 everywhere in run 3, was replaced by wg-tma-ws.)
// Every wg-tma kernel reads a KV tile's id (a global load for sparse rows) only where the tile can need
// masking (TileMask::may_need: the last tiles of a causal or tailed row), not after every Q K^T.
// Log (bf16, B=1, H=16, D=128, block 128, non-causal; effective TFLOP/s of the median launch, L2
// flushed; H200, driver 580.159.04; GPU suite incl. every wg kernel through every sweep, memcheck and
// racecheck PASS), dense / d=0.9 / d=0.1 (S=8192 d=0.09), budget = time(d) / ((d+0.03) x dense):
//   run 1, BSATTN_COMMIT=4d0ad50ecd71 scripts/gpu-check.sh --bench-quick (results/forward-h200-run1.md):
//     fa2-v4-w4-h   S=8192: 311 / 306 / 255;  S=32768: 320 / 312 / 301
//     wg-n128       S=8192: 330 / 308 / 247;  S=32768: 340 / 320 / 304
//     wg-n128-s3    S=8192: 338 / 318 / 256;  S=32768: 349 / 328 / 312
//     wg-n64        S=8192: 296 / 264 / 218;  S=32768: 305 / 273 / 257
//     wg-n64-ov     S=8192: 302 / 263 / 216;  S=32768: 313 / 272 / 258
//   The cp.async kernels tie the warpgroups together at every tile: both run Q K^T, then both run
//   softmax (tensor cores idle), then both P V: ~35% of the tensor rate.
//   run 2, BSATTN_COMMIT=88569c902473 (results/forward-h200-run2.md):
//     wg-tma        S=8192: 600 / 527 / 374;  S=32768: 563 / 535 / 518   budget 0.84-1.22
//     wg-tma-s2     S=8192: 594 / 563 / 373;  S=32768: 559 / 538 / 524   budget 0.82-1.21
//     (fa2-v4-w4-h 311 / 306 / 258 and 320 / 312 / 299; wg-n128-s3 339 / 320 / 259 and 349 / 331 / 311
//     in the same run.) Decoupling the warpgroups is worth 1.7x. Over budget: wg-tma-s2 at S=8192 at
//     every density (1.02 at d=0.91 up to 1.21 at d=0.09), at S=32768 at most 1.01. A query tile at
//     S=8192 has 64 x d KV tiles (6 at d=0.09), and the per-CTA prologue (Q and first K/V by TMA,
//     mbarrier setup) and epilogue are not hidden: one 161 KB CTA per SM, so nothing overlaps them.
//   run 3 and two experiments, 2026-12-01 (results/forward-h200-20261201-experiments.md):
//     wg-tma-p      S=8192: 576 / 514 / 359;  S=32768: 556 / 513 / 488   budget 0.88-1.22
//     (wg-tma-s2 596 / 552 / 373 and 570 / 543 / 527 in the same run, commit 228d9e6c2ac6). The static
//     round-robin of items probably loses more to unequal sums of random row lengths than the overlap
//     of prologue and epilogue gains. Tried on wg-tma and reverted (sparse 6-7% slower at d=0.91, d=0.09
//     unchanged): Q's TMA before the tile list with the KV tile ids read one iteration ahead; tile ids
//     32 at a time in warp registers; a launch order of each head's query tiles by row length (no
//     measurable change against the natural order).
//   run 4, BSATTN_COMMIT=034a155ab653 BSATTN_FWD_VARIANTS=wg-tma-s2,wg-tma-s2e scripts/gpu-check.sh
//   --no-bench (results/forward-h200-s2e.md; memcheck and racecheck of wg-tma-s2e clean):
//     wg-tma-s2     S=8192: 596 / 559 / 369;  S=32768: 575 / 550 / 532   budget 0.83-1.22
//     wg-tma-s2e    S=8192: 602 / 574 / 385;  S=32768: 571 / 549 / 529   budget 0.83-1.18
//     The prologue's dependent reads (head type, row length, last entry) were one CTA-wide wait
//     each before the first K/V load; with 6 tiles per CTA (S=8192, d=0.09) that is ~4% of the time.
//     Still over budget at S=8192 (1.02 at d=0.91 to 1.18 at d=0.09): through d=0.09 and 0.91,
//     time(d) ~ 53 us + 0.895 ms x d, and the budget allows 0.03 x 0.913 ms = 27 us of fixed cost;
//     53 us over 7.8 waves of CTAs is ~7 us per CTA (prologue, first loads, pipeline fill, epilogue).
//   run 5, BSATTN_COMMIT=a5ab5d4137e3 BSATTN_FWD_VARIANTS=wg-tma-s2e,wg-tma-ws scripts/gpu-check.sh
//   (results/forward-h200-ws.md; memcheck and racecheck of both clean; bench grid with wg-tma-ws in
//   results/bench-nvidia-h200-20261201-wg-tma-ws.*):
//     wg-tma-s2e    S=8192: 605 / 594 / 395;  S=32768: 581 / 574 / 546   budget 0.82-1.16
//     wg-tma-ws     S=8192: 618 / 590 / 411;  S=32768: 597 / 568 / 573   budget 0.81-1.14
//     Skipping the per-tile id read (may_need) is most of the change against run 4 (S=8192 d=0.91: 574
//     -> 594 for wg-tma-s2e; that read sat between Q K^T's wait and the softmax). wg-tma-ws adds 2-4% at
//     dense and low density; in the bench grid D=64 sparse gains 10-19% over run 4's wg-tma-s2e.
//     S=8192 stays over budget below d=0.9 (1.14 at d=0.09): ncu on wg-tma-s2e at d=0.09 (results/ncu/)
//     reads 127 MB from DRAM (Q, K, V once, O written: 4 x 32 MB), 16% of its bandwidth; that traffic
//     alone is ~28 us at 4.5 TB/s, about the 0.03 x 0.889 ms = 27 us the budget allows beyond d x dense,
//     so the budget at S=8192 asks for the data movement to hide completely under the compute.
//   run 6, BSATTN_COMMIT=35edb2444a11 BSATTN_FWD_VARIANTS=wg-tma-s2e,wg-tma-ws
//   BSATTN_SANITIZE_WG=wg-tma-ws scripts/gpu-check.sh --no-bench (results/forward-h200-ws-epilogue.md;
//   memcheck and racecheck of wg-tma-ws clean): the epilogue stores full 32-byte sectors of O (ncu of
//   run 5's wg-tma-ws, results/ncu/: O's 4-byte stores made 1048576 excess half sectors, 48% of all):
//     wg-tma-s2e    S=8192: 610 / 604 / 418;  S=32768: 580 / 579 / 572   budget 0.78-1.11
//     wg-tma-ws     S=8192: 602 / 588 / 432;  S=32768: 573 / 562 / 579   budget 0.76-1.05
//     wg-tma-ws is within budget at S=32768 and at S=8192 from d=0.41 up (0.99-1.00); below that
//     1.01 (d=0.3), 1.02 (d=0.2), 1.05 (d=0.09). Dense differs by 1-3% between runs 5 and 6 (618 and
//     602 at S=8192) with no change to its loop.
//   run 7, BSATTN_COMMIT=6ec58e0 BSATTN_FWD_VARIANTS=wg-tma-s2e,wg-tma-ws BSATTN_SANITIZE_WG=wg-tma-ws
//   scripts/gpu-check.sh --no-bench (results/forward-h200-ws-draw.md; memcheck and racecheck of wg-tma-ws
//   clean; experiments in results/forward-h200-ws-draw-experiments.md): wg-tma-ws's producer draws the
//   next item (counter, head type, CSR reads) before its current item's last tile waits for a stage,
//   not after issuing it, and publishes the item's tile-list shape in its slot (ItemSlot), so the
//   consumers read nothing else:
//     wg-tma-s2e    S=8192: 609 / 573 / 417;  S=32768: 578 / 573 / 567   budget 0.79-1.11
//     wg-tma-ws     S=8192: 609 / 569 / 444;  S=32768: 581 / 571 / 591   budget 0.76-1.04
//     The draw position alone moved S=8192 d=0.09 from 430-433 to 442-447 (budget 1.07 -> 1.03-1.04);
//     the slots alone changed nothing measurable; drawing 2-3 tiles ahead is the same as 1; a
//     longest-first draw order (over all items, or within each head) was 2-3% slower at d=0.09.
//   run 8, BSATTN_COMMIT=e9d1e34 BSATTN_FWD_VARIANTS=wg-tma-ws,wg-tma-ws-ov,wg-tma-ws-pp
//   BSATTN_SANITIZE_WG=wg-tma-ws-pp scripts/gpu-check.sh --no-bench (results/forward-h200-pp.md, with two
//   more S=8192 runs; memcheck and racecheck of wg-tma-ws-pp clean):
//     wg-tma-ws     S=8192: 608 / 574 / 449;  S=32768: 591 / 565 / 586   budget 0.78-1.03
//     wg-tma-ws-ov  S=8192: 675 / 622 / 425;  S=32768: 626 / 649 / 631   budget 0.77-1.20
//     wg-tma-ws-pp  S=8192: 676 / 642 / 461;  S=32768: 627 / 681 / 649   budget 0.75-1.11
//     The pipelined loop alone lifts dense by 11% and loses at low density (each item now starts and
//     ends with a lone Q K^T and a lone P V, its softmax not hidden); ping-pong gives the tensor cores to
//     the other warpgroup there. wg-tma-ws-pp is faster than wg-tma-ws at every density, but its
//     budget at S=8192 d=0.09 is 1.11-1.12 against its own, faster, dense time (0.112 ms against
//     wg-tma-ws's 0.115 ms; dense 0.810 against 0.903 ms).
//   Tried after run 8 (results/forward-h200-pps.md): wg-tma-ws-pps, -pp's pipeline running on across
//   items (an item's first Q K^T issued with the previous item's last P V, the epilogue after). The
//   first build issued that P V on one side of a branch and ptxas serialized every wgmma of the kernel
//   (C7520: 479 TFLOP/s dense); with two straight-line paths it was 643 dense and 442 at d=0.09 against
//   -pp's 678 and 461 in the same run, so it was dropped (the code is at f9e7817).
//   run 9, BSATTN_COMMIT=0ac8776 BSATTN_FWD_VARIANTS=wg-tma-ws-pp,wg-tma-ws-ppv scripts/gpu-check.sh
//   (results/forward-h200-ppv.md; memcheck and racecheck of wg-tma-ws-ppv clean; the profile and the
//   experiments before it in results/forward-h200-ppv-experiments.md): ncu of -pp at S=8192 d=0.09 had
//   the consumers waiting for K 8% of their time (dense: 2%): the producer issued a tile's K, then
//   waited for V's stage, which frees only after the consumers' next softmax, before the next K.
//   wg-tma-ws-ppv issues each V after the next tile's K:
//     wg-tma-ws-pp  S=8192: 666 / 627 / 459;  S=32768: 615 / 612 / 634   budget 0.75-1.10
//     wg-tma-ws-ppv S=8192: 664 / 632 / 482;  S=32768: 609 / 665 / 636   budget 0.74-1.04
//   (two more rounds: d=0.09 0.1063-0.1069 ms against 0.1117). Both have each CTA's first item as its
//   own number with Q's load before the tile-list reads (within noise alone). An L2 prefetch of K/V
//   4 tiles ahead (cp.async.bulk.prefetch.tensor) was slower at every density and was dropped.
//   Tried after run 9 (results/forward-h200-ppv-experiments.md, call 5): wg-tma-ws-ppk, a third K stage
//   (K and V in rings of their own, 224 KB), was 2.5-3% slower than -ppv at S=8192 d=0.09 and equal
//   dense; dropped (the code is at 8b48576).
//   run 10, BSATTN_COMMIT=084513c BSATTN_FWD_VARIANTS=wg-tma-ws-ppv,wg-tma-ws-ppo scripts/gpu-check.sh
//   --no-sanitizer (results/forward-h200-ppo.md; memcheck and racecheck of wg-tma-ws-ppo clean at
//   8bc5970, the same kernel code, results/gpu-check-2026-12-01-8bc5970.log; the calls before it in
//   results/forward-h200-ppo-experiments.md): every ws kernel's tile list reads a sparse row's length
//   beside the head type and skips the read of its last entry when nothing is trimmed (one dependent
//   global read per query tile instead of three: -ppv at d=0.09 0.1071-0.1076 -> 0.1037 ms between two
//   calls), and -ppo stores O by TMA:
//     wg-tma-ws-ppv S=8192: 674 / 642 / 496;  S=32768: 612 / 604 / 631   budget 0.75-1.03
//     wg-tma-ws-ppo S=8192: 674 / 642 / 510;  S=32768: 611 / 634 / 646   budget 0.73-1.001
//   (two more rounds: d=0.09 0.1021-0.1022 ms against 0.1037-0.1042, d=0.05 0.0618 against 0.0645).
//   Tried before run 10 and dropped: wg-tma-ws-ppe (an item's epilogue while the next item's first
//   Q K^T runs: 4.5% slower dense, 2% at d=0.09; code at 55e7d1b on branch exp/ppe) and wg-tma-ws-ppn
//   (the next slot read and decoded under the last P V, the next Q waited for after the epilogue: 44 B
//   of spills, 6.7% slower dense, 6% at d=0.09; edc9cc4). Both slowed the dense loop, which they do not
//   change: the per-tile loop is sensitive to what else the consumers keep in registers.
//   After run 10, the profile of -ppo at S=8192 d=0.09 (results/forward-h200-ppo-experiments.md, call
//   5): the code run once per item is 27% of the warp samples: epilogue 5.9%, first softmax 5.2%, last
//   P V 4.5%, first Q K^T 3.7%, the item's set-up (slot decode: run-time integer divisions) 3.2%, waits
//   for the first K and the next Q 2.0% each.
//   call 1 of 2026-12-02, BSATTN_COMMIT=0e6fe9d BSATTN_FWD_VARIANTS=wg-tma-ws-ppo,wg-tma-ws-ppq,
//   wg-tma-ws-ppf,wg-tma-ws-ppqf scripts/gpu-check.sh --no-bench --no-sanitizer (branch exp/next;
//   results/forward-h200-ppf-0e6fe9d.md, results/forward-h200-ppf-experiments.md): -ppf (the divisions
//   by precomputed divisors) against -ppq (the producer draws the next item three tiles early and sends
//   its Q then when its buffer is free; 90 B of spills) and both together:
//     wg-tma-ws-ppo  S=8192: 680 / 644 / 510;  S=32768: 617 / 645 / 650   budget 0.73-1.010
//     wg-tma-ws-ppf  S=8192: 678 / 649 / 522;  S=32768: 620 / 617 / 651   budget 0.74-1.001
//     wg-tma-ws-ppq  S=8192: 675 / 639 / 497;                              (d=0.09: 1.03)
//   (two more rounds: d=0.094 -ppf 0.0987-0.0990 ms against -ppo 0.1006-0.1014, -ppq 0.1036-0.1037,
//   -ppqf, both, 0.1002). -ppq was slower at every density and is dropped (branch exp/earlyq, a8540ff).
//   run 11, BSATTN_COMMIT=a69d78b BSATTN_FWD_VARIANTS=wg-tma-ws-ppo,wg-tma-ws-ppf scripts/gpu-check.sh
//   (results/forward-h200-ppf.md; memcheck and racecheck of -ppf clean, results/gpu-check-2026-12-02-
//   a69d78b.log), -ppf the default:
//     wg-tma-ws-ppo  S=8192: 681 / 646 / 511;  S=32768: 610 / 605 / 651   budget 0.72-1.07
//     wg-tma-ws-ppf  S=8192: 681 / 648 / 525;  S=32768: 609 / 598 / 650   budget 0.72-0.998
//   ncu at d=0.09 (results/ncu/ncu-h200-a19c24f-*): 2.8% fewer instructions than -ppo, 4.5% less time.
//   S=32768 runs of more than a few ms settle at a 1700 MHz SM clock (max 1980), dense and sparse alike
//   (results/forward-h200-ppf-experiments.md, call 3).
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cudaTypedefs.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda_check.h"
#include "lib/error.h"

namespace bsattn::cuda::fwd {

template <typename Elem_, int D_, int BM_, int BN_, int STAGES_, bool OVERLAP_ = false, bool TMA_ = false,
          bool PERSISTENT_ = false, bool EARLY_ = false, int PIPE_ = 0, bool V_AFTER_K_ = false,
          bool O_TMA_ = false, bool FAST_DIV_ = false>
struct FwdTraitsSm90 : FwdTraits<Elem_, D_, BM_, BN_, BM_ / 16, STAGES_, false> {
  using Base = FwdTraits<Elem_, D_, BM_, BN_, BM_ / 16, STAGES_, false>;
  static constexpr bool SM90 = true;
  // wg-*-ov: the next tile's Q K^T runs on the tensor cores while this tile's softmax runs (two S
  // accumulators; the loop is unrolled by two so that they swap roles without copies).
  static constexpr bool OVERLAP = OVERLAP_;
  // wg-tma*: Q/K/V tiles arrive by TMA (one thread issues them) and mbarriers replace the per-tile
  // __syncthreads: the two warpgroups run decoupled (one's softmax beside the other's wgmma), coupled
  // only through the STAGES-deep K/V ring.
  static constexpr bool TMA = TMA_;
  // wg-tma-ws: persistent CTAs (one per SM) with a producer warp beside the two consumer warpgroups;
  // items come from a global counter, two Q buffers and item slots (attention_fwd_kernel_sm90_tma_ws).
  static constexpr bool PERSISTENT = PERSISTENT_;
  static constexpr int Q_BUFFERS = PERSISTENT_ ? 2 : 1;
  // wg-tma-s2e: thread 0 prefetches the CSR row into L1 and sends Q's TMA before the tile list is read
  // (head type, then row length: dependent global reads), and the tile list skips the read of the
  // row's last entry when no block can pass kv_limit; the main loop is wg-tma-s2's.
  static constexpr bool EARLY = EARLY_;
  // wg-tma-ws-ov (1) / wg-tma-ws-pp (2): wg-tma-ws with the pipelined consumer loop (ws_pipe_item)
  static constexpr int PIPE = PIPE_;
  // wg-tma-ws-ppv: wg-tma-ws-pp whose producer issues each tile's V after the next tile's K
  static constexpr bool V_AFTER_K = V_AFTER_K_;
  // wg-tma-ws-ppo: wg-tma-ws-ppv whose consumers write a full query tile's O into an O buffer of their
  // own (BM x D, the O map's 128B-swizzled boxes) and send it by TMA store (store_output_tma)
  static constexpr bool O_TMA = O_TMA_;
  // wg-tma-ws-ppf: wg-tma-ws-ppo whose producer and consumers decode an item's number with the launch's
  // precomputed divisors (ItemDivs: a multiply-high, an add and a shift each) rather than three run-time
  // integer divisions
  static constexpr bool FAST_DIV = FAST_DIV_;
  static constexpr bool V2 = false;
  static constexpr int WARPGROUPS = BM_ / 64;
  // wg-tma-ws: + a producer warpgroup (a lone producer warp would cap every thread at 168 registers:
  // each of the 4 SM sub-partitions holds 16384 registers and gets 3 of the 9 warps)
  static constexpr int THREADS = Base::THREADS + (PERSISTENT_ ? 128 : 0);
  // slack to align the tiles to 1024 bytes, then the mbarriers of wg-tma (q, full[S], empty[S])
  // (+ wg-tma-ws-ov/-pp: full/empty barriers of V apart from K's; wg-tma-ws-ppo: the O buffer, BM x D)
  static constexpr int SMEM_LAUNCH = Base::SMEM_BYTES + (Q_BUFFERS - 1 + (O_TMA_ ? 1 : 0)) * Base::Q_ELEMS * 2 +
                                     1024 + 8 * (2 * Q_BUFFERS + 2 * STAGES_ + (PIPE_ ? 2 * STAGES_ : 0));
  static constexpr int MIN_BLOCKS = 1;
  static_assert(BM_ % 64 == 0, "one warpgroup per 64 query rows");
  static_assert(BN_ == 64 || BN_ == 128, "wgmma N = BN: 64 or 128");
  static_assert(D_ == 64 || D_ == 128, "wgmma N = D for P V: 64 or 128");
  static_assert(Base::MT == 1, "16 rows per warp");
  static_assert(SMEM_LAUNCH <= 227 * 1024, "shared memory per CTA");
  static_assert(PIPE_ == 0 || PERSISTENT_, "the pipelined consumer loop is wg-tma-ws's");
  static_assert(!V_AFTER_K_ || PIPE_ != 0, "V apart from K needs V's own barriers (T::PIPE)");
  static_assert(!O_TMA_ || PERSISTENT_, "the O buffer is wg-tma-ws's");
  static_assert(!FAST_DIV_ || PERSISTENT_, "the item divisors are wg-tma-ws's");
};

template <typename Elem, int N>
struct Wgmma;
// (N = 64 / 128, for bf16 and f16 alike (TYPE is the PTX type); `ss` takes both operands from shared
// memory, K-major; `rs_mn` takes A from registers and B MN-major from shared memory. Accumulator element
// d[j][e] is the mma.sync C fragment element e of the warp's n8 tile j.)
#define BSATTN_WGMMA_FOR(ELEM, TYPE) \
template <> \
struct Wgmma<ELEM, 64> { \
  /* D[64 x 64] (+)= A[64 x 16] (shared, K-major) . B[16 x 64] (shared, K-major: B^T stored [64][16]) */ \
  __device__ __forceinline__ static void ss(float (&d)[8][4], uint64_t da, uint64_t db, int accumulate) { \
    asm volatile( \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n" \
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]) \
        : "l"(da), "l"(db), "r"(accumulate)); \
  } \
  /* D[64 x 64] += A[64 x 16] (registers, mma.sync A-fragment layout per warp) . B[16 x 64] (shared, MN-major) */ \
  __device__ __forceinline__ static void rs_mn(float (&d)[8][4], const uint32_t (&a)[4], uint64_t db) { \
    asm volatile( \
        "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n" \
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db)); \
  } \
}; \
template <> \
struct Wgmma<ELEM, 128> { \
  /* D[64 x 128] (+)= A[64 x 16] (shared, K-major) . B[16 x 128] (shared, K-major: B^T stored [128][16]) */ \
  __device__ __forceinline__ static void ss(float (&d)[16][4], uint64_t da, uint64_t db, int accumulate) { \
    asm volatile( \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n" \
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3]) \
        : "l"(da), "l"(db), "r"(accumulate)); \
  } \
  /* D[64 x 128] += A[64 x 16] (registers, mma.sync A-fragment layout per warp) . B[16 x 128] (shared, MN-major) */ \
  __device__ __forceinline__ static void rs_mn(float (&d)[16][4], const uint32_t (&a)[4], uint64_t db) { \
    asm volatile( \
        "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n" \
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db)); \
  } \
};
BSATTN_WGMMA_FOR(__nv_bfloat16, "bf16")
BSATTN_WGMMA_FOR(__half, "f16")
#undef BSATTN_WGMMA_FOR

// Shared-memory matrix descriptor: start address, leading / stride byte offsets (16-byte units),
// layout 1 = 128-byte swizzle (bits 62-63). Tiles are 1024-byte aligned, so the base offset is 0.
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((saddr & 0x3FFFF) >> 4) | (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Register fences: keep the compiler from moving reads of wgmma accumulators above the wait, or from
// reusing the registers of an in-flight A operand.
template <int R, int C>
__device__ __forceinline__ void fence_regs(float (&x)[R][C]) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j) asm volatile("" : "+f"(x[i][j])::"memory");
}
template <int R, int C>
__device__ __forceinline__ void fence_regs(uint32_t (&x)[R][C]) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j) asm volatile("" : "+r"(x[i][j])::"memory");
}

__device__ __forceinline__ void cp_async_16_s(uint32_t saddr, const void* gmem, bool valid) {
  int src_size = valid ? 16 : 0;  // 0: zero-fill (tails), nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(src_size));
}
// Global [rows][D] (row stride ld elements) -> 128B-swizzled column blocks; rows >= nvalid zero-filled.
template <class T, int ROWS>
__device__ __forceinline__ void load_tile_sw128(uint32_t sbase, const typename T::Elem* g, int64_t ld, int nvalid,
                                                const typename T::Elem* safe, int tid) {
#pragma unroll
  for (int idx = tid; idx < ROWS * T::CHUNKS; idx += T::THREADS) {
    int r = idx / T::CHUNKS, c = idx % T::CHUNKS;
    bool ok = r < nvalid;
    uint32_t dst = sbase + (c >> 3) * (ROWS * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4);
    cp_async_16_s(dst, ok ? g + int64_t(r) * ld + c * 8 : safe, ok);
  }
}

// Masks the scores of the KV tile starting at key k0 where it crosses the sequence end or the causal
// frontier (one warpgroup's 64 rows).
template <class T>
__device__ __forceinline__ void mask_tile(float (&s)[1][T::NT][4], int q0, int k0, const TileMask& tm, int warp_row,
                                          int lane) {
  if (tm.needed(q0, k0, T::BN)) {
#pragma unroll
    for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int q = q0 + warp_row + (lane >> 2) + ((e >> 1) << 3);
        int k = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
        if (!tm.visible(q, k)) s[0][nt][e] = -INFINITY;
      }
  }
}
// The same for tile t of a wg-tma* kernel: only tiles that can need it read the tile's id (a global read
// for sparse rows).
template <class T>
__device__ __forceinline__ void mask_scores(float (&s)[1][T::NT][4], int q0, const KvTileList& tiles, int t,
                                            const TileMask& tm, int warp_row, int lane) {
  if (tm.template may_need<T::BM, T::BN>(t, tiles.count)) mask_tile<T>(s, q0, tiles.tile(t) * T::BN, tm, warp_row, lane);
}

// The two wgmma groups of a tile (issued, not committed): S = Q K^T (both operands in shared memory)
// and O += P V (P from registers).
template <class T>
__device__ __forceinline__ void issue_qk(float (&s)[1][T::NT][4], uint32_t sq_wg, uint32_t sk) {
#pragma unroll
  for (int kt = 0; kt < T::KT; ++kt) {
    uint64_t da = wg_desc(sq_wg + (kt >> 2) * (T::BM * 128) + (kt & 3) * 32, 16, 1024);
    uint64_t db = wg_desc(sk + (kt >> 2) * (T::BN * 128) + (kt & 3) * 32, 16, 1024);
    Wgmma<typename T::Elem, T::BN>::ss(s[0], da, db, kt > 0);
  }
}
template <class T>
__device__ __forceinline__ void issue_pv(float (&o)[1][T::DT][4], const uint32_t (&pa)[1][T::BN / 16][4],
                                         uint32_t sv) {
#pragma unroll
  for (int j = 0; j < T::BN / 16; ++j)
    Wgmma<typename T::Elem, T::D>::rs_mn(o[0], pa[0][j], wg_desc(sv + j * 2048, T::BN * 128, 1024));
}

template <class T, class WhileQk>
__device__ __forceinline__ void wg_tma_tile(uint32_t sq_wg, uint32_t sk, int q0, const KvTileList& tiles, int t,
                                            const TileMask& tm,
                                            int warp_row, int lane, float scale_log2, OnlineSoftmax<T>& sm,
                                            float (&o)[1][T::DT][4], WhileQk&& while_qk) {
  float s[1][T::NT][4];
  wg_fence();
  issue_qk<T>(s, sq_wg, sk);
  wg_commit();
  while_qk();
  wg_wait<0>();
  fence_regs(s[0]);
  mask_scores<T>(s, q0, tiles, t, tm, warp_row, lane);
  sm.template update_raw<true>(s, o, scale_log2);
  uint32_t pa[1][T::BN / 16][4];
  pack_p<T>(s, pa);
  wg_fence();
  issue_pv<T>(o, pa, sk + T::KV_ELEMS * 2);
  wg_commit();
  wg_wait<0>();
  fence_regs(pa[0]);
  fence_regs(o[0]);
}

template <class T>
__global__ void __launch_bounds__(T::THREADS, 1) attention_fwd_kernel_sm90(const FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2;
  extern __shared__ __align__(128) unsigned char smem_sm90[];  // aligned to 1024 below
  const uint32_t sq = (smem_u32(smem_sm90) + 1023u) & ~1023u;
  const uint32_t skv = sq + T::Q_ELEMS * 2;  // stage s: K at skv + 2*s*KV_BYTES, V right after

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
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
    uint32_t sk = skv + 2 * stage * KV_BYTES;
    load_tile_sw128<T, T::BN>(sk, gk + int64_t(k0) * ldk, ldk, rows, safe, tid);
    load_tile_sw128<T, T::BN>(sk + KV_BYTES, gv + int64_t(k0) * ldk, ldk, rows, safe, tid);
  };

  float o[1][T::DT][4];
#pragma unroll
  for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
  OnlineSoftmax<T> sm;
  sm.init();

  const int warp_row = warp * 16;  // warpgroup wg owns rows 64*wg .. 64*wg + 63
  const float scale_log2 = p.scale * 1.44269504088896340736f;
  const uint32_t sq_wg = sq + wg * 64 * 128;  // this warpgroup's 64 rows in each column block of Q

  if (tiles.count > 0) {
    load_tile_sw128<T, T::BM>(sq, gq, ldq, q_rows, safe, tid);  // in the first group, with tile 0
#pragma unroll
    for (int s = 0; s < T::STAGES - 1; ++s) {
      if (s < tiles.count) load_kv(s, s);
      cp_async_commit();
    }
    for (int t = 0; t < tiles.count; ++t) {
      cp_async_wait<T::STAGES - 2>();  // this thread's copies of tile t (and Q) have landed
      fence_proxy_async_smem();        // ... and are visible to wgmma (async proxy)
      __syncthreads();                 // everyone's; and both warpgroups are done with tile t-1
      const int tn = t + T::STAGES - 1;
      if (tn < tiles.count) load_kv(tn, tn % T::STAGES);  // into the stage tile t-1 used
      cp_async_commit();
      // S = Q K^T, masking, softmax, O += P V: the wg-tma kernels' step (only the loads differ)
      wg_tma_tile<T>(sq_wg, skv + 2 * (t % T::STAGES) * KV_BYTES, q0, tiles, t, tm, warp_row, lane, scale_log2, sm,
                     o, [] {});
    }
    cp_async_wait<0>();
  }
  store_output<T>(p, b, h, q_start, q0, q_rows, warp_row, lane, sm, o);
#else
  __trap();  // built for another architecture: the host launches this kernel on sm_90 only
#endif
}


// wg-*-ov main loop. Per tile t (S_cur = Q K_t^T already in registers):
//   wait for PV(t-1); K/V of tile t+1 landed (cp.async + proxy fence + barrier); copies of tile t+2 go out;
//   Q K_{t+1}^T is issued into S_next; softmax of S_cur runs meanwhile (mask, max, exp, sum, pack P);
//   O is rescaled and P V_t issued; wait until Q K_{t+1}^T is done (P V_t may still run).
template <class T>
struct Sm90Overlap {
  using Elem = typename T::Elem;
  static constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2;
  __device__ __forceinline__ static void issue_qk(float (&s)[T::NT][4], uint32_t sq_wg, uint32_t sk) {
    wg_fence();
#pragma unroll
    for (int kt = 0; kt < T::KT; ++kt) {
      uint64_t da = wg_desc(sq_wg + (kt >> 2) * (T::BM * 128) + (kt & 3) * 32, 16, 1024);
      uint64_t db = wg_desc(sk + (kt >> 2) * (T::BN * 128) + (kt & 3) * 32, 16, 1024);
      Wgmma<Elem, T::BN>::ss(s, da, db, kt > 0);
    }
    wg_commit();
  }
};

template <class T>
__global__ void __launch_bounds__(T::THREADS, 1) attention_fwd_kernel_sm90_ov(const FwdParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  using L = Sm90Overlap<T>;
  constexpr uint32_t KV_BYTES = L::KV_BYTES;
  static_assert(T::STAGES >= 3, "tiles t and t+1 are read while t+2 loads");
  extern __shared__ __align__(128) unsigned char smem_sm90[];  // aligned to 1024 below
  const uint32_t sq = (smem_u32(smem_sm90) + 1023u) & ~1023u;
  const uint32_t skv = sq + T::Q_ELEMS * 2;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
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

  auto load_kv = [&](int t) {
    int k0 = tiles.tile(t) * T::BN;
    int rows = min(T::BN, len_k - k0);
    uint32_t sk = skv + 2 * (t % T::STAGES) * KV_BYTES;
    load_tile_sw128<T, T::BN>(sk, gk + int64_t(k0) * ldk, ldk, rows, safe, tid);
    load_tile_sw128<T, T::BN>(sk + KV_BYTES, gv + int64_t(k0) * ldk, ldk, rows, safe, tid);
  };
  auto stage_k = [&](int t) { return skv + 2 * (t % T::STAGES) * KV_BYTES; };

  float o[1][T::DT][4];
#pragma unroll
  for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
  OnlineSoftmax<T> sm;
  sm.init();
  const int warp_row = warp * 16;
  const float scale_log2 = p.scale * 1.44269504088896340736f;
  const uint32_t sq_wg = sq + wg * 64 * 128;

  if (tiles.count > 0) {
    load_tile_sw128<T, T::BM>(sq, gq, ldq, q_rows, safe, tid);
    load_kv(0);
    cp_async_commit();  // group: Q + tile 0
    if (tiles.count > 1) load_kv(1);
    cp_async_commit();  // group: tile 1 (maybe empty)
    cp_async_wait<1>();
    fence_proxy_async_smem();
    __syncthreads();
    float sa[1][T::NT][4], sb[1][T::NT][4];
    L::issue_qk(sa[0], sq_wg, stage_k(0));
    wg_wait<0>();
    fence_regs(sa[0]);

    // One tile: softmax of `cur` (complete) while Q K^T of tile t+1 runs into `nxt`.
    auto step = [&](float (&cur)[1][T::NT][4], float (&nxt)[1][T::NT][4], int t) {
      wg_wait<0>();  // P V_{t-1} done: its V stage may be overwritten, O may be rescaled
      fence_regs(o[0]);
      cp_async_wait<0>();  // this thread's copies of tile t+1
      fence_proxy_async_smem();
      __syncthreads();  // everyone's; every warpgroup is done with tile t-1's stage
      if (t + 2 < tiles.count) load_kv(t + 2);  // into tile t-1's stage
      cp_async_commit();
      const bool more = t + 1 < tiles.count;
      if (more) L::issue_qk(nxt[0], sq_wg, stage_k(t + 1));

      const int k0 = tiles.tile(t) * T::BN;
      float sc[1][T::NT][4];
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) sc[0][nt][e] = cur[0][nt][e];
      mask_tile<T>(sc, q0, k0, tm, warp_row, lane);
      sm.template update_raw<true>(sc, o, scale_log2);
      uint32_t pa[1][T::BN / 16][4];
      pack_p<T>(sc, pa);
      const uint32_t sv = stage_k(t) + KV_BYTES;
      wg_fence();
#pragma unroll
      for (int j = 0; j < T::BN / 16; ++j)
        Wgmma<Elem, T::D>::rs_mn(o[0], pa[0][j], wg_desc(sv + j * 2048, T::BN * 128, 1024));
      wg_commit();
      if (more) {
        wg_wait<1>();  // Q K_{t+1}^T done (committed before P V_t)
        fence_regs(nxt[0]);
      } else {
        wg_wait<0>();
      }
      fence_regs(pa[0]);
    };
    for (int t = 0; t < tiles.count; t += 2) {
      step(sa, sb, t);
      if (t + 1 < tiles.count) step(sb, sa, t + 1);
    }
    wg_wait<0>();
    fence_regs(o[0]);
    cp_async_wait<0>();
  }
  store_output<T>(p, b, h, q_start, q0, q_rows, warp_row, lane, sm, o);
#else
  __trap();
#endif
}


// ---------------------------------------------------------------------------------------------
// wg-tma*: TMA loads and mbarriers.
struct Sm90TmaParams {
  CUtensorMap q, k, v;  // 2D [rows][heads * D] maps, boxes of 64 elements x (BM or BN) rows, 128B swizzle
  CUtensorMap o;        // T::O_TMA: O's map, boxes of 64 elements x 64 rows (one warpgroup's rows)
  FwdParams p;
  // wg-tma-ws: next item and finished CTAs (zero at launch), two spare words, then two item slots
  // (ItemSlot, 16 bytes) per CTA
  unsigned* sched = nullptr;
  ItemDivs divs;  // T::FAST_DIV
};

// wg-tma-ws item slots: one 16-byte store by the producer, one 16-byte load by each consumer thread
// (volatile: the mbarrier orders them, the compiler must not cache or move them).
__device__ __forceinline__ void slot_store(unsigned* slot, const ItemSlot& s) {
  asm volatile("st.volatile.global.v4.s32 [%0], {%1, %2, %3, %4};\n" ::"l"(slot), "r"(s.w), "r"(s.count),
               "r"(s.seg0_end), "r"(s.seg1_begin)
               : "memory");
}
__device__ __forceinline__ ItemSlot slot_load(const unsigned* slot) {
  ItemSlot s;
  asm volatile("ld.volatile.global.v4.s32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(s.w), "=r"(s.count), "=r"(s.seg0_end), "=r"(s.seg1_begin)
               : "l"(slot)
               : "memory");
  return s;
}

__device__ __forceinline__ void prefetch_l1(const void* ptr) {
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(ptr));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Expects `bytes` more on the barrier's current phase without arriving (the arrive comes later).
__device__ __forceinline__ void mbar_expect_tx_only(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\nbra WAIT;\nDONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// One box of the 2D map at (inner element c0, row c1) into shared memory; completes tx on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// wg-tma-ws-ppo: one box from shared memory to the 2D map at (inner element c0, row c1), in this
// thread's bulk group; commit closes the group; wait_read: this thread's groups have read their shared
// memory (the buffer may be written again); wait_all: their writes are done too.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, uint32_t src, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(src)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// Named barriers 1 and 2 order the two consumer warpgroups' wgmma issues in wg-tma-ws-pp (ping-pong): a
// warpgroup waits on its own barrier before issuing, and arrives on the other's after.
__device__ __forceinline__ void named_bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// One work item's K/V tiles for one consumer warpgroup of wg-tma-ws-ov / -pp (T::PIPE): the softmax of
// tile t runs while O += P V of tile t-1 is still on the tensor cores (Q K^T of tile t and P V of t-1
// are issued together), and K and V have their own full/empty barriers, so K's stage is released as
// soon as Q K^T has read it and V's once P V has. With T::PIPE == 2 and two warpgroups, the warpgroups
// take turns at issuing (ping-pong): one's softmax runs beside the other's wgmma from the item's first
// tile on, instead of drifting apart after each item starts in step. g counts the K/V tiles taken over
// all items (stage g % S, phase (g / S) & 1); the item's Q is released (q_empty) after its last Q K^T.
template <class T>
__device__ __forceinline__ void ws_pipe_item(uint32_t sq_wg, uint32_t skv, uint32_t bars_full_k, uint32_t bars_empty_k,
                                             uint32_t bars_full_v, uint32_t bars_empty_v, uint32_t q_empty,
                                             const WorkItem& it, int& g, int wg, int warp_row, int lane,
                                             float scale_log2, OnlineSoftmax<T>& sm, float (&o)[1][T::DT][4]) {
  constexpr int S = T::STAGES;
  constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2;
  constexpr bool PP = T::PIPE == 2 && T::WARPGROUPS == 2;
  auto turn = [&] { if constexpr (PP) named_bar_sync(1 + wg, 256); };
  auto done = [&] { if constexpr (PP) named_bar_arrive(2 - wg, 256); };
  auto release = [&](uint32_t bars_empty, int gt) {
    __syncwarp();
    if (lane == 0) mbar_arrive(bars_empty + 8 * (gt % S));
  };
  const int n = it.tiles.count;
  float s[1][T::NT][4];
  uint32_t pa[1][T::BN / 16][4];
  // tile 0: Q K^T alone
  mbar_wait(bars_full_k + 8 * (g % S), (g / S) & 1);
  turn();
  wg_fence();
  issue_qk<T>(s, sq_wg, skv + 2 * (g % S) * KV_BYTES);
  wg_commit();
  done();
  wg_wait<0>();
  fence_regs(s[0]);
  release(bars_empty_k, g);
  mask_scores<T>(s, it.q0, it.tiles, 0, it.tm, warp_row, lane);
  {
    float corrs[1][2];
    sm.template probs<true>(s, scale_log2, corrs);  // o is still zero: nothing to rescale
  }
  pack_p<T>(s, pa);
  for (int t = 1; t < n; ++t) {
    const int gt = g + t, gp = gt - 1;
    mbar_wait(bars_full_v + 8 * (gp % S), (gp / S) & 1);
    mbar_wait(bars_full_k + 8 * (gt % S), (gt / S) & 1);
    turn();
    wg_fence();
    issue_qk<T>(s, sq_wg, skv + 2 * (gt % S) * KV_BYTES);
    wg_commit();
    issue_pv<T>(o, pa, skv + 2 * (gp % S) * KV_BYTES + KV_BYTES);
    wg_commit();
    done();
    wg_wait<1>();  // Q K^T of tile t (P V of t-1 may still run)
    fence_regs(s[0]);
    release(bars_empty_k, gt);
    mask_scores<T>(s, it.q0, it.tiles, t, it.tm, warp_row, lane);
    float corrs[1][2];
    const bool rescale = sm.template probs<true>(s, scale_log2, corrs);
    wg_wait<0>();  // P V of tile t-1: o and the registers of P are free
    fence_regs(o[0]);
    fence_regs(pa[0]);
    release(bars_empty_v, gp);
    if (rescale) sm.rescale(o, corrs);
    pack_p<T>(s, pa);
  }
  __syncwarp();
  if (lane == 0) mbar_arrive(q_empty);  // every Q K^T of the item is done
  // last tile: P V alone
  const int gl = g + n - 1;
  mbar_wait(bars_full_v + 8 * (gl % S), (gl / S) & 1);
  turn();
  wg_fence();
  issue_pv<T>(o, pa, skv + 2 * (gl % S) * KV_BYTES + KV_BYTES);
  wg_commit();
  done();
  wg_wait<0>();
  fence_regs(o[0]);
  fence_regs(pa[0]);
  release(bars_empty_v, gl);
  g += n;
}

template <class T>
__global__ void __launch_bounds__(T::THREADS, 1) attention_fwd_kernel_sm90_tma(const __grid_constant__ Sm90TmaParams tp) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename T::Elem;
  const FwdParams& p = tp.p;
  constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2;
  constexpr int S = T::STAGES;
  extern __shared__ __align__(128) unsigned char smem_sm90[];  // aligned to 1024 below
  const uint32_t sq = (smem_u32(smem_sm90) + 1023u) & ~1023u;
  const uint32_t skv = sq + T::Q_ELEMS * 2;  // stage s: K at skv + 2*s*KV_BYTES, V right after
  const uint32_t bars = skv + 2 * S * KV_BYTES;  // q_full, full[S], empty[S] (8 bytes each)
  auto full = [&](int s) { return bars + 8 + 8 * s; };
  auto empty = [&](int s) { return bars + 8 + 8 * S + 8 * s; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const QueryTile qt = block_query_tile<T::BM>(p);
  if (!qt.live()) return;  // varlen: this sequence is shorter than the mask's rows
  const int b = qt.b, h = qt.h, hk = qt.hk, i = qt.i, q_start = qt.q_start, k_start = qt.k_start;
  const int q0 = qt.q0, q_rows = qt.q_rows, kv_limit = qt.kv_limit;
  const TileMask tm = qt.tm;
  // wg-tma-s2e: before the tile list (head type, then the CSR row: dependent global reads), thread 0
  // starts the row's CSR reads into L1 and sends Q's TMA, so that neither waits behind those reads.
  auto init_barriers = [&]() {
    mbar_init(bars, 1);
    for (int s = 0; s < S; ++s) mbar_init(full(s), 1), mbar_init(empty(s), T::NWARPS);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fence_proxy_async_smem();
  };
  auto load_q = [&]() {
    mbar_expect_tx(bars, T::Q_ELEMS * 2);
#pragma unroll
    for (int cb = 0; cb < T::D / 64; ++cb) tma_load_2d(sq + cb * (T::BM * 128), &tp.q, h * T::D + cb * 64, q_start + q0, bars);
  };
  if (T::EARLY && tid == 0) {
    if (p.kv_num_blocks) {
      const int64_t row = csr_row(p, b, h, i);
      prefetch_l1(p.kv_num_blocks + row);
      prefetch_l1(p.kv_indices + row * p.mk);
    }
    init_barriers();
    load_q();
  }
  const KvTileList tiles = make_tile_list<T::BN, T::EARLY>(p, b, h, i, kv_limit);

  float o[1][T::DT][4];
#pragma unroll
  for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
  OnlineSoftmax<T> sm;
  sm.init();
  const int warp_row = warp * 16;
  const float scale_log2 = p.scale * 1.44269504088896340736f;
  const uint32_t sq_wg = sq + wg * 64 * 128;

  if (tiles.count > 0) {
    // K/V tile t -> stage t % S: D/64 boxes of K and of V (rows beyond the tensor are zero-filled;
    // rows of the next sequence are masked by TileMask like a tail).
    auto issue_kv = [&](int t) {
      const int s = t % S;
      const int krow = k_start + tiles.tile(t) * T::BN;
      const uint32_t sk = skv + 2 * s * KV_BYTES;
      mbar_expect_tx(full(s), 2 * KV_BYTES);
#pragma unroll
      for (int cb = 0; cb < T::D / 64; ++cb) {
        tma_load_2d(sk + cb * (T::BN * 128), &tp.k, hk * T::D + cb * 64, krow, full(s));
        tma_load_2d(sk + KV_BYTES + cb * (T::BN * 128), &tp.v, hk * T::D + cb * 64, krow, full(s));
      }
    };
    if (!T::EARLY && tid == 0) init_barriers();
    __syncthreads();  // the mbarriers are initialized
    if (tid == 0) {
      if (!T::EARLY) load_q();
      for (int t = 0; t < S && t < tiles.count; ++t) issue_kv(t);
    }
    mbar_wait(bars, 0);

    for (int t = 0; t < tiles.count; ++t) {
      const int st = t % S;
      mbar_wait(full(st), (t / S) & 1);
      // Refill while Q K^T runs: tile t-1+S into the stage tile t-1 used, once both warpgroups
      // released it (thread 0; the other warpgroup is at most about one tile behind).
      wg_tma_tile<T>(sq_wg, skv + 2 * st * KV_BYTES, q0, tiles, t, tm, warp_row, lane, scale_log2, sm, o,
                     [&, warp] {
                       if (warp == 0) {
                         if (lane == 0 && t >= 1 && t - 1 + S < tiles.count) {
                           mbar_wait(empty((t - 1) % S), ((t - 1) / S) & 1);
                           issue_kv(t - 1 + S);
                         }
                         __syncwarp();
                       }
                     });
      __syncwarp();
      if (lane == 0) mbar_arrive(empty(st));  // this warp is done with the stage
    }
  } else if (T::EARLY) {
    __syncthreads();
    mbar_wait(bars, 0);  // no tile to visit: still no TMA may be in flight when the CTA exits
  }
  store_output<T>(p, b, h, q_start, q0, q_rows, warp_row, lane, sm, o);
#else
  __trap();
#endif
}

// wg-tma-ws-ppo's epilogue for a full query tile (q_rows == BM): this warpgroup's 64 rows of O, normalized,
// go into its half of the O buffer (so_wg: D / 64 boxes of [64 rows][64 elements], 128B-swizzled like
// the map's boxes), then its first thread sends them by TMA store and does not wait for it; LSE as
// store_output. Before writing, that thread waits until its previous store has read the buffer (one item
// ago), and a named barrier of the warpgroup (3 + wg) passes that on; a second one, after every thread's
// writes and proxy fence, lets the store go.
template <class T>
__device__ __forceinline__ void store_output_tma(const Sm90TmaParams& tp, const WorkItem& it, uint32_t so_wg, int wg,
                                                 int warp_row, int lane, const OnlineSoftmax<T>& sm,
                                                 const float (&o)[1][T::DT][4]) {
  using Elem = typename T::Elem;
  const bool leader = (threadIdx.x & 127) == 0;
  if (leader) bulk_wait_read();
  named_bar_sync(3 + wg, 128);
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
      tp.p.lse[lse_index(tp.p, it.b, it.h, it.q_start, it.q0 + warp_row + (lane >> 2) + r * 8)] = nr.lse;
  }
  fence_proxy_async_smem();
  named_bar_sync(3 + wg, 128);
  if (leader) {
#pragma unroll
    for (int cb = 0; cb < T::D / 64; ++cb)
      tma_store_2d(&tp.o, so_wg + cb * (64 * 128), it.h * T::D + cb * 64, it.q_start + it.q0 + 64 * wg);
    bulk_commit();
  }
}

// wg-tma-ws*: persistent and warp-specialized. One CTA per SM; warps 0-7 (two warpgroups) compute, warp
// 8 (one lane of the third warpgroup, which hands its registers to the other two) produces: it takes the
// next work item from a global counter (dynamic: a CTA that drew short rows takes more items, so no CTA
// is left with the long ones), publishes it in a two-slot ring with the item's Q (two Q buffers), and
// streams the item's K/V tiles into the stage ring. It runs ahead of the consumers by up to one item,
// so an item's Q and first K/V tiles are in flight while the previous item's last tiles and epilogue
// run. The consumers' per-tile step is wg-tma-s2's (wg-tma-ws), or the pipelined ws_pipe_item
// (wg-tma-ws-ov, and wg-tma-ws-pp with its ping-pong), for which K and V have their own barriers.
// The counters (next item, finished CTAs) are reset by the last CTA to finish, so each launch finds
// them at zero; launches in flight at once use different blocks (launch<T> hands them out in turn).
template <class T>
__global__ void __launch_bounds__(T::THREADS, 1)
    attention_fwd_kernel_sm90_tma_ws(const __grid_constant__ Sm90TmaParams tp) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const FwdParams& p = tp.p;
  constexpr uint32_t KV_BYTES = T::KV_ELEMS * 2, Q_BYTES = T::Q_ELEMS * 2;
  constexpr int S = T::STAGES;
  extern __shared__ __align__(128) unsigned char smem_sm90[];  // aligned to 1024 below
  const uint32_t sq0 = (smem_u32(smem_sm90) + 1023u) & ~1023u;  // Q buffers 0, 1
  const uint32_t skv = sq0 + 2 * Q_BYTES;                         // stage s: K, then V
  const uint32_t so = skv + 2 * S * KV_BYTES;                     // T::O_TMA: the O buffer
  const uint32_t bars = so + (T::O_TMA ? Q_BYTES : 0);
  auto q_full = [&](int k) { return bars + 8 * k; };    // item slot k published (and its Q landed)
  auto q_empty = [&](int k) { return bars + 16 + 8 * k; };  // every consumer warp is done with slot k
  auto full = [&](int s) { return bars + 32 + 8 * s; };  // (T::PIPE: K only)
  auto empty = [&](int s) { return bars + 32 + 8 * S + 8 * s; };
  auto full_v = [&](int s) { return bars + 32 + 16 * S + 8 * s; };  // T::PIPE: V's own
  auto empty_v = [&](int s) { return bars + 32 + 24 * S + 8 * s; };
  // This CTA's two item slots (ItemSlot: the work item number, n_items or more when there is no more
  // work, and its tile list's shape). They live in global memory: the mbarrier's release (arrive) and
  // acquire (wait) order them like the shared data, and racecheck, which does not pair a generic
  // shared-memory write with an mbarrier, has nothing to see.
  auto slot = [&](int k) { return tp.sched + 4 + 8 * blockIdx.x + 4 * k; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int n_items = ((p.q_len + T::BM - 1) / T::BM) * p.heads_q * p.batch;
  auto tile_of = [&](int w) {  // work item w's query tile
    if constexpr (T::FAST_DIV)
      return item_tile<T::BM>(p, w, tp.divs);
    else
      return item_tile<T::BM>(p, w);
  };

  if (tid == 0) {
    for (int k = 0; k < 2; ++k) mbar_init(q_full(k), 1), mbar_init(q_empty(k), T::NWARPS);
    for (int s = 0; s < S; ++s) mbar_init(full(s), 1), mbar_init(empty(s), T::NWARPS);
    if constexpr (T::PIPE != 0)
      for (int s = 0; s < S; ++s) mbar_init(full_v(s), 1), mbar_init(empty_v(s), T::NWARPS);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fence_proxy_async_smem();
  }
  __syncthreads();  // the last CTA-wide barrier: from here on the roles meet only at mbarriers

  if (wg == T::WARPGROUPS) {  // producer warpgroup: gives registers back; one lane works
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (warp == T::NWARPS && lane == 0) {
      unsigned* counter = tp.sched;
      // The next item: its number from the counter (each CTA's first item is its own number), its tile
      // list from the head type and the CSR row (make_tile_list reads the type and the row's length side
      // by side); the row's first entry (the item's first K tile) is prefetched into L1 beside them
      // rather than read after them.
      auto tile_list = [&](WorkItem& x) {
        if (p.kv_indices) prefetch_l1(p.kv_indices + csr_row(p, x.b, x.h, x.i) * p.mk);
        x.tiles = make_tile_list<T::BN, true>(p, x.b, x.h, x.i, x.kv_limit);
      };
      auto draw = [&](int& w, WorkItem& it) {
        w = int(gridDim.x + atomicAdd(counter, 1u));
        it = WorkItem{};
        if (w >= n_items) return;
        static_cast<QueryTile&>(it) = tile_of(w);
        if (it.live()) tile_list(it);
      };
      auto load_q = [&](int k, const QueryTile& x) {  // into Q buffer k, completing on q_full(k)
#pragma unroll
        for (int cb = 0; cb < T::D / 64; ++cb)
          tma_load_2d(sq0 + k * Q_BYTES + cb * (T::BM * 128), &tp.q, x.h * T::D + cb * 64, x.q_start + x.q0, q_full(k));
      };
      int w = int(blockIdx.x);
      WorkItem it;
      // The first item's Q load goes out before its tile list's reads (the barrier's arrive follows
      // them, with the item's slot).
      bool q_early = false;
      if (w < n_items) {
        static_cast<QueryTile&>(it) = tile_of(w);
        if (it.live()) {
          mbar_expect_tx_only(q_full(0), Q_BYTES);
          load_q(0, it);
          q_early = true;
          tile_list(it);
        }
      }
      int gp = 0;  // K/V tiles issued (over all items)
      // T::V_AFTER_K: each tile's V goes out after the next tile's K (over item ends too, but not past an
      // item without loads: the consumers finish the item that V belongs to before they take the next
      // slot). K's stage frees before the softmax, V's after it: a V waiting for its stage then no
      // longer holds back the next K, which Q K^T needs one step before P V needs that V.
      int v_gp = -1, v_krow = 0, v_hk = 0;  // the V not yet issued (v_gp < 0: none)
      auto issue_v = [&] {
        const int sv = v_gp % S;
        if (v_gp >= S) mbar_wait(empty_v(sv), ((v_gp / S) - 1) & 1);
        mbar_expect_tx(full_v(sv), KV_BYTES);
        const uint32_t dv = skv + 2 * sv * KV_BYTES + KV_BYTES;
#pragma unroll
        for (int cb = 0; cb < T::D / 64; ++cb)
          tma_load_2d(dv + cb * (T::BN * 128), &tp.v, v_hk * T::D + cb * 64, v_krow, full_v(sv));
        v_gp = -1;
      };
      for (int nq = 0;; ++nq) {
        const int k = nq & 1;
        if (nq >= 2) mbar_wait(q_empty(k), ((nq >> 1) - 1) & 1);
        slot_store(slot(k), item_slot(w, it.tiles));
        const bool q_sent = nq == 0 && q_early;
        if (!(w < n_items && it.loads())) {  // no more work, or nothing to load: the slot alone
          mbar_arrive(q_full(k));            // (q_sent: the phase also waits for Q's bytes)
          if (T::PIPE != 0 && v_gp >= 0) issue_v();
          if (w >= n_items) break;
          draw(w, it);
          continue;
        }
        if (q_sent) {
          mbar_arrive(q_full(k));
        } else {
          mbar_expect_tx(q_full(k), Q_BYTES);
          load_q(k, it);
        }
        int w_next;
        WorkItem next;
        for (int t = 0; t < it.tiles.count; ++t, ++gp) {
          const int s = gp % S;
          const int krow = it.k_start + it.tiles.tile(t) * T::BN;
          // The next item is drawn before the last tile waits for its stage: the draw's reads run
          // during that wait, not between this item's last tile and the next one's first.
          if (t == it.tiles.count - 1) draw(w_next, next);
          if (gp >= S) mbar_wait(empty(s), ((gp / S) - 1) & 1);
          const uint32_t sk = skv + 2 * s * KV_BYTES;
          if constexpr (T::PIPE != 0) {  // this K, then the previous tile's V, each on its own barriers
            mbar_expect_tx(full(s), KV_BYTES);
#pragma unroll
            for (int cb = 0; cb < T::D / 64; ++cb)
              tma_load_2d(sk + cb * (T::BN * 128), &tp.k, it.hk * T::D + cb * 64, krow, full(s));
            if (v_gp >= 0) issue_v();
            v_gp = gp, v_krow = krow, v_hk = it.hk;
            if (!T::V_AFTER_K) issue_v();
          } else {
            mbar_expect_tx(full(s), 2 * KV_BYTES);
#pragma unroll
            for (int cb = 0; cb < T::D / 64; ++cb) {
              tma_load_2d(sk + cb * (T::BN * 128), &tp.k, it.hk * T::D + cb * 64, krow, full(s));
              tma_load_2d(sk + KV_BYTES + cb * (T::BN * 128), &tp.v, it.hk * T::D + cb * 64, krow, full(s));
            }
          }
        }
        w = w_next;
        it = next;
      }
      // This CTA draws no more items; the last CTA to get here resets the pair for the next launch.
      __threadfence();
      if (atomicAdd(counter + 1, 1u) == gridDim.x - 1) {
        atomicExch(counter, 0u);
        atomicExch(counter + 1, 0u);
      }
    }
    return;
  }

  // consumers: 128 x 40 + 256 x 232 = 64512 of the SM's 65536 registers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int warp_row = warp * 16;
  const float scale_log2 = p.scale * 1.44269504088896340736f;
  int g = 0;  // K/V tiles taken so far (over all items)
  // wg-tma-ws-pp: warpgroup 0 issues first (ws_pipe_item)
  if constexpr (T::PIPE == 2 && T::WARPGROUPS == 2)
    if (wg == 1) named_bar_arrive(1, 256);
  // The first item is the CTA's own number: its tile list is read here while Q loads, rather than from
  // the slot after Q has landed.
  ItemSlot cur{n_items, 0, 0, 0};
  if (int(blockIdx.x) < n_items)
    cur = item_slot(int(blockIdx.x), work_item<T::BN>(p, tile_of(int(blockIdx.x))).tiles);
  mbar_wait(q_full(0), 0);
  for (int nq = 0; cur.w < n_items; ++nq) {
    const int k = nq & 1;
    const WorkItem it = work_item<T::BN>(p, cur, tile_of(cur.w));
    float o[1][T::DT][4];
#pragma unroll
    for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[0][dt][e] = 0.f;
    OnlineSoftmax<T> sm;
    sm.init();
    if (T::PIPE != 0 && it.loads()) {
      ws_pipe_item<T>(sq0 + k * Q_BYTES + wg * 64 * 128, skv, full(0), empty(0), full_v(0), empty_v(0), q_empty(k), it,
                      g, wg, warp_row, lane, scale_log2, sm, o);
    } else if (it.loads()) {
      const uint32_t sq_wg = sq0 + k * Q_BYTES + wg * 64 * 128;
      for (int t = 0; t < it.tiles.count; ++t, ++g) {
        const int st = g % S;
        mbar_wait(full(st), (g / S) & 1);
        wg_tma_tile<T>(sq_wg, skv + 2 * st * KV_BYTES, it.q0, it.tiles, t, it.tm, warp_row, lane, scale_log2, sm, o,
                       [] {});
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(st));
      }
    }
    __syncwarp();
    if (lane == 0 && !(T::PIPE != 0 && it.loads())) mbar_arrive(q_empty(k));  // done with the slot and its Q
    // The next item's slot is read before this item's epilogue, so that its latency hides under the
    // stores (the producer publishes it about one K/V tile before this item's last tile ends).
    mbar_wait(q_full(k ^ 1), ((nq + 1) >> 1) & 1);
    const ItemSlot next = slot_load(slot(k ^ 1));
    if constexpr (T::O_TMA) {
      if (it.live() && it.q_rows == T::BM)
        store_output_tma<T>(tp, it, so + wg * (Q_BYTES / 2), wg, warp_row, lane, sm, o);
      else if (it.live())
        store_output<T>(p, it.b, it.h, it.q_start, it.q0, it.q_rows, warp_row, lane, sm, o);
    } else if (it.live()) {
      store_output<T>(p, it.b, it.h, it.q_start, it.q0, it.q_rows, warp_row, lane, sm, o);
    }
    cur = next;
  }
  if constexpr (T::O_TMA)
    if ((tid & 127) == 0) bulk_wait_all();  // the O buffer stays until the last store has read it
  // wg-tma-ws-pp: warpgroup 1's last arrive is matched here, so no barrier is left half-arrived
  if constexpr (T::PIPE == 2 && T::WARPGROUPS == 2)
    if (wg == 0) named_bar_sync(1, 256);
#else
  __trap();
#endif
}

// Host: the three tensor maps of one launch (cuTensorMapEncodeTiled through the runtime's driver entry
// point, so the build needs no libcuda at link time).
inline void encode_map(CUtensorMap* map, bool bf16, const void* ptr, int64_t rows, int64_t cols, int box_rows) {
  using Fn = PFN_cuTensorMapEncodeTiled_v12000;
  static Fn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
    if (!f || q != cudaDriverEntryPointSuccess)
      throw RuntimeFailure("CUDA driver has no cuTensorMapEncodeTiled (needed by the wg-tma kernels)");
    return reinterpret_cast<Fn>(f);
  }();
  cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(cols) * 2};
  cuuint32_t box[2] = {64, cuuint32_t(box_rows)};
  cuuint32_t estr[2] = {1, 1};
  CUresult r = fn(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                  const_cast<void*>(ptr), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw RuntimeFailure("cuTensorMapEncodeTiled failed (error " + std::to_string(int(r)) + ")");
}

template <class T>
Sm90TmaParams make_tma_params(const FwdParams& p) {
  Sm90TmaParams tp;
  constexpr bool bf16 = std::is_same_v<typename T::Elem, __nv_bfloat16>;
  const int64_t tq = p.total_q ? p.total_q : int64_t(p.batch) * p.q_len;
  const int64_t tk = p.total_k ? p.total_k : int64_t(p.batch) * p.kv_len;
  encode_map(&tp.q, bf16, p.q, tq, int64_t(p.heads_q) * T::D, T::BM);
  encode_map(&tp.k, bf16, p.k, tk, int64_t(p.heads_kv) * T::D, T::BN);
  encode_map(&tp.v, bf16, p.v, tk, int64_t(p.heads_kv) * T::D, T::BN);
  if constexpr (T::O_TMA) encode_map(&tp.o, bf16, p.o, tq, int64_t(p.heads_q) * T::D, 64);
  tp.p = p;
  if constexpr (T::FAST_DIV) tp.divs = ItemDivs::of<T::BM>(p);
  return tp;
}

}  // namespace bsattn::cuda::fwd
