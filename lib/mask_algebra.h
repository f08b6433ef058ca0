// Mask algebra. Binary operations need identical shapes (UsageError otherwise); results have the
// causal flag of the left operand and head types re-derived from the bitmaps.
#pragma once
#include "lib/mask.h"

namespace bsattn {

BlockMask mask_union(const BlockMask& a, const BlockMask& b);
BlockMask mask_intersection(const BlockMask& a, const BlockMask& b);
BlockMask mask_difference(const BlockMask& a, const BlockMask& b);  // a and not b
BlockMask mask_complement(const BlockMask& a);                       // causal blocks stay hidden when causal
BlockMask causal_restrict(const BlockMask& a);                       // sets causal, clears hidden blocks
// Head `dst_head` of `dst` takes head `src_head` of `src` (same B, sizes and blocks).
void assign_head(BlockMask& dst, int64_t dst_head, const BlockMask& src, int64_t src_head);
// A batch-1 mask repeated over `batch` (UsageError when the mask already has another batch size).
BlockMask broadcast_batch(const BlockMask& a, int64_t batch);
// The same token-level mask at other block sizes, conservatively: a new block is kept when any old
// block overlapping its token range is kept (64 -> 128 takes the union; 128 -> 64 splits).
BlockMask convert_block_size(const BlockMask& a, int64_t block_q, int64_t block_kv);

}  // namespace bsattn
