// ViT patterns on the 2D patch grid: `cls` CLS tokens followed by a gh x gw grid of patches
// (gh = img/patch unless grid=HxW is given). CLS tokens attend to and are attended by all. The token
// order (--order) is honoured: masks are exact for the reordered sequence. Distances are per axis
// (a box: |dy| <= ry and |dx| <= rx).
//  - vit-spatial:    patches within `radius` patches.
//  - vit-random:     random blocks at `density` per row (diagonal kept) + CLS rows/columns (seeded).
//  - vit-strided:    axial: a patch attends to its grid row and its grid column (Sparse Transformer's
//                    strided pattern on images with stride = the grid width).
//  - vit-hybrid:     the first `dense_heads` heads dense, the rest vit-spatial.
//  - vit-multiscale: vit-spatial with radius radii[g mod len] for head g.
#include "patterns/common.h"
#include "patterns/token_grid.h"

namespace bsattn {
namespace {

std::vector<ParamDef> vit_params() {
  return {pat::int_param("img", "224", 1, 1e6, "image side in pixels (square)"),
          pat::int_param("patch", "16", 1, 1e6, "patch side in pixels"),
          {"grid", ParamKind::Dims, "", 1, 1e7, "patch grid HxW (overrides img/patch)", {}},
          pat::int_param("cls", "1", 0, 1e6, "CLS / register tokens before the patches (dense)")};
}

pat::GridLayout vit_layout(const Params& p) {
  pat::GridLayout l;
  l.prefix = p.get_int("cls");
  auto grid = p.get_dims("grid");
  if (!grid.empty()) {
    if (grid.size() != 2) throw UsageError("ViT pattern: grid must be HxW, got " + p.get_string("grid"));
    l.h = grid[0];
    l.w = grid[1];
  } else {
    int64_t img = p.get_int("img"), patch = p.get_int("patch");
    if (img % patch)
      throw UsageError("ViT pattern: img=" + std::to_string(img) + " is not a multiple of patch=" + std::to_string(patch));
    l.h = l.w = img / patch;
  }
  return l;
}

PatternDef vit_def(const char* name, const char* summary, std::vector<ParamDef> extra) {
  PatternDef d;
  d.name = name;
  d.family = "vit";
  d.summary = summary;
  d.params = vit_params();
  for (auto& e : extra) d.params.push_back(e);
  d.natural_lengths = [](const Params& p) {
    auto n = vit_layout(p).tokens();
    return std::make_pair(n, n);
  };
  return d;
}

void spatial(const PatternContext& ctx, const Params& p, const std::vector<int64_t>& radius, HeadOutput& out,
             const char* name) {
  pat::GridBlocks gb(vit_layout(p), ctx, name);
  auto r = pat::axis_radii(radius, 2, std::string("pattern '") + name + "' radius");
  int64_t r3[3] = {0, r[0], r[1]};
  pat::mark_neighbourhood(gb, r3, out);
}

ParamDef radius_param(const char* def) {
  return {"radius", ParamKind::IntList, def, 0, 1e6, "radius in patches: R or RY,RX", {}};
}

BSATTN_REGISTER_PATTERN([] {
  auto d = vit_def("vit-spatial", "patches within `radius` patches (box), CLS dense", {radius_param("1")});
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    spatial(ctx, p, p.get_int_list("radius"), out, "vit-spatial");
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = vit_def("vit-random", "random blocks at `density` per row, diagonal and CLS rows/columns kept (seeded)",
                   {{"density", ParamKind::Float, "0.25", 0, 1, "share of each row's (visible) blocks kept", {}},
                    pat::seed_param()});
  d.batch_invariant = false;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(vit_layout(p), ctx, "vit-random");
    gb.mark_prefix(out);
    auto g = ctx.geometry();
    Rng rng(pat::pattern_seed(ctx, p.get_int("seed"), 0x76697472));
    std::vector<int64_t> pool;
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) pat::fill_random_row(rng, g, ctx.causal, i, p.get_float("density"), out, pool);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = vit_def("vit-strided", "axial: each patch attends to its grid row and grid column, CLS dense", {});
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(vit_layout(p), ctx, "vit-strided");
    int64_t h = gb.layout().h, w = gb.layout().w;
    for (int64_t i = 0; i < gb.mq(); ++i)
      for (auto& run : gb.runs(i)) {
        gb.mark_box(pat::row_of(out, i), {0, 0, run.y, run.y, 0, w - 1});
        gb.mark_box(pat::row_of(out, i), {0, 0, 0, h - 1, run.x0, run.x1});
      }
    gb.mark_prefix(out);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = vit_def("vit-hybrid", "the first dense_heads heads dense, the rest vit-spatial with `radius`",
                   {pat::int_param("dense_heads", "1", 0, 1e6, "dense heads at the start of the range"), radius_param("1")});
  d.validate = [](const PatternContext& ctx, const Params& p) {
    pat::check_dense_heads(ctx, p.get_int("dense_heads"), "vit-hybrid");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    if (ctx.group_head < p.get_int("dense_heads")) {
      std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
      out.info->type = HeadType::Dense;
      return;
    }
    spatial(ctx, p, p.get_int_list("radius"), out, "vit-hybrid");
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = vit_def("vit-multiscale", "vit-spatial with a radius per head: head g uses radii[g mod len]",
                   {{"radii", ParamKind::IntList, "1,2,4,8", 0, 1e6, "radius in patches per head (cycled)", {}}});
  d.validate = [](const PatternContext&, const Params& p) {
    if (p.get_int_list("radii").empty()) throw UsageError("pattern 'vit-multiscale': radii must list at least one radius");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    spatial(ctx, p, {pat::per_head(p.get_int_list("radii"), ctx)}, out, "vit-multiscale");
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
