#include "lib/render/mask_render.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include "lib/error.h"
#include "lib/render/plot.h"
#include "lib/spec.h"

namespace bsattn::render {

const char* block_class_name(BlockClass c) {
  switch (c) {
    case BlockClass::Hidden: return "outside causal";
    case BlockClass::Empty: return "empty (dropped)";
    case BlockClass::Kept: return "kept";
    case BlockClass::Partial: return "partial (causal diagonal / tail)";
  }
  return "?";
}

Rgb block_class_color(BlockClass c) {
  switch (c) {
    case BlockClass::Hidden: return {1.0, 1.0, 1.0};                     // #ffffff
    case BlockClass::Empty: return {0xe4 / 255.0, 0xe4 / 255.0, 0xe4 / 255.0};  // #e4e4e4
    case BlockClass::Kept: return {0x1f / 255.0, 0x4e / 255.0, 0x79 / 255.0};   // #1f4e79
    case BlockClass::Partial: return {0xf2 / 255.0, 0x8e / 255.0, 0x2b / 255.0};  // #f28e2b
  }
  return {};
}

char block_class_char(BlockClass c) {
  switch (c) {
    case BlockClass::Hidden: return ' ';
    case BlockClass::Empty: return '.';
    case BlockClass::Kept: return '#';
    case BlockClass::Partial: return '+';
  }
  return '?';
}

void classify_row(const BlockMask& m, int64_t b, int64_t h, int64_t i, uint8_t* out) {
  const MaskShape& s = m.shape;
  const int64_t mk = s.mk();
  const BlockGeometry g(s);
  const int64_t qb = g.q_begin(i), qe = g.q_end(i);
  const bool row_tail = qe - qb < s.block_q;
  const bool col_tail = s.kv_len % s.block_kv != 0;
  int64_t jfull = mk, jvis = mk;  // columns [0, jfull) fully visible, [0, jvis) partly visible
  if (m.causal) {
    const int64_t off = g.causal_offset();
    const int64_t last_full = qb + off;  // the last key every query of the row sees
    jfull = last_full + 1 >= s.kv_len ? mk : (last_full + 1 <= 0 ? 0 : (last_full + 1) / s.block_kv);
    const int64_t last_vis = qe - 1 + off;  // the last key some query of the row sees
    jvis = last_vis < 0 ? 0 : std::min(mk, last_vis / s.block_kv + 1);
  }
  const uint8_t* bits = m.head_bits(s.batch == 1 ? 0 : b, h) + i * mk;
  for (int64_t j = 0; j < mk; ++j) {
    BlockClass c;
    if (bits[j]) {
      bool partial = row_tail || j >= jfull || (col_tail && j == mk - 1);
      c = partial ? BlockClass::Partial : BlockClass::Kept;
    } else {
      c = j >= jvis ? BlockClass::Hidden : BlockClass::Empty;
    }
    out[j] = uint8_t(c);
  }
}

// Block j of `blocks` covers cells [c0, c1) of `cells` along one axis: exactly one cell when blocks
// outnumber cells.
static void cell_range(int64_t j, int64_t blocks, int64_t cells, int64_t& c0, int64_t& c1) {
  c0 = j * cells / blocks;
  c1 = std::max(c0 + 1, (j + 1) * cells / blocks);
}
// The cell range of every block column, as x0[j] .. x1[j].
static void block_cells(int64_t blocks, int cells, std::vector<int32_t>& x0, std::vector<int32_t>& x1) {
  x0.resize(size_t(blocks));
  x1.resize(size_t(blocks));
  for (int64_t j = 0; j < blocks; ++j) {
    int64_t a, e;
    cell_range(j, blocks, cells, a, e);
    x0[size_t(j)] = int32_t(a);
    x1[size_t(j)] = int32_t(e);
  }
}

std::vector<uint8_t> pool_head_classes(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h,
                                       int64_t* kept) {
  const int64_t mq = m.shape.mq(), mk = m.shape.mk();
  std::vector<uint8_t> out(size_t(out_w) * size_t(out_h), 0);
  std::vector<int32_t> x0, x1;
  block_cells(mk, out_w, x0, x1);
  std::vector<uint8_t> row(static_cast<size_t>(mk)), pooled(static_cast<size_t>(out_w));
  int64_t count = 0;
  int64_t cur_y = -1;
  auto flush = [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      uint8_t* dst = out.data() + size_t(y) * size_t(out_w);
      for (int x = 0; x < out_w; ++x) dst[x] = std::max(dst[x], pooled[size_t(x)]);
    }
  };
  int64_t pend0 = 0, pend1 = 0;
  for (int64_t i = 0; i < mq; ++i) {
    int64_t y0, y1;
    cell_range(i, mq, out_h, y0, y1);
    if (y0 != cur_y) {
      if (cur_y >= 0) flush(pend0, pend1);
      std::fill(pooled.begin(), pooled.end(), 0);
      cur_y = y0;
    }
    pend0 = y0;
    pend1 = y1;
    classify_row(m, b, h, i, row.data());
    for (int64_t j = 0; j < mk; ++j) {
      uint8_t c = row[size_t(j)];
      count += c >= uint8_t(BlockClass::Kept);
      if (x1[size_t(j)] - x0[size_t(j)] == 1) {
        uint8_t& d = pooled[size_t(x0[size_t(j)])];
        d = std::max(d, c);
      } else {
        for (int32_t x = x0[size_t(j)]; x < x1[size_t(j)]; ++x) pooled[size_t(x)] = std::max(pooled[size_t(x)], c);
      }
    }
  }
  if (cur_y >= 0) flush(pend0, pend1);
  if (kept) *kept = count;
  return out;
}

