#include "lib/mask_export.h"

#include <cstring>

#include "lib/atomic_file.h"
#include "lib/error.h"
#include "lib/npy.h"

namespace bsattn {

namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

void write_int32(const std::string& path, const std::vector<int64_t>& shape, const std::vector<int32_t>& v) {
  NpyArray a(DType::Int32, shape);
  std::memcpy(a.data.data(), v.data(), v.size() * 4);
  write_npy(path, a);
}

// CSR of the blocks `select(b, h, row, col)` accepts, rows along `rows`, columns along `cols`.
template <class Select>
void csr(const BlockMask& m, int64_t rows, int64_t cols, Select select, std::vector<int32_t>& num,
         std::vector<int32_t>& idx) {
  const int64_t B = m.shape.batch, H = m.shape.heads;
  num.assign(size_t(B * H * rows), 0);
  idx.assign(size_t(B * H * rows * cols), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < rows; ++r) {
        const size_t row = size_t((b * H + h) * rows + r);
        int32_t n = 0;
        for (int64_t c = 0; c < cols; ++c)
          if (select(b, h, r, c)) idx[row * size_t(cols) + size_t(n++)] = int32_t(c);
        num[row] = n;
      }
}

}  // namespace

std::vector<std::string> mask_flex_paths(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* side : {"kv", "q"})
    for (const char* kind : {"", "full_"})
      for (const char* what : {"num_blocks", "indices"})
        out.push_back(join(dir, std::string(kind) + side + "_" + what + ".npy"));
  out.push_back(join(dir, "flex.json"));
  return out;
}

void save_mask_flex(const std::string& dir, const BlockMask& m) {
  const int64_t B = m.shape.batch, H = m.shape.heads, mq = m.shape.mq(), mk = m.shape.mk();
  const BlockGeometry g = m.geometry();
  // A kept block is full when no pair in it needs masking: full-size both ways and entirely visible
  // under causal; every other kept block is partial and gets mask_mod.
  std::vector<uint8_t> full(size_t(mq * mk));
  for (int64_t i = 0; i < mq; ++i)
    for (int64_t j = 0; j < mk; ++j) full[size_t(i * mk + j)] = g.is_full(i, j, m.causal);
  auto kept = [&](int64_t b, int64_t h, int64_t i, int64_t j) { return m.at(b, h, i, j); };
  auto is_full = [&](int64_t i, int64_t j) { return full[size_t(i * mk + j)] != 0; };
  const std::vector<std::string> paths = mask_flex_paths(dir);
  std::vector<int32_t> num, idx;
  size_t p = 0;
  for (bool by_row : {true, false}) {
    const int64_t rows = by_row ? mq : mk, cols = by_row ? mk : mq;
    for (bool want_full : {false, true}) {
      csr(m, rows, cols,
          [&](int64_t b, int64_t h, int64_t r, int64_t c) {
            const int64_t i = by_row ? r : c, j = by_row ? c : r;
            return kept(b, h, i, j) && is_full(i, j) == want_full;
          },
          num, idx);
      write_int32(paths[p++], {B, H, rows}, num);
      write_int32(paths[p++], {B, H, rows, cols}, idx);
    }
  }
  nlohmann::json j = {{"schema", "bsattn.flex-export/v1"},
                      {"q_len", m.shape.q_len},
                      {"kv_len", m.shape.kv_len},
                      {"block_q", m.shape.block_q},
                      {"block_kv", m.shape.block_kv},
                      {"causal", m.causal},
                      {"causal_offset", m.shape.kv_len - m.shape.q_len},
                      {"what", "kv_*: partial blocks (mask_mod needed: causal diagonal or a sequence tail); full_kv_*: "
                               "full blocks (no mask_mod); q_* the same by column"}};
  write_text_file(paths[p], j.dump(1) + "\n");
}

std::vector<std::string> mask_bsa_paths(const std::string& dir) {
  return {join(dir, "head_mask_type.npy"), join(dir, "streaming_info.npy"), join(dir, "base_blockmask.npy"),
          join(dir, "bsa.json")};
}

void save_mask_bsa(const std::string& dir, const BlockMask& m) {
  if (m.shape.block_q != 128 || m.shape.block_kv != 128)
    throw UsageError("--bsa: Block-Sparse-Attention uses blocks of 128 tokens; this mask has blocks " +
                     std::to_string(m.shape.block_q) + "x" + std::to_string(m.shape.block_kv) +
                     " (allowed: --block 128)");
  const int64_t B = m.shape.batch, H = m.shape.heads, mq = m.shape.mq(), mk = m.shape.mk();
  std::vector<int32_t> type(size_t(H), 0), streaming(size_t(2 * H), 0);
  std::vector<int64_t> sparse_heads;
  for (int64_t h = 0; h < H; ++h) {
    const HeadInfo& hi = m.heads[size_t(h)];
    if (hi.type == HeadType::Dense) {
      type[size_t(h)] = 0;
    } else if (hi.type == HeadType::Streaming) {
      type[size_t(h)] = -1;
      streaming[size_t(2 * h)] = int32_t(hi.sink_blocks);
      streaming[size_t(2 * h + 1)] = int32_t(hi.local_blocks);
    } else {
      sparse_heads.push_back(h);
      type[size_t(h)] = int32_t(sparse_heads.size());
    }
  }
  const std::vector<std::string> paths = mask_bsa_paths(dir);
  write_int32(paths[0], {H}, type);
  write_int32(paths[1], {2 * H}, streaming);
  const int64_t n = std::max<int64_t>(1, int64_t(sparse_heads.size()));
  NpyArray base(DType::Bool, {B, n, mq, mk});
  for (int64_t b = 0; b < B; ++b)
    for (size_t k = 0; k < sparse_heads.size(); ++k)
      std::memcpy(base.data.data() + size_t((b * n + int64_t(k)) * mq * mk), m.head_bits(b, sparse_heads[k]),
                  size_t(mq * mk));
  write_npy(paths[2], base);
  nlohmann::json j = {{"schema", "bsattn.bsa-export/v1"},
                      {"is_causal", m.causal},
                      {"q_len", m.shape.q_len},
                      {"kv_len", m.shape.kv_len},
                      {"block", 128},
                      {"sparse_heads", sparse_heads},
                      {"what", "block_sparse_attn_func(q, k, v, cu_seqlens_q, cu_seqlens_k, head_mask_type, "
                               "streaming_info, base_blockmask, max_seqlen_q, max_seqlen_k, p_dropout, "
                               "is_causal=is_causal)"}};
  write_text_file(paths[3], j.dump(1) + "\n");
}

}  // namespace bsattn
