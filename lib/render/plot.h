// Figure furniture shared by every figure: tick choice, axes with labelled ticks, titles, legends, a
// viridis colorbar, and a line plot (one line per series) built from them. Sizes in device pixels;
// `s` is the figure's scale factor (1 at the default 100 dpi) applied to fonts, lines and margins.
#pragma once
#include <string>
#include <vector>

#include "lib/render/canvas.h"

namespace bsattn::render {

// About `target` round ticks (1, 2, 5 x 10^k steps) covering [lo, hi]; inside the range only.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// Powers of ten inside [lo, hi] (lo > 0); when fewer than two, adds 2x and 5x steps.
std::vector<double> log_ticks(double lo, double hi);
// Short label: "0.25", "1e-4", "2048", "1.5k" never: plain digits up to 6 significant.
std::string format_tick(double v);

struct Axis {
  double lo = 0, hi = 0;  // lo >= hi: a line plot fits the range to its data
  bool log = false;
  std::string label;
  // Widens [lo, hi] to round numbers (linear) or decades (log) and guards degenerate ranges.
  void pad(double fraction = 0.04);
};

struct PlotArea {
  double x = 0, y = 0, w = 0, h = 0;  // the data rectangle on the canvas
  Axis xa, ya;
  double px(double v) const;  // data -> canvas x
  double py(double v) const;  // data -> canvas y (up is larger)
};

// Frame, light grid, ticks with labels, axis labels.
void draw_axes(Canvas& c, const PlotArea& a, double s);
void draw_title(Canvas& c, const std::string& title, double cx, double y, double s, const std::string& subtitle = "");

struct LegendItem {
  std::string label;
  Rgb color;
  enum Kind { Swatch, Line, Hatch, Outline, Marker } kind = Swatch;
  int marker = 0;  // Line and Marker: the marker shape (Canvas::marker)
  bool hollow = false;  // Line: a ring, as hollow series are drawn
};
// Draws the legend box with its top-left corner at (x, y); returns its {width, height}.
Point draw_legend(Canvas& c, const std::vector<LegendItem>& items, double x, double y, double s,
                  bool horizontal = false);
Point legend_size(Canvas& c, const std::vector<LegendItem>& items, double s, bool horizontal = false);

// Vertical viridis colorbar in [x, x+w] x [y, y+h], high values at the top, ticks on the right.
void draw_colorbar(Canvas& c, double x, double y, double w, double h, double lo, double hi, bool log,
                   const std::string& label, double s);

struct Series {
  std::string label;
  std::vector<double> x, y;
  bool dashed = false;
  bool has_color = false;  // color set by the caller; else the series' index picks line_color
  Rgb color;
  int marker = 0;          // Canvas::marker shape
  bool hollow = false;     // rings, no line, drawn after every other series (reference points stay visible)
};
struct LinePlot {
  std::string title, subtitle;
  Axis xa, ya;  // lo/hi taken from the data when lo >= hi
  std::vector<Series> series;
  std::vector<std::pair<double, std::string>> hlines;  // reference lines (e.g. speedup 1 = dense)
  // The legend; empty: one Line entry per series. Series are drawn in order (the last on top).
  std::vector<LegendItem> legend;
};
// Draws the plot (title, axes, lines with markers, legend) inside [x, x+w] x [y, y+h].
void draw_line_plot(Canvas& c, const LinePlot& p, double x, double y, double w, double h, double s);

}  // namespace bsattn::render