std::vector<uint32_t> pool_head_counts(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h, int64_t* kept,
                                       int64_t* visible) {
  const int64_t mq = m.shape.mq(), mk = m.shape.mk();
  int64_t n_kept = 0, n_visible = 0;
  // Per cell: blocks of each class that fall in it (cell_range along each axis).
  std::vector<uint32_t> counts(size_t(out_w) * size_t(out_h) * 4, 0);
  std::vector<int32_t> x0, x1;
  block_cells(mk, out_w, x0, x1);
  std::vector<uint8_t> row(static_cast<size_t>(mk));
  std::vector<uint32_t> row_counts(size_t(out_w) * 4);
  for (int64_t i = 0; i < mq; ++i) {
    int64_t y0, y1;
    cell_range(i, mq, out_h, y0, y1);
    classify_row(m, b, h, i, row.data());
    std::fill(row_counts.begin(), row_counts.end(), 0);
    for (int64_t j = 0; j < mk; ++j) {
      const uint8_t c = row[size_t(j)];
      n_kept += c >= uint8_t(BlockClass::Kept);
      n_visible += c != uint8_t(BlockClass::Hidden);
      for (int32_t x = x0[size_t(j)]; x < x1[size_t(j)]; ++x) ++row_counts[size_t(x) * 4 + c];
    }
    for (int64_t y = y0; y < y1; ++y) {
      uint32_t* dst = counts.data() + size_t(y) * size_t(out_w) * 4;
      for (size_t q = 0; q < row_counts.size(); ++q) dst[q] += row_counts[q];
    }
  }
  if (kept) *kept = n_kept;
  if (visible) *visible = n_visible;
  return counts;
}

