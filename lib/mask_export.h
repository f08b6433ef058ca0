// Exports of a mask for other libraries' kernels (docs/mask-exports.md):
//  - FlexAttention (torch.nn.attention.flex_attention.BlockMask.from_kv_blocks): the row CSR split into
//    partial blocks (mask_mod applied: causal diagonal, sequence tails) and full blocks (no mask_mod),
//    and the same split by column (q direction, for the backward);
//  - Block-Sparse-Attention (mit-han-lab, block_sparse_attn_func): head_mask_type, streaming_info and
//    base_blockmask, which keep the head types a plain .npy loses.
#pragma once
#include <string>
#include <vector>

#include "lib/mask.h"

namespace bsattn {

// The files save_mask_flex writes into `dir`, in order.
std::vector<std::string> mask_flex_paths(const std::string& dir);
// int32 .npy: kv_num_blocks [B,H,Mq], kv_indices [B,H,Mq,Mk] (partial blocks), full_kv_num_blocks,
// full_kv_indices (full blocks), and q_num_blocks [B,H,Mk], q_indices [B,H,Mk,Mq], full_q_num_blocks,
// full_q_indices; indices ascending, the unused tail of a row 0; plus flex.json (block sizes, lengths,
// causal: what mask_mod must encode).
void save_mask_flex(const std::string& dir, const BlockMask& m);

// The files save_mask_bsa writes into `dir`, in order.
std::vector<std::string> mask_bsa_paths(const std::string& dir);
// head_mask_type int32 [H] (0 dense, -1 streaming, k >= 1: the head uses base_blockmask[:, k-1]),
// streaming_info int32 [2H] (sink, local blocks per head; 0 for other heads), base_blockmask bool
// [B, number of sparse heads, Mq, Mk] (at least one head: [B,1,Mq,Mk] of zeros when none is sparse), and
// bsa.json (causal, lengths). UsageError unless both block sizes are 128 (the library's block).
void save_mask_bsa(const std::string& dir, const BlockMask& m);

}  // namespace bsattn
