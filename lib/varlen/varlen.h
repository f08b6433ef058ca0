// Varlen (jagged) batches on the command line: sequence offsets from `--seqlens L1,L2,...` or from a
// `--cu-seqlens FILE.npy` (int32 offsets [0, L1, L1+L2, ..., total]: HSTU's x_offsets and
// Block-Sparse-Attention's / FlashAttention's cu_seqlens), packed [total, H, D] tensors, and the
// per-sequence block masks (each sequence gets the mask its own length gives; rows relative to its
// start, as lib/attention.h reads them), with statistics counted over each sequence's own blocks.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/mask_stats.h"
#include "lib/tensor/tensor_io.h"

namespace bsattn {

// Offsets checked: at least two entries, the first 0, strictly increasing (every sequence has at least
// one token), the last within int32. UsageError naming `what` with the first bad entry and what is allowed.
void check_cu_seqlens(const std::vector<int64_t>& cu, const std::string& what);
// "L1,L2,..." (positive integers) -> [0, L1, L1+L2, ...].
std::vector<int32_t> parse_seqlens(const std::string& text, const std::string& what);
// A 1-D .npy of int32 (or int64, as torch.long offsets are saved) offsets.
std::vector<int32_t> load_cu_seqlens(const std::string& path, const std::string& what);
// The offsets of `--seqlens` or `--cu-seqlens` (UsageError when both are given); empty when neither is.
std::vector<int32_t> varlen_offsets(const std::string& seqlens, const std::string& cu_seqlens_file);

int64_t max_seqlen(const std::vector<int32_t>& cu);
std::vector<int64_t> seqlens_of(const std::vector<int32_t>& cu);

// A packed tensor ([total,H,D], or [1,total,H,D]) holds exactly cu.back() rows (UsageError otherwise,
// naming the tensor, its rows and the offsets' total).
void check_packed(const Tensor& t, const std::vector<int32_t>& cu, const std::string& offsets_what);
// The varlen problem of packed Q and K (one set of offsets for both: self-attention over each sequence):
// batch = number of sequences, q_len = kv_len = the longest one.
AttentionProblem varlen_problem(const Tensor& q, const Tensor& k, const std::vector<int32_t>& cu);

// Sequence b's own [1,H,Mq_b,Mk_b] mask cut from a varlen mask (batch 1 or one entry per sequence,
// sized for the longest sequence), causal applied for its length.
BlockMask crop_sequence_mask(const BlockMask& m, int64_t b, int64_t len);
// One [B,H,Mq,Mk] mask (sizes of the longest sequence) from per-sequence masks of batch 1. A head stays
// dense when it is dense in every sequence; every other head becomes sparse, whose bitmaps are exact.
BlockMask embed_sequence_masks(const std::vector<BlockMask>& per_seq, int64_t max_len);
// embed_sequence_masks of one_sequence(b, length) for every sequence of `cu`.
BlockMask build_varlen_mask(const std::vector<int32_t>& cu,
                            const std::function<BlockMask(int64_t b, int64_t len)>& one_sequence);
// Statistics of a varlen mask counted over each sequence's own blocks and pairs (mask_stats of every
// crop, summed; densities and means recomputed from the sums).
MaskStats varlen_mask_stats(const BlockMask& m, const std::vector<int32_t>& cu);
MaskStats merge_mask_stats(const std::vector<MaskStats>& parts, const std::vector<int64_t>& rows_per_head,
                           const std::vector<int64_t>& cells_per_head);

}  // namespace bsattn
