#include "lib/render/canvas.h"

#include <cctype>
#include <cstdio>
#include <cmath>
#include <cstring>

#include "lib/atomic_file.h"
#include "lib/error.h"

#ifdef BSATTN_HAVE_CAIRO
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#endif

namespace bsattn::render {

const char* image_format_name(ImageFormat f) {
  return f == ImageFormat::Svg ? "svg" : f == ImageFormat::Pdf ? "pdf" : "png";
}

ImageFormat parse_image_format(const std::string& s) {
  if (s == "png") return ImageFormat::Png;
  if (s == "svg") return ImageFormat::Svg;
  if (s == "pdf") return ImageFormat::Pdf;
  throw UsageError("--format '" + s + "' is not known: use png, svg or pdf");
}

ImageFormat image_format_for_path(const std::string& path, const std::string& option) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  std::string ext;
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    ext = path.substr(dot + 1);
    for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (ext == "png" || ext == "svg" || ext == "pdf") return parse_image_format(ext);
  throw UsageError(option + " " + path + ": " +
                   (ext.empty() ? std::string("the file name has no extension")
                                : "the extension ." + ext + " is not an image format") +
                   " (allowed: .png, .svg, .pdf)");
}

std::string no_cairo_message() {
  return "this build of bsattn has no Cairo, so it cannot draw images (install libcairo2-dev and rebuild; "
         "--ascii works without it)";
}

#ifndef BSATTN_HAVE_CAIRO

bool cairo_available() { return false; }
struct Canvas::Impl {};
Canvas::Canvas(int, int, ImageFormat) { throw RuntimeFailure(no_cairo_message()); }
Canvas::~Canvas() = default;
void Canvas::fill(Rgb) {}
void Canvas::fill_rect(double, double, double, double, Rgb, double) {}
void Canvas::stroke_rect(double, double, double, double, Rgb, double, double) {}
void Canvas::line(double, double, double, double, Rgb, double, bool) {}
void Canvas::segments(const std::vector<std::pair<Point, Point>>&, Rgb, double, double) {}
void Canvas::polyline(const std::vector<Point>&, Rgb, double) {}
void Canvas::circle(double, double, double, Rgb) {}
void Canvas::marker(int, double, double, double, Rgb, Rgb) {}
void Canvas::ring(double, double, double, Rgb, double) {}
void Canvas::hatch_rect(double, double, double, double, Rgb, double, double) {}
void Canvas::text(const std::string&, double, double, double, Rgb, HAlign, VAlign, bool, double) {}
double Canvas::text_width(const std::string&, double, bool) { return 0; }
void Canvas::image(const std::vector<uint32_t>&, int, int, double, double, double, double) {}
std::string Canvas::encode() { throw RuntimeFailure(no_cairo_message()); }
void Canvas::save(const std::string&) { throw RuntimeFailure(no_cairo_message()); }

#else

bool cairo_available() { return true; }

namespace {
cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}
}  // namespace

struct Canvas::Impl {
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
  std::string vector_bytes;  // the SVG or PDF surface streams here
  // SVG: Cairo writes text as glyph outlines, so text goes in as <text> elements added at the end
  // (selectable and searchable), placed where Cairo would have drawn it.
  std::string svg_text;
  bool finished = false;
  ~Impl() {
    if (cr) cairo_destroy(cr);
    if (surface) cairo_surface_destroy(surface);
  }
  void color(Rgb c, double a = 1.0) { cairo_set_source_rgba(cr, c.r, c.g, c.b, a); }
  void font(double size, bool bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
  }
};

Canvas::Canvas(int width, int height, ImageFormat format)
    : impl_(std::make_unique<Impl>()), width_(width), height_(height), format_(format) {
  if (width < 16 || height < 16 || width > 32768 || height > 32768)
    throw UsageError("image size " + std::to_string(width) + "x" + std::to_string(height) +
                     " is out of range: each side must be 16..32768 pixels");
  if (format == ImageFormat::Png)
    impl_->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  else if (format == ImageFormat::Svg)
    impl_->surface = cairo_svg_surface_create_for_stream(append_bytes, &impl_->vector_bytes, width, height);
  else
    impl_->surface = cairo_pdf_surface_create_for_stream(append_bytes, &impl_->vector_bytes, width, height);
  if (cairo_surface_status(impl_->surface) != CAIRO_STATUS_SUCCESS)
    throw RuntimeFailure(std::string("cannot create a drawing surface: ") +
                         cairo_status_to_string(cairo_surface_status(impl_->surface)));
  impl_->cr = cairo_create(impl_->surface);
  cairo_set_line_cap(impl_->cr, CAIRO_LINE_CAP_BUTT);
}

