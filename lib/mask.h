// The block mask: B x H x Mq x Mk bitmap plus sizes, per-head types and the causal flag.
//
// Semantics (DESIGN.md): block (i,j) kept means every existing (q,k) pair in it is computed, except
// the pairs `causal` removes (bottom-right aligned: key k is visible from query q when
// k <= q + kv_len - q_len, FlashAttention's rule). A last partial block is a real block whose tail
// tokens don't exist. Batch 1 broadcasts over any batch.
//
// The bitmap is always materialized for every head, dense and streaming heads included, so the
// .npy file is the effective mask; head types let kernels skip the bitmap for those heads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bsattn {

enum class HeadType : uint8_t { Dense = 0, Sparse = 1, Streaming = 2 };
const char* head_type_name(HeadType t);
HeadType parse_head_type(const std::string& s);  // "dense" | "sparse" | "streaming"

struct HeadInfo {
  HeadType type = HeadType::Sparse;
  int64_t sink_blocks = 0;   // streaming only: the first sink_blocks key blocks
  int64_t local_blocks = 0;  // streaming only: local_blocks key blocks ending at the diagonal block
  bool operator==(const HeadInfo& o) const {
    return type == o.type && sink_blocks == o.sink_blocks && local_blocks == o.local_blocks;
  }
};

struct MaskShape {
  int64_t batch = 1, heads = 1;
  int64_t q_len = 0, kv_len = 0;
  int64_t block_q = 128, block_kv = 128;

  // ceil(len / block) without forming len + block - 1, which overflows for lengths near INT64_MAX
  // (validate() refuses those; these stay well-defined until it has run).
  int64_t mq() const { return block_q > 0 ? q_len / block_q + (q_len % block_q != 0) : 0; }
  int64_t mk() const { return block_kv > 0 ? kv_len / block_kv + (kv_len % block_kv != 0) : 0; }
  int64_t head_cells() const { return mq() * mk(); }
  int64_t cells() const { return batch * heads * head_cells(); }
  // Throws UsageError naming the field when a size is zero/negative or past its limit (lengths at most
  // kMaxTokens, block sizes at most kMaxBlockSize, batch and heads at most 2^20) or when the bitmap
  // would have more than kMaxMaskBlocks blocks (lib/sizes.h); the limits are stated in the message.
  void validate() const;
  bool operator==(const MaskShape& o) const {
    return batch == o.batch && heads == o.heads && q_len == o.q_len && kv_len == o.kv_len &&
           block_q == o.block_q && block_kv == o.block_kv;
  }
  bool operator!=(const MaskShape& o) const { return !(*this == o); }
  std::string str() const;  // "B=1 H=16 q_len=8192 kv_len=8192 block=128x128 (64x64 blocks)"
};

// Token-level geometry shared by patterns, statistics and kernels.
struct BlockGeometry {
  MaskShape s;
  explicit BlockGeometry(const MaskShape& shape) : s(shape) {}
  int64_t q_begin(int64_t i) const { return i * s.block_q; }
  int64_t q_end(int64_t i) const { return std::min(s.q_len, (i + 1) * s.block_q); }
  int64_t k_begin(int64_t j) const { return j * s.block_kv; }
  int64_t k_end(int64_t j) const { return std::min(s.kv_len, (j + 1) * s.block_kv); }
  int64_t causal_offset() const { return s.kv_len - s.q_len; }  // k visible iff k <= q + offset
  // Key block holding the aligned position of the last query of row block i (may be < 0 when
  // q_len > kv_len and the whole row lies before the first key), clamped to <= mk-1.
  int64_t diag_block(int64_t i) const;
  // Existing (q,k) pairs of block (i,j), with or without the causal rule; O(1) away from the diagonal.
  int64_t pairs(int64_t i, int64_t j, bool causal) const;
  // Kept under causal: the block has at least one visible pair.
  bool causal_visible(int64_t i, int64_t j) const;
  // Needs no token masking: full-size in both directions and entirely visible under `causal`.
  bool is_full(int64_t i, int64_t j, bool causal) const;
};

class BlockMask {
 public:
  MaskShape shape;
  bool causal = false;
  std::vector<HeadInfo> heads;  // shape.heads entries
  std::vector<uint8_t> bits;    // [B,H,Mq,Mk], 0 or 1
  nlohmann::json spec;          // how it was made (pattern spec with every parameter, seed); may be null

  BlockMask() = default;
  explicit BlockMask(const MaskShape& s);  // all blocks empty, all heads sparse

  int64_t index(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return ((b * shape.heads + h) * shape.mq() + i) * shape.mk() + j;
  }
  bool at(int64_t b, int64_t h, int64_t i, int64_t j) const { return bits[index(b, h, i, j)] != 0; }
  void set(int64_t b, int64_t h, int64_t i, int64_t j, bool v = true) { bits[index(b, h, i, j)] = v; }
  uint8_t* head_bits(int64_t b, int64_t h) { return bits.data() + index(b, h, 0, 0); }
  const uint8_t* head_bits(int64_t b, int64_t h) const { return bits.data() + index(b, h, 0, 0); }
  BlockGeometry geometry() const { return BlockGeometry(shape); }

  // Clears blocks with no visible pair under causal (only when `causal`).
  void apply_causal();
  // Marks heads whose bitmap keeps every (causally visible) block as dense; others that are marked
  // dense but are not full become sparse. Streaming heads are checked against their definition.
  void normalize_head_types();
  // Throws std::logic_error when the bitmap disagrees with a dense/streaming head type.
  void check_consistency() const;
  bool operator==(const BlockMask& o) const {
    return shape == o.shape && causal == o.causal && heads == o.heads && bits == o.bits;
  }
};

// A streaming head's numbers against the mask: 0 <= sink_blocks <= Mk and 0 <= local_blocks <= Mk
// (UsageError naming `what`, head `h` and the range). Other head types need nothing.
void check_head_info(const HeadInfo& info, const MaskShape& s, int64_t h, const std::string& what);

// Fills one head's [Mq,Mk] bitmap with the streaming pattern (sink + local blocks); counts past Mk
// are clamped to Mk, negative ones to 0.
void fill_streaming(const BlockGeometry& g, int64_t sink_blocks, int64_t local_blocks, uint8_t* head_bits);

// Row CSR (FlexAttention layout) and column CSR.
struct BlockCSR {
  std::vector<int64_t> counts_shape;   // [B,H,M]
  std::vector<int64_t> indices_shape;  // [B,H,M,N]
  std::vector<int32_t> num_blocks;     // kept blocks per row (or column)
  std::vector<int32_t> indices;        // ascending, the rest of each row padded with 0
};
BlockCSR row_csr(const BlockMask& m);     // kv_num_blocks [B,H,Mq], kv_indices [B,H,Mq,Mk]
BlockCSR column_csr(const BlockMask& m);  // q_num_blocks [B,H,Mk], q_indices [B,H,Mk,Mq]
// Rebuilds the bitmap from a row CSR; validates counts and indices (UsageError naming `what`).
BlockMask mask_from_row_csr(const MaskShape& s, const BlockCSR& csr, const std::string& what);

}  // namespace bsattn
