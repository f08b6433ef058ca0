#include "lib/mask.h"

#include <stdexcept>

#include "lib/block_sizes.h"
#include "lib/error.h"
#include "lib/sizes.h"

namespace bsattn {

const char* head_type_name(HeadType t) {
  switch (t) {
    case HeadType::Dense: return "dense";
    case HeadType::Sparse: return "sparse";
    case HeadType::Streaming: return "streaming";
  }
  return "?";
}

HeadType parse_head_type(const std::string& s) {
  if (s == "dense") return HeadType::Dense;
  if (s == "sparse") return HeadType::Sparse;
  if (s == "streaming") return HeadType::Streaming;
  throw UsageError("head type '" + s + "' is unknown (allowed: dense, sparse, streaming)");
}

void MaskShape::validate() const {
  auto in_range = [](const char* name, int64_t v, int64_t hi) {
    if (v <= 0) throw UsageError(std::string(name) + " must be a positive integer, got " + std::to_string(v));
    if (v > hi)
      throw UsageError(std::string(name) + " = " + std::to_string(v) + " is more than the limit of " + limit_str(hi));
  };
  in_range("batch", batch, int64_t(1) << 20);
  in_range("heads", heads, int64_t(1) << 20);
  in_range("q_len", q_len, kMaxTokens);
  in_range("kv_len", kv_len, kMaxTokens);
  in_range("block_q", block_q, kMaxBlockSize);
  in_range("block_kv", block_kv, kMaxBlockSize);
  checked_product({batch, heads, mq(), mk()}, kMaxMaskBlocks, "mask of [B,H,Mq,Mk] blocks", "blocks");
}

std::string MaskShape::str() const {
  return "B=" + std::to_string(batch) + " H=" + std::to_string(heads) + " q_len=" + std::to_string(q_len) +
         " kv_len=" + std::to_string(kv_len) + " block=" + std::to_string(block_q) + "x" +
         std::to_string(block_kv) + " (" + std::to_string(mq()) + "x" + std::to_string(mk()) + " blocks)";
}

int64_t BlockGeometry::diag_block(int64_t i) const {
  int64_t key = q_end(i) - 1 + causal_offset();
  if (key < 0) return -1;
  return std::min(key / s.block_kv, s.mk() - 1);
}

int64_t BlockGeometry::pairs(int64_t i, int64_t j, bool causal) const {
  int64_t q0 = q_begin(i), q1 = q_end(i), k0 = k_begin(j), k1 = k_end(j);
  int64_t nq = q1 - q0, nk = k1 - k0;
  if (!causal) return nq * nk;
  int64_t off = causal_offset();
  // Visible keys of query q in this block: clamp(q + off - k0 + 1, 0, nk).
  if (q0 + off - k0 + 1 >= nk) return nq * nk;
  if (q1 - 1 + off - k0 + 1 <= 0) return 0;
  int64_t total = 0;
  for (int64_t q = q0; q < q1; ++q) total += std::clamp<int64_t>(q + off - k0 + 1, 0, nk);
  return total;
}

bool BlockGeometry::causal_visible(int64_t i, int64_t j) const {
  // The last query of the block sees the most keys.
  return q_end(i) - 1 + causal_offset() >= k_begin(j);
}

bool BlockGeometry::is_full(int64_t i, int64_t j, bool causal) const {
  if (q_end(i) - q_begin(i) != s.block_q || k_end(j) - k_begin(j) != s.block_kv) return false;
  if (!causal) return true;
  return q_begin(i) + causal_offset() >= k_end(j) - 1;
}

BlockMask::BlockMask(const MaskShape& s) : shape(s) {
  s.validate();
  heads.assign(size_t(s.heads), HeadInfo{});
  bits.assign(size_t(s.cells()), 0);
}

void BlockMask::apply_causal() {
  if (!causal) return;
  auto g = geometry();
  int64_t mq = shape.mq(), mk = shape.mk();
  // Row i keeps at most blocks j <= last visible block.
  for (int64_t b = 0; b < shape.batch; ++b)
    for (int64_t h = 0; h < shape.heads; ++h)
      for (int64_t i = 0; i < mq; ++i) {
        uint8_t* row = head_bits(b, h) + i * mk;
        int64_t last_key = g.q_end(i) - 1 + g.causal_offset();
        int64_t first_hidden = last_key < 0 ? 0 : std::min(mk, last_key / shape.block_kv + 1);
        std::fill(row + first_hidden, row + mk, uint8_t(0));
      }
}

void check_head_info(const HeadInfo& info, const MaskShape& s, int64_t h, const std::string& what) {
  if (info.type != HeadType::Streaming) return;
  const int64_t mk = s.mk();
  for (auto [name, v] : {std::pair<const char*, int64_t>{"sink_blocks", info.sink_blocks}, {"local_blocks", info.local_blocks}})
    if (v < 0 || v > mk)
      throw UsageError(what + ": head " + std::to_string(h) + " (streaming) has " + name + " = " + std::to_string(v) +
                       " (allowed: 0.." + std::to_string(mk) + ", the key blocks of a row)");
}

void fill_streaming(const BlockGeometry& g, int64_t sink, int64_t local, uint8_t* hb) {
  int64_t mq = g.s.mq(), mk = g.s.mk();
  sink = std::clamp<int64_t>(sink, 0, mk);
  local = std::clamp<int64_t>(local, 0, mk);
  for (int64_t i = 0; i < mq; ++i) {
    uint8_t* row = hb + i * mk;
    std::fill(row, row + mk, uint8_t(0));
    for (int64_t j = 0; j < sink; ++j) row[j] = 1;
    int64_t d = g.diag_block(i);
    for (int64_t j = std::max<int64_t>(0, d - local + 1); j <= d; ++j) row[j] = 1;
  }
}

namespace {
bool head_is_full(const BlockMask& m, int64_t h) {
  auto g = m.geometry();
  int64_t mq = m.shape.mq(), mk = m.shape.mk();
  for (int64_t b = 0; b < m.shape.batch; ++b) {
    const uint8_t* hb = m.head_bits(b, h);
    for (int64_t i = 0; i < mq; ++i)
      for (int64_t j = 0; j < mk; ++j) {
        bool want = !m.causal || g.causal_visible(i, j);
        if (want && !hb[i * mk + j]) return false;
      }
  }
  return true;
}
bool head_is_streaming(const BlockMask& m, int64_t h, const HeadInfo& info) {
  std::vector<uint8_t> want(size_t(m.shape.head_cells()));
  fill_streaming(m.geometry(), info.sink_blocks, info.local_blocks, want.data());
  if (m.causal) {
    auto g = m.geometry();
    for (int64_t i = 0; i < m.shape.mq(); ++i)
      for (int64_t j = 0; j < m.shape.mk(); ++j)
        if (!g.causal_visible(i, j)) want[i * m.shape.mk() + j] = 0;
  }
  for (int64_t b = 0; b < m.shape.batch; ++b)
    if (!std::equal(want.begin(), want.end(), m.head_bits(b, h))) return false;
  return true;
}
}  // namespace

void BlockMask::normalize_head_types() {
  for (int64_t h = 0; h < shape.heads; ++h) {
    auto& info = heads[h];
    if (info.type == HeadType::Streaming && head_is_streaming(*this, h, info)) continue;
    info = HeadInfo{};
    if (head_is_full(*this, h)) info.type = HeadType::Dense;
  }
}

void BlockMask::check_consistency() const {
  if (int64_t(heads.size()) != shape.heads)
    throw std::logic_error("mask has " + std::to_string(heads.size()) + " head descriptions for " +
                           std::to_string(shape.heads) + " heads");
  for (int64_t h = 0; h < shape.heads; ++h) {
    if (heads[h].type == HeadType::Dense && !head_is_full(*this, h))
      throw std::logic_error("head " + std::to_string(h) + " is marked dense but its bitmap is not full");
    if (heads[h].type == HeadType::Streaming && !head_is_streaming(*this, h, heads[h]))
      throw std::logic_error("head " + std::to_string(h) + " is marked streaming but its bitmap differs");
  }
}

static BlockCSR build_csr(const BlockMask& m, bool by_row) {
  int64_t B = m.shape.batch, H = m.shape.heads, mq = m.shape.mq(), mk = m.shape.mk();
  int64_t M = by_row ? mq : mk, N = by_row ? mk : mq;
  BlockCSR c;
  c.counts_shape = {B, H, M};
  c.indices_shape = {B, H, M, N};
  c.num_blocks.assign(size_t(B * H * M), 0);
  c.indices.assign(size_t(B * H * M * N), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const uint8_t* hb = m.head_bits(b, h);
      int64_t base = (b * H + h) * M;
      for (int64_t r = 0; r < M; ++r) {
        int32_t n = 0;
        int32_t* out = c.indices.data() + (base + r) * N;
        for (int64_t x = 0; x < N; ++x) {
          bool kept = by_row ? hb[r * mk + x] : hb[x * mk + r];
          if (kept) out[n++] = int32_t(x);
        }
        c.num_blocks[base + r] = n;
      }
    }
  return c;
}

BlockCSR row_csr(const BlockMask& m) { return build_csr(m, true); }
BlockCSR column_csr(const BlockMask& m) { return build_csr(m, false); }

BlockMask mask_from_row_csr(const MaskShape& s, const BlockCSR& c, const std::string& what) {
  BlockMask m(s);
  int64_t B = s.batch, H = s.heads, mq = s.mq(), mk = s.mk();
  if (c.counts_shape != std::vector<int64_t>{B, H, mq})
    throw UsageError(what + ": kv_num_blocks shape does not match [B,H,Mq] = [" + std::to_string(B) + "," +
                     std::to_string(H) + "," + std::to_string(mq) + "]");
  if (c.indices_shape.size() != 4 || c.indices_shape[0] != B || c.indices_shape[1] != H ||
      c.indices_shape[2] != mq || c.indices_shape[3] < 1)
    throw UsageError(what + ": kv_indices shape must be [B,H,Mq,N] with B,H,Mq matching kv_num_blocks");
  int64_t N = c.indices_shape[3];
  for (int64_t r = 0; r < B * H * mq; ++r) {
    int32_t n = c.num_blocks[r];
    if (n < 0 || n > std::min(N, mk))
      throw UsageError(what + ": kv_num_blocks entry " + std::to_string(r) + " = " + std::to_string(n) +
                       " is out of range [0, " + std::to_string(std::min(N, mk)) + "]");
    const int32_t* idx = c.indices.data() + r * N;
    for (int32_t t = 0; t < n; ++t) {
      if (idx[t] < 0 || idx[t] >= mk)
        throw UsageError(what + ": kv_indices value " + std::to_string(idx[t]) + " is out of range [0, " +
                         std::to_string(mk) + ")");
      if (t && idx[t] <= idx[t - 1])
        throw UsageError(what + ": kv_indices row " + std::to_string(r) + " is not strictly ascending");
      m.bits[size_t(r * mk + idx[t])] = 1;
    }
  }
  return m;
}

}  // namespace bsattn
