// Curve-order figures on image / video grids: the order as a path (2D) or as frames coloured by
// position (3D), or block membership (consecutive `block` tokens share a colour) so that how compact
// each block is becomes visible; several orders one row each, side by side.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "lib/curves/order.h"
#include "lib/render/mask_render.h"

namespace bsattn::render {

enum class CurveView { Path, Blocks };
CurveView parse_curve_view(const std::string& s);  // path | blocks

struct CurveFigureOptions : FigureOptions {
  CurveView view = CurveView::Path;
  int64_t block = 128;  // tokens per block (blocks view)
  int max_frames = 8;   // 3D grids: at most this many frames, evenly spaced
};

struct NamedOrder {
  std::string name;  // the spec as shown
  curves::Perm perm;
};

// Frames drawn for a grid of `t` frames (all when t <= max_frames, else evenly spaced, first and last).
std::vector<int64_t> curve_frames(int64_t t, int max_frames);

FigureReport render_curve_figure(const curves::Grid& g, const std::vector<NamedOrder>& orders,
                                 const CurveFigureOptions& o, const std::string& path);

}  // namespace bsattn::render
