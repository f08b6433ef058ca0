// Video patterns over a (T,H,W) grid of latent patch tokens with a text prefix (CogVideoX layout:
// `text` tokens first; they attend to and are attended by all). The token order (--order) is
// honoured, so masks are exact for curve-reordered sequences. A block pair is kept exactly when some
// token pair in it is allowed (see patterns/token_grid.h for how this is computed without O(S^2)).
//  - video-3d:     3D neighbourhood: |dt| <= rt, |dy| <= ry, |dx| <= rx (radius=RT,RY,RX or one R).
//  - video-sta:    Sliding Tile Attention (Zhang et al. 2025): the grid is cut into tiles of
//                  tile=TT,TY,TX tokens; a query in tile a attends to the keys of the window=WT,WY,WX
//                  tiles centred on a, shifted inward at the borders (edge tiles may be partial). With
//                  no --order the sequence is tile-major (STA's layout; layout=raster for raster).
//  - video-radial: Radial Attention (Li et al. 2025): spatial window that halves as the frame distance
//                  doubles: frame distance d uses width floor((2r+1) / 2^k) per spatial axis, k = 0 for
//                  d <= 1 else floor(log2 d), radius (width-1)/2; frames whose width reaches 0 are skipped.
#include <array>

#include "patterns/common.h"
#include "patterns/token_grid.h"

