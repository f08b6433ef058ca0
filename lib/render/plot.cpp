#include "lib/render/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace bsattn::render {

namespace {
const Rgb kInk{0.13, 0.13, 0.13};
const Rgb kGrid{0.88, 0.88, 0.88};
const Rgb kFrame{0.35, 0.35, 0.35};
}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> out;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) {
    if (std::isfinite(lo)) out.push_back(lo);
    return out;
  }
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-9; v += step) out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> out;
  if (!(lo > 0) || !(hi > lo)) return out;
  for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e) {
    double v = std::pow(10.0, e);
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
  }
  if (out.size() < 2) {
    out.clear();
    for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e)
      for (double m : {1.0, 2.0, 5.0}) {
        double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
      }
  }
  return out;
}

std::string format_tick(double v) {
  char buf[32];
  double a = std::abs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e6)) {
    int e = int(std::floor(std::log10(a) + 1e-9));
    double m = v / std::pow(10.0, e);
    if (std::abs(m - std::round(m)) < 1e-6) std::snprintf(buf, sizeof buf, "%.0fe%d", m, e);
    else std::snprintf(buf, sizeof buf, "%.1fe%d", m, e);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

void Axis::pad(double fraction) {
  if (log) {
    if (!(lo > 0)) lo = hi > 0 ? hi / 10 : 1e-3;
    if (!(hi > lo)) hi = lo * 10;
    double l = std::log10(lo), h = std::log10(hi), d = (h - l) * fraction;
    lo = std::pow(10.0, l - d);
    hi = std::pow(10.0, h + d);
    return;
  }
  if (!(hi > lo)) {
    double c = std::isfinite(lo) ? lo : 0;
    lo = c - (c != 0 ? std::abs(c) * 0.1 : 1);
    hi = c + (c != 0 ? std::abs(c) * 0.1 : 1);
  }
  double d = (hi - lo) * fraction;
  lo -= d;
  hi += d;
}

double PlotArea::px(double v) const {
  double t = xa.log ? (std::log10(v) - std::log10(xa.lo)) / (std::log10(xa.hi) - std::log10(xa.lo))
                    : (v - xa.lo) / (xa.hi - xa.lo);
  return x + t * w;
}

double PlotArea::py(double v) const {
  double t = ya.log ? (std::log10(v) - std::log10(ya.lo)) / (std::log10(ya.hi) - std::log10(ya.lo))
                    : (v - ya.lo) / (ya.hi - ya.lo);
  return y + h - t * h;
}

void draw_axes(Canvas& c, const PlotArea& a, double s) {
  double fs = 12 * s, tick = 5 * s;
  auto xt = a.xa.log ? log_ticks(a.xa.lo, a.xa.hi) : nice_ticks(a.xa.lo, a.xa.hi, 6);
  auto yt = a.ya.log ? log_ticks(a.ya.lo, a.ya.hi) : nice_ticks(a.ya.lo, a.ya.hi, 6);
  std::vector<std::pair<Point, Point>> grid;
  for (double v : xt) grid.push_back({{a.px(v), a.y}, {a.px(v), a.y + a.h}});
  for (double v : yt) grid.push_back({{a.x, a.py(v)}, {a.x + a.w, a.py(v)}});
  c.segments(grid, kGrid, 1 * s);
  c.stroke_rect(a.x, a.y, a.w, a.h, kFrame, 1.2 * s);
  double max_label = 0;
  for (double v : xt) {
    c.line(a.px(v), a.y + a.h, a.px(v), a.y + a.h + tick, kFrame, 1.2 * s);
    c.text(format_tick(v), a.px(v), a.y + a.h + tick + 2 * s, fs, kInk, HAlign::Center, VAlign::Top);
  }
  for (double v : yt) {
    c.line(a.x - tick, a.py(v), a.x, a.py(v), kFrame, 1.2 * s);
    std::string l = format_tick(v);
    max_label = std::max(max_label, c.text_width(l, fs));
    c.text(l, a.x - tick - 3 * s, a.py(v), fs, kInk, HAlign::Right, VAlign::Middle);
  }
  if (!a.xa.label.empty())
    c.text(a.xa.label, a.x + a.w / 2, a.y + a.h + tick + fs * 2.6, 13 * s, kInk, HAlign::Center, VAlign::Top);
  if (!a.ya.label.empty())
    c.text(a.ya.label, a.x - tick - max_label - 10 * s, a.y + a.h / 2, 13 * s, kInk, HAlign::Center,
           VAlign::Bottom, false, 90);
}

void draw_title(Canvas& c, const std::string& title, double cx, double y, double s, const std::string& subtitle) {
  // Centred on cx: a line wider than the room on both sides shrinks to fit (never cut at the edges).
  const double room = 2 * std::min(cx, c.width() - cx) - 12 * s;
  auto fit = [&](const std::string& t, double size, bool bold) {
    const double w = c.text_width(t, size, bold);
    return w > room && w > 0 ? size * room / w : size;
  };
  c.text(title, cx, y, fit(title, 16 * s, true), kInk, HAlign::Center, VAlign::Top, true);
  if (!subtitle.empty())
    c.text(subtitle, cx, y + 22 * s, fit(subtitle, 12 * s, false), Rgb{0.3, 0.3, 0.3}, HAlign::Center, VAlign::Top);
}

namespace {
void legend_marker(Canvas& c, const LegendItem& it, double x, double y, double sw, double s) {
  switch (it.kind) {
    case LegendItem::Swatch:
      c.fill_rect(x, y, sw, sw, it.color);
      c.stroke_rect(x, y, sw, sw, kFrame, 0.8 * s);
      break;
    case LegendItem::Line:
      if (it.hollow) {
        c.ring(x + sw * 0.9, y + sw / 2, 5 * s, it.color, 2 * s);
        break;
      }
      c.line(x, y + sw / 2, x + sw * 1.8, y + sw / 2, it.color, 2.5 * s);
      c.marker(it.marker, x + sw * 0.9, y + sw / 2, 3.2 * s, it.color, Rgb{1, 1, 1});
      break;
    case LegendItem::Marker:
      c.marker(it.marker, x + sw / 2, y + sw / 2, 3.6 * s, it.color, Rgb{1, 1, 1});
      break;
    case LegendItem::Hatch:
      c.fill_rect(x, y, sw, sw, Rgb{1, 1, 1});
      c.hatch_rect(x, y, sw, sw, it.color, 4 * s, 1.2 * s);
      c.stroke_rect(x, y, sw, sw, kFrame, 0.8 * s);
      break;
    case LegendItem::Outline:
      c.stroke_rect(x + s, y + s, sw - 2 * s, sw - 2 * s, it.color, 2 * s);
      break;
  }
}
double marker_width(const LegendItem& it, double sw) { return it.kind == LegendItem::Line ? sw * 1.8 : sw; }
}  // namespace

Point legend_size(Canvas& c, const std::vector<LegendItem>& items, double s, bool horizontal) {
  double fs = 12 * s, sw = 12 * s, pad = 6 * s, row = 18 * s;
  double w = 0, h = 0;
  for (auto& it : items) {
    double iw = marker_width(it, sw) + 6 * s + c.text_width(it.label, fs);
    if (horizontal) w += iw + 16 * s;
    else w = std::max(w, iw);
  }
  if (horizontal) {
    w -= items.empty() ? 0 : 16 * s;
    h = row;
  } else {
    h = row * double(items.size());
  }
  return {w + 2 * pad, h + 2 * pad};
}

Point draw_legend(Canvas& c, const std::vector<LegendItem>& items, double x, double y, double s, bool horizontal) {
  Point size = legend_size(c, items, s, horizontal);
  double fs = 12 * s, sw = 12 * s, pad = 6 * s, row = 18 * s;
  c.fill_rect(x, y, size.x, size.y, Rgb{1, 1, 1}, 0.9);
  c.stroke_rect(x, y, size.x, size.y, Rgb{0.75, 0.75, 0.75}, 0.8 * s);
  double cx = x + pad, cy = y + pad;
  for (auto& it : items) {
    double mw = marker_width(it, sw);
    legend_marker(c, it, cx, cy + (row - sw) / 2, sw, s);
    c.text(it.label, cx + mw + 6 * s, cy + row / 2, fs, kInk, HAlign::Left, VAlign::Middle);
    if (horizontal) cx += mw + 6 * s + c.text_width(it.label, fs) + 16 * s;
    else cy += row;
  }
  return size;
}

void draw_colorbar(Canvas& c, double x, double y, double w, double h, double lo, double hi, bool log,
                   const std::string& label, double s) {
  int n = std::max(2, int(h));
  std::vector<uint32_t> px(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) px[size_t(r)] = viridis(1.0 - (r + 0.5) / n).argb();
  c.image(px, 1, n, x, y, w, h);
  c.stroke_rect(x, y, w, h, kFrame, 1 * s);
  PlotArea a;
  a.x = x;
  a.y = y;
  a.w = w;
  a.h = h;
  a.ya.lo = lo;
  a.ya.hi = hi;
  a.ya.log = log;
  auto ticks = log ? log_ticks(lo, hi) : nice_ticks(lo, hi, 5);
  double fs = 11 * s, maxw = 0;
  for (double v : ticks) {
    double yy = a.py(v);
    c.line(x + w, yy, x + w + 4 * s, yy, kFrame, 1 * s);
    std::string l = format_tick(v);
    maxw = std::max(maxw, c.text_width(l, fs));
    c.text(l, x + w + 6 * s, yy, fs, kInk, HAlign::Left, VAlign::Middle);
  }
  if (!label.empty())
    c.text(label, x + w + 10 * s + maxw, y + h / 2, 12 * s, kInk, HAlign::Center, VAlign::Top, false, 90);
}

void draw_line_plot(Canvas& c, const LinePlot& p, double x, double y, double w, double h, double s) {
  PlotArea a;
  a.xa = p.xa;
  a.ya = p.ya;
  auto fit = [](Axis& ax, bool is_x, const std::vector<Series>& ss, const std::vector<std::pair<double, std::string>>& hl) {
    if (ax.lo < ax.hi) return;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (auto& se : ss)
      for (double v : is_x ? se.x : se.y)
        if (std::isfinite(v) && (!ax.log || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!is_x)
      for (auto& l : hl) lo = std::min(lo, l.first), hi = std::max(hi, l.first);
    if (!std::isfinite(lo)) lo = ax.log ? 0.1 : 0, hi = 1;
    ax.lo = lo;
    ax.hi = hi;
    ax.pad(0.05);
  };
  fit(a.xa, true, p.series, p.hlines);
  fit(a.ya, false, p.series, p.hlines);
  double top = y + (p.subtitle.empty() ? 34 : 54) * s;
  draw_title(c, p.title, x + w / 2, y + 8 * s, s, p.subtitle);
  a.x = x + 78 * s;
  a.y = top;
  a.w = w - a.x + x - 24 * s;
  a.h = y + h - top - 58 * s;
  // Legend placement, decided before drawing: the corner of the axes whose legend box covers the
  // fewest markers (top right, top left, bottom right, bottom left on ties); when every corner covers
  // one, the legend goes outside the axes, to their right (the axes narrow to make room), so that no
  // data point hides under it.
  auto color_of = [&](size_t k) { return p.series[k].has_color ? p.series[k].color : line_color(int(k)); };
  std::vector<LegendItem> legend = p.legend;
  if (legend.empty())
    for (size_t k = 0; k < p.series.size(); ++k)
      legend.push_back({p.series[k].label, color_of(k), LegendItem::Line, p.series[k].marker});
  auto series_points = [&](const PlotArea& ar, const Series& se) {
    std::vector<size_t> order(se.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return se.x[i] < se.x[j]; });
    std::vector<Point> pts;
    for (size_t i : order) {
      double xv = se.x[i], yv = se.y[i];
      if (!std::isfinite(xv) || !std::isfinite(yv) || (ar.xa.log && xv <= 0) || (ar.ya.log && yv <= 0)) continue;
      pts.push_back({ar.px(xv), ar.py(yv)});
    }
    return pts;
  };
  const Point ls = legend.empty() ? Point{0, 0} : legend_size(c, legend, s);
  const double m = 8 * s, r = 4 * s;
  auto corner = [&](const PlotArea& ar, int k) {
    return Point{k % 2 == 0 ? ar.x + ar.w - ls.x - m : ar.x + m, k < 2 ? ar.y + m : ar.y + ar.h - ls.y - m};
  };
  auto covered = [&](const PlotArea& ar, int k) {
    size_t n = 0;
    const Point q = corner(ar, k);
    for (auto& se : p.series)
      for (auto& pt : series_points(ar, se))
        n += pt.x >= q.x - r && pt.x <= q.x + ls.x + r && pt.y >= q.y - r && pt.y <= q.y + ls.y + r;
    return n;
  };
  int best = 0;
  bool outside = false;
  if (!legend.empty()) {
    size_t best_n = size_t(-1);
    for (int k = 0; k < 4; ++k) {
      size_t n = covered(a, k);
      if (n < best_n) best_n = n, best = k;
    }
    const double room = ls.x + 16 * s;
    if (best_n > 0 && room < 0.4 * a.w) {
      a.w -= room;
      outside = true;
    }
  }
  draw_axes(c, a, s);
  for (auto& hl : p.hlines) {
    double yy = a.py(hl.first);
    c.line(a.x, yy, a.x + a.w, yy, Rgb{0.45, 0.45, 0.45}, 1.2 * s, true);
    c.text(hl.second, a.x + a.w - 4 * s, yy - 3 * s, 11 * s, Rgb{0.35, 0.35, 0.35}, HAlign::Right, VAlign::Bottom);
  }
  for (size_t k = 0; k < p.series.size(); ++k) {
    auto& se = p.series[k];
    if (se.hollow) continue;  // drawn last, around whatever they overlap
    const Rgb col = color_of(k);
    std::vector<Point> pts = series_points(a, se);
    if (se.dashed) {
      for (size_t i = 1; i < pts.size(); ++i) c.line(pts[i - 1].x, pts[i - 1].y, pts[i].x, pts[i].y, col, 2.2 * s, true);
    } else {
      c.polyline(pts, col, 2.2 * s);
    }
    for (auto& pt : pts) c.marker(se.marker, pt.x, pt.y, 3.5 * s, col, Rgb{1, 1, 1});
  }
  for (size_t k = 0; k < p.series.size(); ++k)
    if (p.series[k].hollow)
      for (auto& pt : series_points(a, p.series[k])) c.ring(pt.x, pt.y, 6.5 * s, color_of(k), 2.2 * s);
  if (!legend.empty()) {
    const Point q = outside ? Point{a.x + a.w + 12 * s, a.y} : corner(a, best);
    draw_legend(c, legend, q.x, q.y, s);
  }
}

}  // namespace bsattn::render
