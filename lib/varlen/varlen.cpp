#include "lib/varlen/varlen.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/spec.h"

namespace bsattn {

void check_cu_seqlens(const std::vector<int64_t>& cu, const std::string& what) {
  const char* allowed = "allowed: offsets starting at 0 and strictly increasing, [0, L1, L1+L2, ...], every sequence at "
                        "least 1 token, the total at most 2147483647";
  if (cu.size() < 2)
    throw UsageError(what + ": " + std::to_string(cu.size()) + " offset(s); at least 2 are needed (" + allowed + ")");
  if (cu[0] != 0) throw UsageError(what + ": the first offset is " + std::to_string(cu[0]) + ", not 0 (" + allowed + ")");
  for (size_t i = 1; i < cu.size(); ++i) {
    if (cu[i] <= cu[i - 1])
      throw UsageError(what + ": offsets not increasing at entry " + std::to_string(i) + " (" + std::to_string(cu[i - 1]) +
                       " then " + std::to_string(cu[i]) + "; " + allowed + ")");
    if (cu[i] > std::numeric_limits<int32_t>::max())
      throw UsageError(what + ": offset " + std::to_string(cu[i]) + " at entry " + std::to_string(i) +
                       " does not fit int32 (" + allowed + ")");
  }
}

std::vector<int32_t> parse_seqlens(const std::string& text, const std::string& what) {
  std::vector<int64_t> cu{0};
  for (const std::string& item : split_list(text, what, "1000,517,3000")) {
    if (item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoll(item) <= 0)
      throw UsageError(what + ": '" + item + "' is not a sequence length (allowed: positive integers separated by ',', "
                       "e.g. 1000,517,3000)");
    cu.push_back(cu.back() + std::stoll(item));
  }
  check_cu_seqlens(cu, what);
  return std::vector<int32_t>(cu.begin(), cu.end());
}

std::vector<int32_t> load_cu_seqlens(const std::string& path, const std::string& what) {
  NpyArray a = read_npy(path);
  const std::string name = what + " " + path;
  if (a.shape.size() != 1)
    throw UsageError(name + ": shape " + a.shape_str() + " (allowed: 1-D int32 or int64 offsets [0, L1, L1+L2, ...])");
  std::vector<int64_t> cu(size_t(a.numel()));
  if (a.dtype == DType::Int32)
    for (size_t i = 0; i < cu.size(); ++i) cu[i] = a.as<int32_t>()[i];
  else if (a.dtype == DType::Int64)
    for (size_t i = 0; i < cu.size(); ++i) cu[i] = a.as<int64_t>()[i];
  else
    throw UsageError(name + ": dtype " + dtype_name(a.dtype) + " (allowed: int32 or int64 offsets)");
  check_cu_seqlens(cu, name);
  return std::vector<int32_t>(cu.begin(), cu.end());
}

std::vector<int32_t> varlen_offsets(const std::string& seqlens, const std::string& cu_seqlens_file) {
  if (!seqlens.empty() && !cu_seqlens_file.empty())
    throw UsageError("--seqlens and --cu-seqlens both give the sequence offsets; give one");
  if (!seqlens.empty()) return parse_seqlens(seqlens, "--seqlens");
  if (!cu_seqlens_file.empty()) return load_cu_seqlens(cu_seqlens_file, "--cu-seqlens");
  return {};
}

int64_t max_seqlen(const std::vector<int32_t>& cu) {
  int64_t m = 0;
  for (size_t i = 1; i < cu.size(); ++i) m = std::max<int64_t>(m, cu[i] - cu[i - 1]);
  return m;
}

std::vector<int64_t> seqlens_of(const std::vector<int32_t>& cu) {
  std::vector<int64_t> l;
  for (size_t i = 1; i < cu.size(); ++i) l.push_back(cu[i] - cu[i - 1]);
  return l;
}

void check_packed(const Tensor& t, const std::vector<int32_t>& cu, const std::string& offsets_what) {
  if (t.batch != 1)
    throw UsageError(t.name + ": batch " + std::to_string(t.batch) + " with " + offsets_what +
                     " (allowed: packed tensors [total,H,D] or [1,total,H,D])");
  if (t.seq != cu.back())
    throw UsageError(t.name + " has " + std::to_string(t.seq) + " rows but " + offsets_what + " totals " +
                     std::to_string(cu.back()) + " tokens (they must be equal)");
}

AttentionProblem varlen_problem(const Tensor& q, const Tensor& k, const std::vector<int32_t>& cu) {
  AttentionProblem p = problem_for(q, k);
  p.batch = int64_t(cu.size()) - 1;
  p.q_len = p.kv_len = max_seqlen(cu);
  p.cu_seqlens_q = cu;
  p.cu_seqlens_k = cu;
  return p;
}

BlockMask crop_sequence_mask(const BlockMask& m, int64_t b, int64_t len) {
  MaskShape s = m.shape;
  s.batch = 1;
  s.q_len = s.kv_len = len;
  BlockMask c(s);
  c.causal = m.causal;
  c.heads = m.heads;
  c.spec = m.spec;
  const int64_t mb = m.shape.batch == 1 ? 0 : b, mk = m.shape.mk(), cq = s.mq(), ck = s.mk();
  auto g = c.geometry();
  for (int64_t h = 0; h < s.heads; ++h) {
    uint8_t* dst = c.head_bits(0, h);
    const HeadInfo& info = c.heads[size_t(h)];
    if (info.type == HeadType::Dense) {
      std::fill(dst, dst + cq * ck, uint8_t(1));
    } else if (info.type == HeadType::Streaming) {
      fill_streaming(g, info.sink_blocks, info.local_blocks, dst);
    } else {
      const uint8_t* src = m.head_bits(mb, h);
      for (int64_t i = 0; i < cq; ++i) std::copy(src + i * mk, src + i * mk + ck, dst + i * ck);
    }
  }
  c.apply_causal();
  return c;
}

BlockMask embed_sequence_masks(const std::vector<BlockMask>& per_seq, int64_t max_len) {
  if (per_seq.empty()) throw std::logic_error("embed_sequence_masks: no sequences");
  MaskShape s = per_seq[0].shape;
  s.batch = int64_t(per_seq.size());
  s.q_len = s.kv_len = max_len;
  BlockMask m(s);
  m.causal = per_seq[0].causal;
  m.heads = per_seq[0].heads;
  m.spec = per_seq[0].spec;
  const int64_t mk = s.mk();
  for (int64_t b = 0; b < s.batch; ++b) {
    const BlockMask& x = per_seq[size_t(b)];
    const int64_t xq = x.shape.mq(), xk = x.shape.mk();
    for (int64_t h = 0; h < s.heads; ++h) {
      // Sparse (the bitmaps are exact) unless every sequence has a dense head here; a streaming head's
      // diagonal would be placed by the longest sequence's geometry, so it becomes sparse too.
      if (!(x.heads[size_t(h)] == m.heads[size_t(h)]) || m.heads[size_t(h)].type == HeadType::Streaming)
        m.heads[size_t(h)] = HeadInfo{};
      const uint8_t* src = x.head_bits(0, h);
      uint8_t* dst = m.head_bits(b, h);
      for (int64_t i = 0; i < xq; ++i) std::copy(src + i * xk, src + (i + 1) * xk, dst + i * mk);
    }
  }
  return m;
}

BlockMask build_varlen_mask(const std::vector<int32_t>& cu,
                            const std::function<BlockMask(int64_t b, int64_t len)>& one_sequence) {
  std::vector<BlockMask> per_seq;
  for (size_t b = 0; b + 1 < cu.size(); ++b) per_seq.push_back(one_sequence(int64_t(b), cu[b + 1] - cu[b]));
  return embed_sequence_masks(per_seq, max_seqlen(cu));
}

MaskStats merge_mask_stats(const std::vector<MaskStats>& parts, const std::vector<int64_t>& rows_per_head,
                           const std::vector<int64_t>& cells_per_head) {
  MaskStats st;
  if (parts.empty()) return st;
  const size_t H = parts[0].heads.size();
  std::vector<int64_t> vis(H, 0), dense(H, 0);
  int64_t rows = 0, cells = 0;
  std::vector<double> diag(H, 0);
  st.heads = parts[0].heads;
  for (auto& h : st.heads) {
    h.kept_blocks = h.computed_pairs = h.empty_rows = h.bandwidth = h.row_max = 0;
    h.row_min = std::numeric_limits<int64_t>::max();
  }
  for (size_t b = 0; b < parts.size(); ++b) {
    const MaskStats& p = parts[b];
    st.kept_blocks += p.kept_blocks;
    st.visible_blocks += p.visible_blocks;
    st.computed_pairs += p.computed_pairs;
    st.dense_pairs += p.dense_pairs;
    st.empty_rows += p.empty_rows;
    rows += rows_per_head[b];
    cells += cells_per_head[b];
    for (size_t h = 0; h < H; ++h) {
      const HeadStats& x = p.heads[h];
      HeadStats& y = st.heads[h];
      y.kept_blocks += x.kept_blocks;
      y.computed_pairs += x.computed_pairs;
      y.empty_rows += x.empty_rows;
      y.bandwidth = std::max(y.bandwidth, x.bandwidth);
      y.row_min = std::min(y.row_min, x.row_min);
      y.row_max = std::max(y.row_max, x.row_max);
      vis[h] += p.visible_blocks / int64_t(H);
      dense[h] += p.dense_pairs / int64_t(H);
      diag[h] += x.diag_coverage * double(rows_per_head[b]);
    }
  }
  for (size_t h = 0; h < H; ++h) {
    HeadStats& y = st.heads[h];
    y.density = vis[h] ? double(y.kept_blocks) / double(vis[h]) : 0;
    y.pair_density = dense[h] ? double(y.computed_pairs) / double(dense[h]) : 0;
    y.row_mean = rows ? double(y.kept_blocks) / double(rows) : 0;
    y.diag_coverage = rows ? diag[h] / double(rows) : 0;
  }
  st.density = st.visible_blocks ? double(st.kept_blocks) / double(st.visible_blocks) : 0;
  st.bitmap_fill = cells ? double(st.kept_blocks) / double(cells * int64_t(H)) : 0;
  return st;
}

MaskStats varlen_mask_stats(const BlockMask& m, const std::vector<int32_t>& cu) {
  std::vector<MaskStats> parts;
  std::vector<int64_t> rows, cells;
  for (size_t b = 0; b + 1 < cu.size(); ++b) {
    BlockMask c = crop_sequence_mask(m, int64_t(b), cu[b + 1] - cu[b]);
    parts.push_back(mask_stats(c));
    rows.push_back(c.shape.mq());
    cells.push_back(c.shape.head_cells());
  }
  return merge_mask_stats(parts, rows, cells);
}

}  // namespace bsattn