namespace bsattn {
namespace {

pat::GridLayout video_layout(const Params& p) {
  auto g = p.get_dims("grid");
  if (g.size() != 3) throw UsageError("video pattern: grid must be TxHxW, got " + p.get_string("grid"));
  pat::GridLayout l;
  l.prefix = p.get_int("text");
  l.t = g[0];
  l.h = g[1];
  l.w = g[2];
  return l;
}

PatternDef video_def(const char* name, const char* summary, const char* text_default, std::vector<ParamDef> extra) {
  PatternDef d;
  d.name = name;
  d.family = "video";
  d.summary = summary;
  d.params = {{"grid", ParamKind::Dims, "13x30x45", 1, 1e7, "latent token grid TxHxW (CogVideoX-2B 49 frames: 13x30x45)", {}},
              pat::int_param("text", text_default, 0, 1e9, "text tokens before the video tokens (dense)")};
  for (auto& e : extra) d.params.push_back(e);
  d.natural_lengths = [](const Params& p) {
    auto n = video_layout(p).tokens();
    return std::make_pair(n, n);
  };
  d.head_invariant = true;
  return d;
}

BSATTN_REGISTER_PATTERN([] {
  auto d = video_def("video-3d", "3D neighbourhood window over the (T,H,W) grid + dense text prefix", "226",
                     {{"radius", ParamKind::IntList, "1,3,3", 0, 1e6, "radius in tokens: R or RT,RY,RX", {}}});
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(video_layout(p), ctx, "video-3d");
    auto r = pat::axis_radii(p.get_int_list("radius"), 3, "pattern 'video-3d' radius");
    pat::mark_neighbourhood(gb, r.data(), out);
  };
  return d;
}());

// STA window of tile `a` among n tiles: tiles [start, end] (inclusive).
void sta_window(int64_t a, int64_t n, int64_t w, int64_t& start, int64_t& end) {
  start = std::clamp<int64_t>(a - w / 2, 0, std::max<int64_t>(0, n - w));
  end = std::min(n, start + w) - 1;
}

// Tile-major order of a grid with a prefix: prefix first, then tiles in raster order, cells inside a
// tile in raster order.
std::vector<int64_t> tile_major_order(const pat::GridLayout& l, const std::vector<int64_t>& tile) {
  std::vector<int64_t> perm;
  perm.reserve(size_t(l.tokens()));
  for (int64_t k = 0; k < l.prefix; ++k) perm.push_back(k);
  int64_t dims[3] = {l.t, l.h, l.w};
  for (int64_t a = 0; a < dims[0]; a += tile[0])
    for (int64_t b = 0; b < dims[1]; b += tile[1])
      for (int64_t c = 0; c < dims[2]; c += tile[2])
        for (int64_t t = a; t < std::min(dims[0], a + tile[0]); ++t)
          for (int64_t y = b; y < std::min(dims[1], b + tile[1]); ++y)
            for (int64_t x = c; x < std::min(dims[2], c + tile[2]); ++x) perm.push_back(l.prefix + (t * l.h + y) * l.w + x);
  return perm;
}

BSATTN_REGISTER_PATTERN([] {
  auto d = video_def("video-sta", "Sliding Tile Attention: queries of a tile attend to a window of tiles (tile-major order)", "0",
                     {{"tile", ParamKind::IntList, "4,8,8", 1, 1e6, "tile size in tokens: TT,TY,TX (or one value)", {}},
                      {"window", ParamKind::IntList, "3,3,3", 1, 1e6, "window in tiles: WT,WY,WX (or one value)", {}},
                      {"layout", ParamKind::String, "tiled", 0, 0, "token order when no --order is given", {"tiled", "raster"}}});
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto l = video_layout(p);
    auto tile = pat::axis_radii(p.get_int_list("tile"), 3, "pattern 'video-sta' tile");
    auto win = pat::axis_radii(p.get_int_list("window"), 3, "pattern 'video-sta' window");
    pat::check_layout_length(l, ctx, "video-sta");  // before the order: its size is the layout's
    std::vector<int64_t> order;
    PatternContext c = ctx;
    if (!ctx.token_order && p.get_string("layout") == "tiled") {
      order = tile_major_order(l, tile);
      c.token_order = &order;
    }
    pat::GridBlocks gb(l, c, "video-sta");
    int64_t n[3] = {(l.t + tile[0] - 1) / tile[0], (l.h + tile[1] - 1) / tile[1], (l.w + tile[2] - 1) / tile[2]};
    // Cells of key tiles [s, e] along axis a.
    auto cells = [&](int a, int64_t s, int64_t e, int64_t& c0, int64_t& c1) {
      c0 = s * tile[a];
      c1 = (e + 1) * tile[a] - 1;
    };
    for (int64_t i = 0; i < gb.mq(); ++i)
      for (auto& r : gb.runs(i)) {
        int64_t s, e, box[6];
        sta_window(r.t / tile[0], n[0], win[0], s, e);
        cells(0, s, e, box[0], box[1]);
        sta_window(r.y / tile[1], n[1], win[1], s, e);
        cells(1, s, e, box[2], box[3]);
        // Windows of consecutive tiles overlap, so the run's tiles give one interval.
        int64_t s2, e2;
        sta_window(r.x0 / tile[2], n[2], win[2], s, e);
        sta_window(r.x1 / tile[2], n[2], win[2], s2, e2);
        cells(2, s, e2, box[4], box[5]);
        gb.mark_box(pat::row_of(out, i), {box[0], box[1], box[2], box[3], box[4], box[5]});
      }
    gb.mark_prefix(out);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  auto d = video_def("video-radial", "Radial Attention: spatial window halves as the frame distance doubles", "226",
                     {{"radius", ParamKind::IntList, "8,8", 0, 1e6, "spatial radius at frame distance 0-1: R or RY,RX", {}}});
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    pat::GridBlocks gb(video_layout(p), ctx, "video-radial");
    auto r = pat::axis_radii(p.get_int_list("radius"), 2, "pattern 'video-radial' radius");
    int64_t T = gb.layout().t;
    // Per frame distance: spatial radii, or -1 when the frame is skipped.
    std::vector<std::array<int64_t, 2>> rad(static_cast<size_t>(T));
    for (int64_t dist = 0; dist < T; ++dist) {
      int k = 0;
      while ((int64_t(2) << k) <= dist) ++k;  // k = floor(log2 dist) for dist >= 2
      for (int a = 0; a < 2; ++a) {
        int64_t width = (2 * r[size_t(a)] + 1) >> k;
        rad[size_t(dist)][size_t(a)] = width >= 1 ? (width - 1) / 2 : -1;
      }
    }
    for (int64_t i = 0; i < gb.mq(); ++i)
      for (auto& run : gb.runs(i))
        for (int64_t t = 0; t < T; ++t) {
          auto& rr = rad[size_t(std::abs(t - run.t))];
          if (rr[0] < 0 || rr[1] < 0) continue;
          gb.mark_box(pat::row_of(out, i), {t, t, run.y - rr[0], run.y + rr[0], run.x0 - rr[1], run.x1 + rr[1]});
        }
    gb.mark_prefix(out);
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
