#include "lib/render/curve_render.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "lib/error.h"
#include "lib/render/plot.h"

namespace bsattn::render {

CurveView parse_curve_view(const std::string& s) {
  if (s == "path") return CurveView::Path;
  if (s == "blocks") return CurveView::Blocks;
  throw UsageError("--view '" + s + "' is not known: use path or blocks");
}

std::vector<int64_t> curve_frames(int64_t t, int max_frames) {
  std::vector<int64_t> f;
  if (t <= max_frames) {
    for (int64_t i = 0; i < t; ++i) f.push_back(i);
    return f;
  }
  for (int k = 0; k < max_frames; ++k) f.push_back(int64_t(std::llround(double(k) * double(t - 1) / double(max_frames - 1))));
  f.erase(std::unique(f.begin(), f.end()), f.end());
  return f;
}

FigureReport render_curve_figure(const curves::Grid& g, const std::vector<NamedOrder>& orders,
                                 const CurveFigureOptions& o, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  if (orders.empty()) throw UsageError("give at least one order (--order raster,gilbert)");
  if (o.block < 1) throw UsageError("--block must be at least 1");
  if (o.max_frames < 1) throw UsageError("--frames must be at least 1");
  const int64_t n = g.size();
  for (auto& ord : orders)
    if (int64_t(ord.perm.size()) != n)
      throw UsageError("order '" + ord.name + "' has " + std::to_string(ord.perm.size()) + " positions, the grid " +
                       std::to_string(n));
  if (n > (int64_t(1) << 24)) throw UsageError("grid " + g.str() + " is too large to draw (at most 2^24 cells)");
  const double s = o.scale;
  const auto frames = curve_frames(g.t, o.max_frames);
  const int nf = int(frames.size()), rows = int(orders.size());
  const double L = 20 * s, R = 20 * s, T = 70 * s, B = (o.view == CurveView::Path ? 80 : 30) * s;
  const double row_label = 24 * s, frame_label = g.t > 1 ? 18 * s : 0, gap_x = 10 * s, gap_y = 18 * s;
  // Cell size: fit the requested width, else about 1100 px wide and 260 px per frame row.
  double cell;
  if (o.width > 0) cell = (o.width - L - R - (nf - 1) * gap_x) / double(nf * g.w);
  else cell = std::clamp(std::min(1100.0 * s / double(nf * g.w), 320.0 * s / double(g.h)), 1.0, 28.0 * s);
  if (o.height > 0 && o.width <= 0)
    cell = (o.height - T - B - rows * (row_label + frame_label) - (rows - 1) * gap_y) / double(rows * g.h);
  if (cell < 1) throw UsageError("--width/--height leave less than one pixel per grid cell");
  const double fw = cell * double(g.w), fh = cell * double(g.h);
  const int W = o.width > 0 ? o.width : int(std::ceil(L + R + nf * fw + (nf - 1) * gap_x));
  const int H = o.height > 0 ? o.height : int(std::ceil(T + B + rows * (row_label + frame_label + fh) + (rows - 1) * gap_y));

  FigureReport rep;
  Canvas c(W, H, o.format);
  c.fill(Rgb{1, 1, 1});
  const Rgb ink{0.13, 0.13, 0.13};
  const int64_t hw = g.h * g.w;
  for (int r = 0; r < rows; ++r) {
    const auto& perm = orders[size_t(r)].perm;
    curves::check_permutation(perm, "order '" + orders[size_t(r)].name + "'");
    std::vector<int64_t> pos(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[size_t(perm[size_t(i)])] = i;
    const double ry = T + r * (row_label + frame_label + fh + gap_y);
    char label[256];
    std::snprintf(label, sizeof label, "%s%s", orders[size_t(r)].name.c_str(),
                  o.view == CurveView::Blocks
                      ? ("  (" + std::to_string((n + o.block - 1) / o.block) + " blocks of " + std::to_string(o.block) + " tokens)").c_str()
                      : "");
    c.text(label, L, ry + row_label - 6 * s, 13 * s, ink, HAlign::Left, VAlign::Bottom, true);
    for (int f = 0; f < nf; ++f) {
      const int64_t t = frames[size_t(f)];
      const double fx = std::round(L + f * (fw + gap_x)), fy = std::round(ry + row_label + frame_label);
      if (g.t > 1) c.text("t = " + std::to_string(t), fx + fw / 2, fy - 4 * s, 11 * s, ink, HAlign::Center, VAlign::Bottom);
      // Cells: one raster pixel per cell, scaled up with sharp edges.
      std::vector<uint32_t> px(static_cast<size_t>(hw));
      for (int64_t cidx = 0; cidx < hw; ++cidx) {
        int64_t p = pos[size_t(t * hw + cidx)];
        px[size_t(cidx)] = o.view == CurveView::Blocks ? category_color(p / o.block).argb()
                                                       : viridis(n > 1 ? double(p) / double(n - 1) : 0).argb();
      }
      c.image(px, int(g.w), int(g.h), fx, fy, fw, fh);
      rep.panels.push_back({orders[size_t(r)].name + " t=" + std::to_string(t), fx, fy, fw, fh, g.h, g.w});
      if (o.view == CurveView::Blocks && cell >= 3) {
        // Block boundaries: edges between neighbouring cells of different blocks.
        std::vector<std::pair<Point, Point>> segs;
        for (int64_t y = 0; y < g.h; ++y)
          for (int64_t x = 0; x < g.w; ++x) {
            int64_t bl = pos[size_t(t * hw + y * g.w + x)] / o.block;
            if (x + 1 < g.w && pos[size_t(t * hw + y * g.w + x + 1)] / o.block != bl)
              segs.push_back({{fx + (x + 1) * cell, fy + y * cell}, {fx + (x + 1) * cell, fy + (y + 1) * cell}});
            if (y + 1 < g.h && pos[size_t(t * hw + (y + 1) * g.w + x)] / o.block != bl)
              segs.push_back({{fx + x * cell, fy + (y + 1) * cell}, {fx + (x + 1) * cell, fy + (y + 1) * cell}});
          }
        c.segments(segs, Rgb{0.1, 0.1, 0.1}, std::max(0.8, 1.0 * s), 0.85);
      }
      if (o.view == CurveView::Path && cell >= 4) {
        // The path between consecutive positions that lie in this frame.
        std::vector<std::pair<Point, Point>> segs;
        for (int64_t i = 0; i + 1 < n; ++i) {
          int64_t a = perm[size_t(i)], b = perm[size_t(i + 1)];
          if (a / hw != t || b / hw != t) continue;
          auto center = [&](int64_t rc) {
            int64_t cc = rc % hw;
            return Point{fx + (double(cc % g.w) + 0.5) * cell, fy + (double(cc / g.w) + 0.5) * cell};
          };
          segs.push_back({center(a), center(b)});
        }
        c.segments(segs, Rgb{1, 1, 1}, std::max(1.0, std::min(2.0 * s, cell / 5)), 0.95);
        // Where the order enters this frame.
        for (int64_t i = 0; i < n; ++i)
          if (perm[size_t(i)] / hw == t) {
            int64_t cc = perm[size_t(i)] % hw;
            c.circle(fx + (double(cc % g.w) + 0.5) * cell, fy + (double(cc / g.w) + 0.5) * cell,
                     std::max(2.0, cell / 3), Rgb{0.85, 0.1, 0.1});
            break;
          }
      }
      c.stroke_rect(fx - 0.5, fy - 0.5, fw + 1, fh + 1, Rgb{0.35, 0.35, 0.35}, 1.0);
    }
  }
  std::string title = !o.title.empty() ? o.title
                      : o.view == CurveView::Blocks ? "block membership of token orders"
                                                    : "token orders on the grid";
  char sub[200];
  std::snprintf(sub, sizeof sub, "grid %s (%lld tokens)%s", g.str().c_str(), (long long)n,
                g.t > 1 && nf < g.t ? (", " + std::to_string(nf) + " of " + std::to_string(g.t) + " frames shown").c_str() : "");
  if (o.show_title) draw_title(c, title, W / 2.0, 12 * s, s, sub);
  if (o.view == CurveView::Path) {
    const double by = H - B + 24 * s, bw = std::min(360.0 * s, W - 120.0 * s);
    std::vector<uint32_t> ramp(256);
    for (int k = 0; k < 256; ++k) ramp[size_t(k)] = viridis(k / 255.0).argb();
    const double bx = (W - bw) / 2;
    c.image(ramp, 256, 1, bx, by, bw, 12 * s);
    c.stroke_rect(bx, by, bw, 12 * s, Rgb{0.35, 0.35, 0.35}, 1 * s);
    c.text("position 0", bx - 6 * s, by + 6 * s, 11 * s, ink, HAlign::Right, VAlign::Middle);
    c.text(std::to_string(n - 1), bx + bw + 6 * s, by + 6 * s, 11 * s, ink, HAlign::Left, VAlign::Middle);
    c.text("cell colour: position along the order; white line: the path; red dot: first cell of the frame", W / 2.0,
           by + 20 * s, 11 * s, ink, HAlign::Center, VAlign::Top);
  }
  c.save(path);
  rep.width = W;
  rep.height = H;
  rep.panel_w = int(fw);
  rep.panel_h = int(fh);
  rep.downsampled = false;
  rep.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace bsattn::render
