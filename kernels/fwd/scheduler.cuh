// Scheduling of the persistent forward kernel (sm90-ws): work items (a query tile of one head of one
// sequence, numbered query tiles fastest, then heads, then sequences), their decoding by precomputed
// divisors, and the item slots through which the producer hands an item to the consumers.
// The one-CTA-per-query-tile kernels (sm80, sm80-general) schedule by grid (block_query_tile).
#pragma once
#include <cstdint>

#include "kernels/fwd/block.cuh"

namespace bsattn::cuda::fwd {

// One work item of the persistent kernel (sm90-ws): a query tile and its tile list, from the item
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
// item_tile by multiply-and-shift, as the kernel decodes items: the same item as item_tile(p, w).
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
// What sm90-ws's producer publishes for an item: its number and the tile list's shape, which it read
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

// Item slots: one 16-byte store by the producer, one 16-byte load by each consumer thread
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

}  // namespace bsattn::cuda::fwd
