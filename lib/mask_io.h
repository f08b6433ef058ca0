// Mask files: .npy (bool [B,H,Mq,Mk], Block-Sparse-Attention's base_blockmask), row/column CSR as
// int32 .npy (FlexAttention's kv_num_blocks / kv_indices), and .json (schema bsattn.mask/v1,
// docs/mask-json.md). Reading any of them back gives the identical mask.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/mask.h"
#include "lib/npy.h"

namespace bsattn {

void save_mask_npy(const std::string& path, const BlockMask& m);
// Writes PREFIX_kv_num_blocks.npy, PREFIX_kv_indices.npy, PREFIX_q_num_blocks.npy, PREFIX_q_indices.npy.
void save_mask_csr(const std::string& prefix, const BlockMask& m);
// The four files save_mask_csr writes for `prefix`, in the order it writes them.
std::vector<std::string> mask_csr_paths(const std::string& prefix);
void save_mask_json(const std::string& path, const BlockMask& m);
nlohmann::json mask_to_json(const BlockMask& m);
BlockMask mask_from_json(const nlohmann::json& j, const std::string& what);

// Token-level sizes a .npy or CSR mask does not carry. Unset fields default to full blocks of 128.
struct MaskSizesHint {
  std::optional<int64_t> q_len, kv_len, block_q, block_kv;
  bool causal = false;
};

// Loads .json (self-describing: a block size or causal flag in `hint` that contradicts the file is
// refused), .npy (bool or 0/1 integer [B,H,Mq,Mk], [H,Mq,Mk] or [Mq,Mk]), or a
// CSR prefix (PREFIX_kv_num_blocks.npy must exist). Head types are derived from the bitmap for .npy
// and CSR (dense when full). Throws UsageError naming the file for anything malformed.
BlockMask load_mask(const std::string& path, const MaskSizesHint& hint = {});
BlockMask load_mask_csr(const std::string& prefix, const MaskSizesHint& hint = {});

// The readers behind load_mask and load_mask_csr, on arrays already read (the fuzz targets of
// tests/fuzz call them on parsed bytes): a bool / 0-1 integer mask array, and a row CSR pair (int32, or
// int64 with every value checked to fit). `what`, `num_name`, `idx_name` name them in errors.
BlockMask mask_from_npy(const NpyArray& a, const MaskSizesHint& hint, const std::string& what);
BlockMask mask_from_csr(const NpyArray& num, const NpyArray& idx, const MaskSizesHint& hint,
                        const std::string& num_name, const std::string& idx_name);

// Saves by extension: .npy or .json (UsageError for anything else).
void save_mask(const std::string& path, const BlockMask& m);

}  // namespace bsattn
