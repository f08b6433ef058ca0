// Token layouts of image and video patterns: `prefix` dense tokens (text, CLS, prompts) followed by a
// T x H x W grid of patch tokens, in raster order (t, then y, then x) unless a token order is given
// (PatternContext::token_order: perm[p] = raster index of the token at sequence position p, covering
// the prefix too). Masks are then exact for the reordered sequence.
//
// Block membership without O(S^2) work: every query block is described by runs of its grid cells
// (maximal x-intervals of one grid row in the same block); a pattern turns each run into key boxes
// (the union of the key regions of the run's tokens), and mark_box() walks the rows of a box jumping
// over x-runs of equal key block, so a block pair is kept exactly when some token pair in it is.
#pragma once
#include <cstdint>
#include <vector>

#include "patterns/registry.h"

namespace bsattn::pat {

struct GridLayout {
  int64_t prefix = 0;
  int64_t t = 1, h = 1, w = 1;
  int64_t cells() const { return t * h * w; }
  int64_t tokens() const { return prefix + cells(); }
};

struct CellRun {
  int64_t t, y, x0, x1;  // inclusive x range
};
struct CellBox {
  int64_t t0, t1, y0, y1, x0, x1;  // inclusive; clipped by mark_box
};

// UsageError unless the layout's token count is the mask's q_len and kv_len: the first check of every
// grid pattern, before anything sized by the layout is built.
void check_layout_length(const GridLayout& g, const PatternContext& ctx, const std::string& pattern);

class GridBlocks {
 public:
  // Checks that the mask's q_len and kv_len equal layout.tokens() and the order (if any) is a
  // permutation of them; UsageError naming `pattern` otherwise.
  GridBlocks(const GridLayout& layout, const PatternContext& ctx, const std::string& pattern);

  const GridLayout& layout() const { return g_; }
  int64_t mq() const { return mq_; }
  const std::vector<CellRun>& runs(int64_t i) const { return q_runs_[size_t(i)]; }  // of query block i
  // Sets in `row` every key block holding a cell of the box.
  void mark_box(uint8_t* row, CellBox b) const;
  // Rows of query blocks and columns of key blocks holding prefix tokens become full.
  void mark_prefix(HeadOutput& out) const;
  bool q_block_has_prefix(int64_t i) const { return q_prefix_[size_t(i)] != 0; }
  // Query blocks / key blocks holding a cell for which `pred(t, y, x)` holds.
  template <class F>
  std::vector<uint8_t> q_blocks_where(F pred) const { return blocks_where(q_block_, mq_, pred); }
  template <class F>
  std::vector<uint8_t> k_blocks_where(F pred) const { return blocks_where(k_block_, mk_, pred); }

 private:
  template <class F>
  std::vector<uint8_t> blocks_where(const std::vector<int32_t>& block, int64_t n, F pred) const {
    std::vector<uint8_t> v(size_t(n), 0);
    int64_t c = 0;
    for (int64_t t = 0; t < g_.t; ++t)
      for (int64_t y = 0; y < g_.h; ++y)
        for (int64_t x = 0; x < g_.w; ++x, ++c)
          if (pred(t, y, x)) v[size_t(block[size_t(c)])] = 1;
    return v;
  }
  GridLayout g_;
  int64_t mq_ = 0, mk_ = 0;
  std::vector<int32_t> q_block_, k_block_;  // raster cell -> block
  std::vector<int32_t> k_next_;             // raster cell -> next x in its row with another key block
  std::vector<std::vector<CellRun>> q_runs_;
  std::vector<uint8_t> q_prefix_, k_prefix_;
};

// Parameters shared by the grid patterns.
ParamDef grid_param(const std::string& def);  // "grid": TxHxW (or HxW for images)
// Per-axis radius list "rt,ry,rx" (or "ry,rx" / one value for all axes) for `dims` axes.
std::vector<int64_t> axis_radii(const std::vector<int64_t>& given, int64_t dims, const std::string& what);
// Marks the key boxes of a per-axis box neighbourhood (|dt|<=r[0], |dy|<=r[1], |dx|<=r[2]) for
// every query block; prefix rows/columns full.
void mark_neighbourhood(const GridBlocks& gb, const int64_t r[3], HeadOutput& out);

}  // namespace bsattn::pat