HeadRaster pool_head_coverage(const BlockMask& m, int64_t b, int64_t h, int out_w, int out_h) {
  HeadRaster r;
  r.argb.assign(size_t(out_w) * size_t(out_h), 0);
  const std::vector<uint32_t> counts = pool_head_counts(m, b, h, out_w, out_h, &r.kept, &r.visible);
  Rgb col[4];
  for (int c = 0; c < 4; ++c) col[c] = block_class_color(BlockClass(c));
  // Coverage shading: a cell is its blocks' classes mixed by count, so that a 1% mask looks 1% kept.
  // A cell holding any kept block is at least kKeptFloor of the way to the kept colour, so that a
  // lone kept block stays visible at any size.
  constexpr double kKeptFloor = 0.35;
  for (size_t q = 0; q < r.argb.size(); ++q) {
    const uint32_t* n = counts.data() + q * 4;
    const double rest = double(n[0]) + double(n[1]), kept = double(n[2]) + double(n[3]);
    if (rest + kept == 0) continue;
    Rgb base = rest > 0 ? Rgb{(n[0] * col[0].r + n[1] * col[1].r) / rest, (n[0] * col[0].g + n[1] * col[1].g) / rest,
                              (n[0] * col[0].b + n[1] * col[1].b) / rest}
                        : col[1];
    Rgb ink = kept > 0 ? Rgb{(n[2] * col[2].r + n[3] * col[3].r) / kept, (n[2] * col[2].g + n[3] * col[3].g) / kept,
                             (n[2] * col[2].b + n[3] * col[3].b) / kept}
                       : col[2];
    double share = kept / (rest + kept);
    if (kept > 0 && share < 1) share = kKeptFloor + (1 - kKeptFloor) * share;
    Rgb mix{base.r + (ink.r - base.r) * share, base.g + (ink.g - base.g) * share, base.b + (ink.b - base.b) * share};
    r.argb[q] = mix.argb();
  }
  return r;
}

std::vector<int64_t> parse_head_list(const std::string& text, int64_t heads, const std::string& what) {
  std::vector<int64_t> out;
  if (text.empty() || text == "all") {
    for (int64_t h = 0; h < heads; ++h) out.push_back(h);
    return out;
  }
  for (const std::string& item : split_list(text, what, "0-3,8")) {
    auto dash = item.find('-', 1);
    int64_t a = 0, e = 0;
    if (dash == std::string::npos) {
      a = e = parse_int(item, what);
    } else {
      a = parse_int(item.substr(0, dash), what);
      e = parse_int(item.substr(dash + 1), what);
    }
    if (a < 0 || e >= heads || a > e)
      throw UsageError(what + " '" + item + "' is out of range: the mask has heads 0-" + std::to_string(heads - 1));
    for (int64_t h = a; h <= e; ++h) out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) throw UsageError(what + " '" + text + "' selects no head");
  return out;
}

void check_mask_selection(const BlockMask& m, int64_t batch_index, const std::vector<int64_t>& heads) {
  if (batch_index < 0 || batch_index >= m.shape.batch)
    throw UsageError("--batch-index " + std::to_string(batch_index) + " is out of range: the mask has batch " +
                     std::to_string(m.shape.batch) + " (0-" + std::to_string(m.shape.batch - 1) + ")");
  for (int64_t h : heads)
    if (h < 0 || h >= m.shape.heads)
      throw UsageError("head " + std::to_string(h) + " is out of range: the mask has heads 0-" +
                       std::to_string(m.shape.heads - 1));
}

namespace {
// A spec as a title: parameters without a value ("grid=") left out, and "seed=-1" (the run's seed)
// replaced by the seed the mask was made with. Head maps are cleaned part by part.
std::string readable_spec(const std::string& spec, const std::string& run_seed) {
  std::string out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find_first_of(",;", pos);
    if (end == std::string::npos) end = spec.size();
    std::string tok = spec.substr(pos, end - pos);
    const char sep = end < spec.size() ? spec[end] : '\0';
    const bool empty_value = !tok.empty() && tok.back() == '=';
    if (tok == "seed=-1" || (tok.size() > 8 && tok.compare(tok.size() - 8, 8, ":seed=-1") == 0))
      tok.replace(tok.size() - 2, 2, run_seed);
    if (!empty_value) {
      if (!out.empty() && out.back() != ';' && out.back() != ':') out += ',';
      out += tok;
    } else if (tok.find(':') != std::string::npos) {  // "name:key=": keep the name
      out += tok.substr(0, tok.find(':') + 1);
    }
    if (sep == ';') {
      while (!out.empty() && (out.back() == ',' || out.back() == ':')) out.pop_back();
      out += ';';
    }
    pos = end + 1;
  }
  while (!out.empty() && (out.back() == ',' || out.back() == ':' || out.back() == ';')) out.pop_back();
  return out;
}
}  // namespace