Canvas::~Canvas() = default;

void Canvas::fill(Rgb c) {
  impl_->color(c);
  cairo_paint(impl_->cr);
}

void Canvas::fill_rect(double x, double y, double w, double h, Rgb c, double alpha) {
  impl_->color(c, alpha);
  cairo_rectangle(impl_->cr, x, y, w, h);
  cairo_fill(impl_->cr);
}

void Canvas::stroke_rect(double x, double y, double w, double h, Rgb c, double lw, double alpha) {
  impl_->color(c, alpha);
  cairo_set_line_width(impl_->cr, lw);
  cairo_rectangle(impl_->cr, x, y, w, h);
  cairo_stroke(impl_->cr);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, double lw, bool dashed) {
  auto* cr = impl_->cr;
  impl_->color(c);
  cairo_set_line_width(cr, lw);
  if (dashed) {
    double d[2] = {4 * lw, 3 * lw};
    cairo_set_dash(cr, d, 2, 0);
  }
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
  if (dashed) cairo_set_dash(cr, nullptr, 0, 0);
}

void Canvas::segments(const std::vector<std::pair<Point, Point>>& segs, Rgb c, double lw, double alpha) {
  auto* cr = impl_->cr;
  impl_->color(c, alpha);
  cairo_set_line_width(cr, lw);
  for (auto& s : segs) {
    cairo_move_to(cr, s.first.x, s.first.y);
    cairo_line_to(cr, s.second.x, s.second.y);
  }
  cairo_stroke(cr);
}

void Canvas::polyline(const std::vector<Point>& pts, Rgb c, double lw) {
  if (pts.size() < 2) return;
  auto* cr = impl_->cr;
  impl_->color(c);
  cairo_set_line_width(cr, lw);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_move_to(cr, pts[0].x, pts[0].y);
  for (size_t i = 1; i < pts.size(); ++i) cairo_line_to(cr, pts[i].x, pts[i].y);
  cairo_stroke(cr);
}

void Canvas::circle(double x, double y, double r, Rgb fill) {
  impl_->color(fill);
  cairo_arc(impl_->cr, x, y, r, 0, 2 * M_PI);
  cairo_fill(impl_->cr);
}

void Canvas::ring(double x, double y, double r, Rgb c, double lw) {
  impl_->color(c);
  cairo_new_sub_path(impl_->cr);
  cairo_arc(impl_->cr, x, y, r, 0, 2 * M_PI);
  cairo_set_line_width(impl_->cr, lw);
  cairo_stroke(impl_->cr);
}

void Canvas::marker(int shape, double x, double y, double r, Rgb fill, Rgb edge) {
  auto* cr = impl_->cr;
  switch (((shape % 4) + 4) % 4) {
    case 0: cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
    case 1: cairo_rectangle(cr, x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8); break;
    case 2:  // triangle, pointing up
      cairo_move_to(cr, x, y - r * 1.2);
      cairo_line_to(cr, x + r * 1.1, y + r * 0.75);
      cairo_line_to(cr, x - r * 1.1, y + r * 0.75);
      cairo_close_path(cr);
      break;
    default:  // diamond
      cairo_move_to(cr, x, y - r * 1.25);
      cairo_line_to(cr, x + r * 1.1, y);
      cairo_line_to(cr, x, y + r * 1.25);
      cairo_line_to(cr, x - r * 1.1, y);
      cairo_close_path(cr);
  }
  impl_->color(fill);
  cairo_fill_preserve(cr);
  impl_->color(edge);
  cairo_set_line_width(cr, std::max(0.8, r * 0.3));
  cairo_stroke(cr);
}

