// Segment Anything patterns. Layout: `prompt` prompt/output tokens followed by the image embedding grid
// HxW (64x64 for SAM's 1024-pixel input); the token order (--order) is honoured. Prompt tokens attend
// to and are attended by all. Distances are per axis in patches.
//  - sam-prompt:       image-to-prompt: prompt rows and columns dense, image-to-image random blocks at
//                      `density` per row, the diagonal kept (seeded).
//  - sam-hierarchical: heads at several scales: head g attends within non-overlapping windows of
//                      windows[g mod len] patches (the largest may cover the whole grid).
//  - sam-region:       tokens in focus regions (within `margin` of a point, or inside a box) attend to
//                      and are attended by all image tokens; elsewhere a window of `radius`.
//  - sam-hybrid:       SAM's encoder: the first dense_heads heads global (dense), the rest windowed
//                      attention in non-overlapping `window` x `window` windows (14 in SAM).
//  - sam-cross:        decoder-to-encoder cross attention (q_len = tokens, kv_len = H*W, Mq != Mk):
//                      every decoder token attends to the focus regions and to every `stride`-th patch
//                      in both axes (coarse global context). A token order, when given, orders the keys.
#include "patterns/common.h"
#include "patterns/token_grid.h"

namespace bsattn {
namespace {

pat::GridLayout sam_layout(const Params& p, bool with_prompt = true) {
  auto g = p.get_dims("grid");
  if (g.size() != 2) throw UsageError("SAM pattern: grid must be HxW, got " + p.get_string("grid"));
  pat::GridLayout l;
  l.prefix = with_prompt ? p.get_int("prompt") : 0;
  l.h = g[0];
  l.w = g[1];
  return l;
}

PatternDef sam_def(const char* name, const char* summary, std::vector<ParamDef> extra) {
  PatternDef d;
  d.name = name;
  d.family = "sam";
  d.summary = summary;
  d.params = {pat::grid_param("64x64"), pat::int_param("prompt", "8", 0, 1e6, "prompt/output tokens before the image")};
  for (auto& e : extra) d.params.push_back(e);
  d.natural_lengths = [](const Params& p) {
    auto n = sam_layout(p).tokens();
    return std::make_pair(n, n);
  };
  return d;
}

// Non-overlapping windows of w x w patches (the last ones partial).
void mark_windows(const pat::GridBlocks& gb, int64_t w, HeadOutput& out) {
  for (int64_t i = 0; i < gb.mq(); ++i)
    for (auto& r : gb.runs(i))
      gb.mark_box(pat::row_of(out, i), {0, 0, r.y / w * w, r.y / w * w + w - 1, r.x0 / w * w, r.x1 / w * w + w - 1});
  gb.mark_prefix(out);
}

// Focus regions: points (y,x pairs) with a margin, and boxes (y0,x0,y1,x1 inclusive).
struct Regions {
  std::vector<int64_t> points, boxes;
  int64_t margin = 0;
  bool contains(int64_t y, int64_t x) const {
    for (size_t k = 0; k + 1 < points.size(); k += 2)
      if (std::abs(y - points[k]) <= margin && std::abs(x - points[k + 1]) <= margin) return true;
    for (size_t k = 0; k + 3 < boxes.size(); k += 4)
      if (y >= boxes[k] && y <= boxes[k + 2] && x >= boxes[k + 1] && x <= boxes[k + 3]) return true;
    return false;
  }
  bool empty() const { return points.empty() && boxes.empty(); }
};

std::vector<ParamDef> region_params() {
  return {{"points", ParamKind::IntList, "", 0, 1e7, "focus points as y,x pairs in patches", {}},
          {"boxes", ParamKind::IntList, "", 0, 1e7, "focus boxes as y0,x0,y1,x1 (inclusive) in patches", {}},
          pat::int_param("margin", "2", 0, 1e6, "radius around each point in patches")};
}

Regions regions(const Params& p, int64_t h, int64_t w, const std::string& name) {
  Regions r{p.get_int_list("points"), p.get_int_list("boxes"), p.get_int("margin")};
  if (r.points.size() % 2) throw UsageError("pattern '" + name + "': points must be y,x pairs");
  if (r.boxes.size() % 4) throw UsageError("pattern '" + name + "': boxes must be groups of y0,x0,y1,x1");
  for (size_t k = 0; k < r.points.size(); k += 2)
    if (r.points[k] >= h || r.points[k + 1] >= w)
      throw UsageError("pattern '" + name + "': point (" + std::to_string(r.points[k]) + "," +
                       std::to_string(r.points[k + 1]) + ") is outside the " + std::to_string(h) + "x" +
                       std::to_string(w) + " grid");
  for (size_t k = 0; k < r.boxes.size(); k += 4)
    if (r.boxes[k] > r.boxes[k + 2] || r.boxes[k + 1] > r.boxes[k + 3] || r.boxes[k + 2] >= h || r.boxes[k + 3] >= w)
      throw UsageError("pattern '" + name + "': box " + std::to_string(k / 4) +
                       " must have y0<=y1<H and x0<=x1<W in the " + std::to_string(h) + "x" + std::to_string(w) + " grid");
  return r;
}

BSATTN_REGISTER_PATTERN([] {
  auto d = sam_def("sam-prompt", "image-to-prompt: prompt rows/columns dense, image-to-image random at `density` (seeded)",
                   {{"density", ParamKind::Float, "0.1", 0, 1, "share of each row's (visible) blocks kept", {}},
                    pat::seed_param()});
  d.batch_invariant = false;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(sam_layout(p), ctx, "sam-prompt");
    gb.mark_prefix(out);
    auto g = ctx.geometry();
    Rng rng(pat::pattern_seed(ctx, p.get_int("seed"), 0x73616d70));
    std::vector<int64_t> pool;
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) pat::fill_random_row(rng, g, ctx.causal, i, p.get_float("density"), out, pool);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = sam_def("sam-hierarchical", "heads at several scales: head g attends within windows of windows[g mod len] patches",
                   {{"windows", ParamKind::IntList, "8,16,32,64", 1, 1e6, "window side in patches per head (cycled)", {}}});
  d.validate = [](const PatternContext&, const Params& p) {
    if (p.get_int_list("windows").empty()) throw UsageError("pattern 'sam-hierarchical': windows must list at least one size");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(sam_layout(p), ctx, "sam-hierarchical");
    mark_windows(gb, pat::per_head(p.get_int_list("windows"), ctx), out);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto extra = region_params();
  extra.push_back({"radius", ParamKind::IntList, "1", 0, 1e6, "window radius elsewhere: R or RY,RX", {}});
  auto d = sam_def("sam-region", "tokens near points / inside boxes attend to and are attended by all; a window elsewhere",
                   extra);
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(sam_layout(p), ctx, "sam-region");
    auto reg = regions(p, gb.layout().h, gb.layout().w, "sam-region");
    if (reg.empty()) throw UsageError("pattern 'sam-region' needs points=y,x,... or boxes=y0,x0,y1,x1,...");
    auto r = pat::axis_radii(p.get_int_list("radius"), 2, "pattern 'sam-region' radius");
    int64_t r3[3] = {0, r[0], r[1]};
    pat::mark_neighbourhood(gb, r3, out);
    auto in_region = [&](int64_t, int64_t y, int64_t x) { return reg.contains(y, x); };
    auto rows = gb.q_blocks_where(in_region), cols = gb.k_blocks_where(in_region);
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      uint8_t* row = pat::row_of(out, i);
      if (rows[size_t(i)]) std::fill(row, row + out.mk, uint8_t(1));
      for (int64_t j = 0; j < out.mk; ++j) row[j] |= cols[size_t(j)];
    }
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = sam_def("sam-hybrid", "SAM encoder: the first dense_heads heads global, the rest in window x window windows",
                   {pat::int_param("dense_heads", "1", 0, 1e6, "global (dense) heads at the start of the range"),
                    pat::int_param("window", "14", 1, 1e6, "window side in patches")});
  d.validate = [](const PatternContext& ctx, const Params& p) {
    pat::check_dense_heads(ctx, p.get_int("dense_heads"), "sam-hybrid");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    if (ctx.group_head < p.get_int("dense_heads")) {
      std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
      out.info->type = HeadType::Dense;
      return;
    }
    pat::GridBlocks gb(sam_layout(p), ctx, "sam-hybrid");
    mark_windows(gb, p.get_int("window"), out);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "sam-cross";
  d.family = "sam";
  d.summary = "decoder-to-encoder cross attention (Mq != Mk): decoder tokens attend to focus regions + every stride-th patch";
  d.params = {pat::grid_param("64x64"), pat::int_param("tokens", "7", 1, 1e6, "decoder tokens (queries)")};
  for (auto& e : region_params()) d.params.push_back(e);
  d.params.push_back(pat::int_param("stride", "4", 0, 1e6, "also keep every stride-th patch in y and x (0: none)"));
  d.natural_lengths = [](const Params& p) { return std::make_pair(p.get_int("tokens"), sam_layout(p, false).cells()); };
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto l = sam_layout(p, false);
    auto reg = regions(p, l.h, l.w, "sam-cross");
    int64_t stride = p.get_int("stride");
    if (reg.empty() && stride == 0) throw UsageError("pattern 'sam-cross' keeps nothing: give points, boxes or stride >= 1");
    if (ctx.shape.kv_len != l.cells())
      throw UsageError("pattern 'sam-cross': kv_len=" + std::to_string(ctx.shape.kv_len) + " but the grid has " +
                       std::to_string(l.cells()) + " patches (leave out --kv-len to use it)");
    const auto* order = ctx.token_order;
    if (order && int64_t(order->size()) != l.cells())
      throw UsageError("pattern 'sam-cross': the token order has " + std::to_string(order->size()) +
                       " entries, the image " + std::to_string(l.cells()));
    std::vector<uint8_t> keep(size_t(ctx.shape.mk()), 0);
    for (int64_t pos = 0; pos < l.cells(); ++pos) {
      int64_t c = order ? (*order)[size_t(pos)] : pos, y = c / l.w, x = c % l.w;
      if (c < 0 || c >= l.cells()) throw UsageError("pattern 'sam-cross': token order entry " + std::to_string(c) + " is out of range");
      if (reg.contains(y, x) || (stride > 0 && y % stride == 0 && x % stride == 0)) keep[size_t(pos / ctx.shape.block_kv)] = 1;
    }
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) std::copy(keep.begin(), keep.end(), pat::row_of(out, i));
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