std::string mask_pattern_label(const BlockMask& m) {
  if (m.spec.is_object()) {
    const std::string seed = m.spec.contains("seed") && m.spec["seed"].is_number_integer() ? m.spec["seed"].dump()
                                                                                          : std::string("-1");
    if (m.spec.contains("pattern") && m.spec["pattern"].is_string())
      return readable_spec(m.spec["pattern"].get<std::string>(), seed);
    if (m.spec.contains("head_map") && m.spec["head_map"].is_string())
      return readable_spec(m.spec["head_map"].get<std::string>(), seed);
  }
  return "";
}

namespace {
bool any_pooled(const BlockMask& m, int w) { return w < m.shape.mk(); }
}  // namespace

std::string mask_ascii(const BlockMask& m, int64_t batch_index, const std::vector<int64_t>& heads, int max_width,
                       const std::string& name) {
  check_mask_selection(m, batch_index, heads);
  if (max_width < 4) throw UsageError("--ascii-width must be at least 4");
  const int64_t mq = m.shape.mq(), mk = m.shape.mk();
  int w = int(std::min<int64_t>(mk, max_width));
  // Terminal cells are about twice as tall as wide: halve the rows to keep the aspect.
  int hgt = int(std::max<int64_t>(1, std::min<int64_t>(mq, std::llround(double(mq) * w / double(mk) / 2.0))));
  std::ostringstream os;
  std::string label = mask_pattern_label(m);
  os << (label.empty() ? name : label) << "  " << m.shape.str() << (m.causal ? " causal" : "") << "\n";
  for (int64_t h : heads) {
    // One character per block column when the mask fits the width (block rows are paired for the
    // aspect, showing the stronger class); otherwise a cell covers several blocks and shows the share of
    // its visible blocks that are kept, so that a 1% mask reads as 1% kept.
    const bool pooled = any_pooled(m, w);
    int64_t kept = 0, visible = 0;
    const std::vector<uint8_t> cls = pooled ? std::vector<uint8_t>() : pool_head_classes(m, batch_index, h, w, hgt, nullptr);
    const std::vector<uint32_t> counts = pool_head_counts(m, batch_index, h, pooled ? w : 1, pooled ? hgt : 1, &kept, &visible);
    char buf[160];
    std::snprintf(buf, sizeof buf, "head %lld (%s) density %.4f%s\n", (long long)h, head_type_name(m.heads[size_t(h)].type),
                  visible ? double(kept) / double(visible) : 0.0, pooled ? "  [pooled: shares of kept blocks]" : "");
    os << buf;
    for (int y = 0; y < hgt; ++y) {
      os << '|';
      for (int x = 0; x < w; ++x) {
        const size_t q = size_t(y) * size_t(w) + size_t(x);
        if (!pooled) {
          os << block_class_char(BlockClass(cls[q]));
          continue;
        }
        const uint32_t* n = counts.data() + q * 4;
        const uint32_t vis = n[1] + n[2] + n[3], kc = n[2] + n[3];
        if (vis == 0) os << ' ';
        else if (kc == 0) os << '.';
        else if (kc == vis) os << '#';
        else os << char('0' + std::clamp<int>(int(std::ceil(10.0 * kc / vis)), 1, 9));
      }
      os << "|\n";
    }
  }
  if (any_pooled(m, w))
    os << "legend: '#' all kept, '1'-'9' some kept: digit d = up to d x 10% of the cell's visible blocks ('9' also more), '.' none kept, ' ' outside causal\n";
  else
    os << "legend: '#' kept, '+' partial (causal diagonal / tail), '.' empty, ' ' outside causal\n";
  return os.str();
}

nlohmann::json to_json(const FigureReport& r) {
  nlohmann::json panels = nlohmann::json::array();
  for (auto& p : r.panels)
    panels.push_back({{"label", p.label}, {"x", p.x}, {"y", p.y}, {"w", p.w}, {"h", p.h}, {"rows", p.rows}, {"cols", p.cols}});
  return {{"width", r.width}, {"height", r.height}, {"downsampled", r.downsampled}, {"ms", r.ms}, {"panels", panels}};
}