void Canvas::hatch_rect(double x, double y, double w, double h, Rgb c, double spacing, double lw) {
  auto* cr = impl_->cr;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, h);
  cairo_clip(cr);
  impl_->color(c);
  cairo_set_line_width(cr, lw);
  for (double t = -h; t < w; t += spacing) {
    cairo_move_to(cr, x + t, y + h);
    cairo_line_to(cr, x + t + h, y);
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

void Canvas::text(const std::string& s, double x, double y, double size, Rgb c, HAlign h, VAlign v, bool bold,
                  double angle) {
  auto* cr = impl_->cr;
  impl_->font(size, bold);
  cairo_text_extents_t te;
  cairo_text_extents(cr, s.c_str(), &te);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double dx = h == HAlign::Left ? 0 : h == HAlign::Center ? -te.x_advance / 2 : -te.x_advance;
  double dy = 0;
  if (v == VAlign::Top) dy = fe.ascent;
  else if (v == VAlign::Middle) dy = (fe.ascent - fe.descent) / 2;
  else if (v == VAlign::Bottom) dy = -fe.descent;
  if (format_ == ImageFormat::Svg) {
    char rotate[48] = "";
    if (angle != 0) std::snprintf(rotate, sizeof rotate, " rotate(%.3f)", -angle);
    char head[360];
    std::snprintf(head, sizeof head,
                  "<text transform=\"translate(%.3f %.3f)%s\" x=\"%.3f\" y=\"%.3f\" "
                  "font-family=\"DejaVu Sans\" font-size=\"%.3f\"%s fill=\"rgb(%d,%d,%d)\">",
                  x, y, rotate, dx, dy, size, bold ? " font-weight=\"bold\"" : "", int(std::lround(c.r * 255)),
                  int(std::lround(c.g * 255)), int(std::lround(c.b * 255)));
    impl_->svg_text += head;
    for (char ch : s) {
      if (ch == '&') impl_->svg_text += "&amp;";
      else if (ch == '<') impl_->svg_text += "&lt;";
      else if (ch == '>') impl_->svg_text += "&gt;";
      else impl_->svg_text += ch;
    }
    impl_->svg_text += "</text>\n";
    return;
  }
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, -angle * M_PI / 180.0);
  cairo_move_to(cr, dx, dy);
  impl_->color(c);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

double Canvas::text_width(const std::string& s, double size, bool bold) {
  impl_->font(size, bold);
  cairo_text_extents_t te;
  cairo_text_extents(impl_->cr, s.c_str(), &te);
  return te.x_advance;
}

void Canvas::image(const std::vector<uint32_t>& argb, int iw, int ih, double x, double y, double w, double h) {
  if (iw <= 0 || ih <= 0) return;
  int stride = cairo_format_stride_for_width(CAIRO_FORMAT_ARGB32, iw);
  std::vector<unsigned char> buf(size_t(stride) * size_t(ih));
  for (int r = 0; r < ih; ++r)
    std::memcpy(buf.data() + size_t(r) * stride, argb.data() + size_t(r) * iw, size_t(iw) * 4);
  cairo_surface_t* img = cairo_image_surface_create_for_data(buf.data(), CAIRO_FORMAT_ARGB32, iw, ih, stride);
  auto* cr = impl_->cr;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, w / iw, h / ih);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, iw, ih);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);  // the SVG and PDF surfaces have already taken a copy
}

std::string Canvas::encode() {
  std::string out;
  if (format_ == ImageFormat::Png) {
    cairo_surface_flush(impl_->surface);
    cairo_status_t st = cairo_surface_write_to_png_stream(impl_->surface, append_bytes, &out);
    if (st != CAIRO_STATUS_SUCCESS)
      throw RuntimeFailure(std::string("PNG encoding failed: ") + cairo_status_to_string(st));
    return out;
  }
  if (!impl_->finished) {
    cairo_destroy(impl_->cr);
    impl_->cr = nullptr;
    cairo_surface_finish(impl_->surface);
    impl_->finished = true;
    if (cairo_surface_status(impl_->surface) != CAIRO_STATUS_SUCCESS)
      throw RuntimeFailure(std::string(image_format_name(format_)) + " output failed: " +
                           cairo_status_to_string(cairo_surface_status(impl_->surface)));
    if (format_ == ImageFormat::Svg) {
      const auto end = impl_->vector_bytes.rfind("</svg>");
      if (end == std::string::npos) throw RuntimeFailure("SVG output failed: Cairo wrote no closing </svg>");
      impl_->vector_bytes.insert(end, impl_->svg_text);
    }
  }
  return impl_->vector_bytes;
}

void Canvas::save(const std::string& path) {
  AtomicFile f(path);  // checks the folder first: a bad path is a UsageError before any encoding
  std::string bytes = encode();
  f.write(bytes);
  f.commit();
}

#endif

}  // namespace bsattn::render
