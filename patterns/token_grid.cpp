#include "patterns/token_grid.h"

#include <algorithm>

#include "lib/error.h"
#include "patterns/common.h"

namespace bsattn::pat {

void check_layout_length(const GridLayout& g, const PatternContext& ctx, const std::string& pattern) {
  const auto& s = ctx.shape;
  int64_t n = g.tokens();
  if (s.q_len != n || s.kv_len != n)
    throw UsageError("pattern '" + pattern + "': its layout has " + std::to_string(g.prefix) + " + " +
                     std::to_string(g.t) + "x" + std::to_string(g.h) + "x" + std::to_string(g.w) + " = " +
                     std::to_string(n) + " tokens, but q_len=" + std::to_string(s.q_len) +
                     ", kv_len=" + std::to_string(s.kv_len) + " (leave out --seq to use the layout's length)");
}

GridBlocks::GridBlocks(const GridLayout& layout, const PatternContext& ctx, const std::string& pattern) : g_(layout) {
  check_layout_length(g_, ctx, pattern);
  const auto& s = ctx.shape;
  int64_t n = g_.tokens();
  const std::vector<int64_t>* order = ctx.token_order;
  if (order && int64_t(order->size()) != n)
    throw UsageError("pattern '" + pattern + "': the token order has " + std::to_string(order->size()) +
                     " entries, the sequence " + std::to_string(n));
  mq_ = s.mq();
  mk_ = s.mk();
  q_block_.assign(size_t(g_.cells()), -1);
  k_block_.assign(size_t(g_.cells()), -1);
  q_prefix_.assign(size_t(mq_), 0);
  k_prefix_.assign(size_t(mk_), 0);
  for (int64_t p = 0; p < n; ++p) {
    int64_t r = order ? (*order)[size_t(p)] : p;
    if (r < 0 || r >= n) throw UsageError("pattern '" + pattern + "': token order entry " + std::to_string(r) + " is out of range");
    if (r < g_.prefix) {
      q_prefix_[size_t(p / s.block_q)] = 1;
      k_prefix_[size_t(p / s.block_kv)] = 1;
      continue;
    }
    auto c = size_t(r - g_.prefix);
    if (q_block_[c] >= 0) throw UsageError("pattern '" + pattern + "': the token order repeats token " + std::to_string(r));
    q_block_[c] = int32_t(p / s.block_q);
    k_block_[c] = int32_t(p / s.block_kv);
  }
  for (size_t c = 0; c < q_block_.size(); ++c)
    if (q_block_[c] < 0)
      throw UsageError("pattern '" + pattern + "': the token order is not a permutation (token " +
                       std::to_string(int64_t(c) + g_.prefix) + " is missing)");
  q_runs_.assign(size_t(mq_), {});
  k_next_.assign(size_t(g_.cells()), 0);
  for (int64_t t = 0; t < g_.t; ++t)
    for (int64_t y = 0; y < g_.h; ++y) {
      int64_t base = (t * g_.h + y) * g_.w;
      for (int64_t x = 0; x < g_.w;) {
        int64_t e = x;
        while (e + 1 < g_.w && q_block_[size_t(base + e + 1)] == q_block_[size_t(base + x)]) ++e;
        q_runs_[size_t(q_block_[size_t(base + x)])].push_back({t, y, x, e});
        x = e + 1;
      }
      int64_t next = g_.w;
      for (int64_t x = g_.w - 1; x >= 0; --x) {
        k_next_[size_t(base + x)] = int32_t(next);
        if (x > 0 && k_block_[size_t(base + x - 1)] != k_block_[size_t(base + x)]) next = x;
      }
    }
}

void GridBlocks::mark_box(uint8_t* row, CellBox b) const {
  b.t0 = std::max<int64_t>(b.t0, 0), b.t1 = std::min(b.t1, g_.t - 1);
  b.y0 = std::max<int64_t>(b.y0, 0), b.y1 = std::min(b.y1, g_.h - 1);
  b.x0 = std::max<int64_t>(b.x0, 0), b.x1 = std::min(b.x1, g_.w - 1);
  for (int64_t t = b.t0; t <= b.t1; ++t)
    for (int64_t y = b.y0; y <= b.y1; ++y) {
      int64_t base = (t * g_.h + y) * g_.w;
      for (int64_t x = b.x0; x <= b.x1; x = k_next_[size_t(base + x)]) row[k_block_[size_t(base + x)]] = 1;
    }
}

void GridBlocks::mark_prefix(HeadOutput& out) const {
  for (int64_t i = 0; i < mq_; ++i) {
    uint8_t* row = out.bits + i * out.mk;
    if (q_prefix_[size_t(i)]) std::fill(row, row + out.mk, uint8_t(1));
    for (int64_t j = 0; j < mk_; ++j)
      if (k_prefix_[size_t(j)]) row[j] = 1;
  }
}

ParamDef grid_param(const std::string& def) {
  return {"grid", ParamKind::Dims, def, 1, 1e7, "token grid TxHxW (video) or HxW (image)", {}};
}

std::vector<int64_t> axis_radii(const std::vector<int64_t>& given, int64_t dims, const std::string& what) {
  if (given.size() == 1) return std::vector<int64_t>(size_t(dims), given[0]);
  if (int64_t(given.size()) != dims)
    throw UsageError(what + " needs 1 or " + std::to_string(dims) + " values, got " + std::to_string(given.size()));
  return given;
}

void mark_neighbourhood(const GridBlocks& gb, const int64_t r[3], HeadOutput& out) {
  for (int64_t i = 0; i < gb.mq(); ++i) {
    uint8_t* row = row_of(out, i);
    for (auto& run : gb.runs(i))
      gb.mark_box(row, {run.t - r[0], run.t + r[0], run.y - r[1], run.y + r[1], run.x0 - r[2], run.x1 + r[2]});
  }
  gb.mark_prefix(out);
}

}  // namespace bsattn::pat