FigureReport render_mask_figure(const BlockMask& m, const MaskFigureOptions& o, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> heads = o.heads;
  if (heads.empty())
    for (int64_t h = 0; h < m.shape.heads; ++h) heads.push_back(h);
  check_mask_selection(m, o.batch_index, heads);
  const double s = o.scale;
  const int64_t mq = m.shape.mq(), mk = m.shape.mk();
  const int n = int(heads.size());
  const int cols = n == 1 ? 1 : int(std::ceil(std::sqrt(double(n))));
  const int rows = (n + cols - 1) / cols;
  const double aspect = std::clamp(double(mq) / double(mk), 0.25, 4.0);
  const double L = 78 * s, R = 24 * s, T = 70 * s, B = 92 * s;
  const double label_h = n > 1 ? 22 * s : 0, gap_x = n > 1 ? 46 * s : 0, gap_y = n > 1 ? 30 * s : 0;

  int pw = 0, ph = 0;
  if (o.width > 0) pw = int(std::floor((o.width - L - R - (cols - 1) * gap_x) / cols));
  if (o.height > 0) ph = int(std::floor((o.height - T - B - rows * label_h - (rows - 1) * gap_y) / rows));
  if (pw == 0 && ph == 0) pw = int(std::lround((n == 1 ? 640.0 : std::clamp(1400.0 / cols, 120.0, 420.0)) * s));
  if (pw == 0) pw = int(std::lround(ph / aspect));
  if (ph == 0) ph = int(std::lround(pw * aspect));
  if (pw < 8 || ph < 8)
    throw UsageError("--width/--height leave " + std::to_string(pw) + "x" + std::to_string(ph) +
                     " pixels per head panel; give a larger size or fewer --heads");
  const int W = o.width > 0 ? o.width : int(std::ceil(L + R + cols * pw + (cols - 1) * gap_x));
  const int H = o.height > 0 ? o.height : int(std::ceil(T + B + rows * (label_h + ph) + (rows - 1) * gap_y));

  // Classify every selected head in parallel (the expensive part for large masks).
  std::vector<HeadRaster> rasters(static_cast<size_t>(n));
  {
    std::atomic<int> next{0};
    int threads = std::max(1, std::min<int>(n, int(std::thread::hardware_concurrency())));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&]() {
        for (int k = next++; k < n; k = next++)
          rasters[size_t(k)] = pool_head_coverage(m, o.batch_index, heads[size_t(k)], pw, ph);
      });
    for (auto& th : pool) th.join();
  }

  FigureReport rep;
  Canvas c(W, H, o.format);
  c.fill(Rgb{1, 1, 1});
  const Rgb ink{0.13, 0.13, 0.13};
  int64_t kept_total = 0, visible_total = 0;
  for (int k = 0; k < n; ++k) {
    const int64_t h = heads[size_t(k)];
    const int col = k % cols, row = k / cols;
    const double px = std::round(L + col * (pw + gap_x));
    const double py = std::round(T + row * (label_h + ph + gap_y) + label_h);
    const std::vector<uint32_t>& argb = rasters[size_t(k)].argb;
    c.image(argb, pw, ph, px, py, pw, ph);
    rep.panels.push_back({"head " + std::to_string(h), px, py, double(pw), double(ph), mq, mk});
    kept_total += rasters[size_t(k)].kept;
    visible_total += rasters[size_t(k)].visible;
    // Block grid lines when a block is at least 6 pixels on both sides.
    if (double(pw) / double(mk) >= 6 && double(ph) / double(mq) >= 6) {
      std::vector<std::pair<Point, Point>> segs;
      for (int64_t j = 1; j < mk; ++j) {
        double x = px + double(j * pw / mk);
        segs.push_back({{x, py}, {x, py + ph}});
      }
      for (int64_t i = 1; i < mq; ++i) {
        double y = py + double(i * ph / mq);
        segs.push_back({{px, y}, {px + pw, y}});
      }
      c.segments(segs, Rgb{1, 1, 1}, std::max(1.0, 1.0 * s), 0.9);
    }
    c.stroke_rect(px - 0.5, py - 0.5, pw + 1, ph + 1, Rgb{0.35, 0.35, 0.35}, 1.0);
    // Ticks in block indices.
    double fs = (n == 1 ? 12 : 10) * s;
    for (double v : nice_ticks(0, double(mk), std::max(2, int(pw / (70 * s))))) {
      double x = px + v * pw / double(mk);
      c.line(x, py + ph, x, py + ph + 4 * s, Rgb{0.35, 0.35, 0.35}, 1 * s);
      c.text(format_tick(v), x, py + ph + 5 * s, fs, ink, HAlign::Center, VAlign::Top);
    }
    for (double v : nice_ticks(0, double(mq), std::max(2, int(ph / (50 * s))))) {
      double y = py + v * ph / double(mq);
      c.line(px - 4 * s, y, px, y, Rgb{0.35, 0.35, 0.35}, 1 * s);
      c.text(format_tick(v), px - 6 * s, y, fs, ink, HAlign::Right, VAlign::Middle);
    }
    if (n > 1) {
      char buf[96];
      const HeadRaster& hr = rasters[size_t(k)];
      std::snprintf(buf, sizeof buf, "head %lld \xc2\xb7 %s \xc2\xb7 density %.3f", (long long)h,
                    head_type_name(m.heads[size_t(h)].type), hr.visible ? double(hr.kept) / double(hr.visible) : 0.0);
      c.text(buf, px + pw / 2.0, py - 5 * s, 11.5 * s, ink, HAlign::Center, VAlign::Bottom, true);
    }
  }
  // Title: pattern, sizes, density.
  std::string label = mask_pattern_label(m);
  std::string title = !o.title.empty() ? o.title : !label.empty() ? label : o.name.empty() ? "block mask" : o.name;
  if (title.size() > 160) title = title.substr(0, 157) + "...";
  const MaskShape& sh = m.shape;
  std::string sub = sh.q_len == sh.kv_len ? "S=" + std::to_string(sh.q_len)
                                          : "q_len=" + std::to_string(sh.q_len) + " kv_len=" + std::to_string(sh.kv_len);
  sub += ", block " + (sh.block_q == sh.block_kv ? std::to_string(sh.block_q)
                                                 : std::to_string(sh.block_q) + "x" + std::to_string(sh.block_kv));
  sub += " (" + std::to_string(mq) + "x" + std::to_string(mk) + " blocks)";
  if (m.causal) sub += ", causal";
  if (sh.batch > 1) sub += ", batch " + std::to_string(o.batch_index) + " of " + std::to_string(sh.batch);
  sub += n == 1 ? ", head " + std::to_string(heads[0]) + " (" + head_type_name(m.heads[size_t(heads[0])].type) + ")"
                : ", " + std::to_string(n) + " of " + std::to_string(sh.heads) + " heads";
  char dens[96];
  std::snprintf(dens, sizeof dens, "  \xc2\xb7  density %.4f (kept / visible blocks)",
                visible_total ? double(kept_total) / double(visible_total) : 0.0);
  sub += dens;
  if (o.show_title) draw_title(c, title, W / 2.0, 12 * s, s, sub);
  double grid_w = cols * pw + (cols - 1) * gap_x;
  double grid_bottom = T + rows * (label_h + ph) + (rows - 1) * gap_y;
  c.text("key block", L + grid_w / 2, grid_bottom + 24 * s, 13 * s, ink, HAlign::Center, VAlign::Top);
  c.text("query block", L - 46 * s, T + (grid_bottom - T) / 2, 13 * s, ink, HAlign::Center, VAlign::Bottom, false, 90);
  std::vector<LegendItem> legend = {{block_class_name(BlockClass::Kept), block_class_color(BlockClass::Kept)},
                                    {block_class_name(BlockClass::Partial), block_class_color(BlockClass::Partial)},
                                    {block_class_name(BlockClass::Empty), block_class_color(BlockClass::Empty)}};
  if (m.causal) legend.push_back({block_class_name(BlockClass::Hidden), block_class_color(BlockClass::Hidden)});
  Point ls = legend_size(c, legend, s, true);
  draw_legend(c, legend, std::max(4.0, (W - ls.x) / 2), grid_bottom + 48 * s, s, true);
  c.save(path);
  rep.width = W;
  rep.height = H;
  rep.panel_w = pw;
  rep.panel_h = ph;
  rep.downsampled = pw < mk || ph < mq;
  rep.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace bsattn::render
