// Colours for figures: the perceptual viridis map (for attention mass and any scalar), the fixed
// colours of mask block classes, and a categorical palette for lines and block membership.
#pragma once
#include <cstdint>
#include <string>

namespace bsattn::render {

struct Rgb {
  double r = 0, g = 0, b = 0;  // each in [0,1]
  uint32_t argb() const;       // opaque 0xAARRGGBB (Cairo's ARGB32 pixel)
  std::string hex() const;     // "#rrggbb"
};

// Viridis, t in [0,1] (clamped; NaN gives the lowest colour). Piecewise linear between 17 control
// points taken every 16th entry of the published 256-entry table (van der Walt & Smith, "mpl
// colormaps", CC0; matplotlib's _cm_listed.py _viridis_data). Between control points it differs
// from the full table by up to about 0.02 per channel (blue near the yellow end: entry 248 is
// 0.104 where the interpolation gives 0.123; entry 120 differs by under 0.001); the 17 points
// themselves are exact.
Rgb viridis(double t);

// Categorical colours for lines (one per implementation / pattern); cycles after 10.
Rgb line_color(int index);
// Colours for many categories (block membership): neighbours in index differ strongly in hue and
// lightness, so adjacent blocks remain distinguishable.
Rgb category_color(int64_t index);

}  // namespace bsattn::render
