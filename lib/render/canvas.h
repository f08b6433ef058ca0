// A drawing surface for figures: Cairo underneath (image surface for PNG, SVG and PDF surfaces for
// SVG and PDF), real text in DejaVu Sans through Cairo's text API (selectable in SVG and PDF), output written through AtomicFile (temporary name,
// then rename). Coordinates are device pixels (SVG: user units, PDF: points, of the same size), origin top left.
//
// Builds without Cairo (BSATTN_HAVE_CAIRO undefined) keep this interface; constructing a Canvas then
// throws RuntimeFailure saying so, and cairo_available() is false.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/render/colormap.h"

namespace bsattn::render {

enum class ImageFormat { Png, Svg, Pdf };
const char* image_format_name(ImageFormat f);
ImageFormat parse_image_format(const std::string& s);  // "png" | "svg" | "pdf", UsageError otherwise
// The format an output path asks for by its extension (.png, .svg, .pdf, any case); UsageError naming
// `option` and the path otherwise (no extension included).
ImageFormat image_format_for_path(const std::string& path, const std::string& option);
bool cairo_available();
// The one-line message used wherever an image is asked of a build without Cairo.
std::string no_cairo_message();

enum class HAlign { Left, Center, Right };
enum class VAlign { Top, Middle, Baseline, Bottom };

struct Point {
  double x = 0, y = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, ImageFormat format);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  int width() const { return width_; }
  int height() const { return height_; }
  ImageFormat format() const { return format_; }

  void fill(Rgb c);  // the whole surface
  void fill_rect(double x, double y, double w, double h, Rgb c, double alpha = 1.0);
  void stroke_rect(double x, double y, double w, double h, Rgb c, double line_width, double alpha = 1.0);
  void line(double x0, double y0, double x1, double y1, Rgb c, double line_width, bool dashed = false);
  // Many segments of one colour in one stroke (grid lines).
  void segments(const std::vector<std::pair<Point, Point>>& segs, Rgb c, double line_width, double alpha = 1.0);
  void polyline(const std::vector<Point>& pts, Rgb c, double line_width);
  void circle(double x, double y, double radius, Rgb fill);
  // A plot marker centred at (x, y): shape 0 circle, 1 square, 2 triangle, 3 diamond (modulo 4),
  // filled and outlined (the outline keeps overlapping markers apart).
  void marker(int shape, double x, double y, double radius, Rgb fill, Rgb edge);
  void ring(double x, double y, double radius, Rgb c, double line_width);
  // Diagonal hatching inside a rectangle.
  void hatch_rect(double x, double y, double w, double h, Rgb c, double spacing, double line_width);

  // Text in DejaVu Sans; (x, y) is the anchor named by the alignment; angle in degrees
  // counter-clockwise (90 for a vertical axis label).
  void text(const std::string& s, double x, double y, double size, Rgb c, HAlign h = HAlign::Left,
            VAlign v = VAlign::Baseline, bool bold = false, double angle = 0);
  double text_width(const std::string& s, double size, bool bold = false);

  // Draws an ARGB32 raster (row-major, iw x ih) at (x, y) scaled to w x h with nearest-neighbour
  // sampling (block boundaries stay sharp).
  void image(const std::vector<uint32_t>& argb, int iw, int ih, double x, double y, double w, double h);

  // Encoded file bytes (PNG, SVG or PDF). The canvas stays usable for PNG; SVG and PDF are finished by
  // this call.
  std::string encode();
  // Writes to `path` atomically; UsageError when the folder is not writable.
  void save(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int width_ = 0, height_ = 0;
  ImageFormat format_ = ImageFormat::Png;
};

}  // namespace bsattn::render
