#include "lib/render/attention_map.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "lib/error.h"
#include "lib/quality/block_mass.h"
#include "lib/render/plot.h"

namespace bsattn::render {

AttentionMaps attention_maps(const AttentionProblem& p, const float* q, const float* k, const BlockMask& mask,
                             int64_t b, int64_t h) {
  if (p.varlen()) throw UsageError("attention maps take fixed-length inputs (no cu_seqlens)");
  p.validate(mask);
  if (b < 0 || b >= p.batch) throw UsageError("--batch-index " + std::to_string(b) + " is out of range 0-" + std::to_string(p.batch - 1));
  if (h < 0 || h >= p.heads_q) throw UsageError("--head " + std::to_string(h) + " is out of range 0-" + std::to_string(p.heads_q - 1));
  const int64_t D = p.head_dim, Sq = p.q_len, Sk = p.kv_len;
  const int64_t hk = h / (p.heads_q / p.heads_kv);
  // One head of one batch entry as its own problem.
  std::vector<float> qh(size_t(Sq * D)), kh(size_t(Sk * D));
  for (int64_t s = 0; s < Sq; ++s)
    std::copy_n(q + ((b * Sq + s) * p.heads_q + h) * D, D, qh.begin() + s * D);
  for (int64_t s = 0; s < Sk; ++s)
    std::copy_n(k + ((b * Sk + s) * p.heads_kv + hk) * D, D, kh.begin() + s * D);
  AttentionProblem p1 = p;
  p1.batch = 1;
  p1.heads_q = p1.heads_kv = 1;
  if (p1.scale == 0) p1.scale = p.effective_scale();
  const int64_t bkv = mask.shape.block_kv, bq = mask.shape.block_q;
  std::vector<double> rows = dense_block_mass(p1, qh.data(), kh.data(), mask.causal, 1, bkv);  // [Sq, Mk]

  AttentionMaps r;
  r.mq = mask.shape.mq();
  r.mk = mask.shape.mk();
  const int64_t mk = r.mk;
  r.dense.assign(size_t(r.mq * mk), 0.0);
  r.sparse.assign(size_t(r.mq * mk), 0.0);
  const uint8_t* bits = mask.head_bits(mask.shape.batch == 1 ? 0 : b, h);
  std::vector<int64_t> counted(size_t(r.mq), 0);
  double recall_sum = 0;
  int64_t recall_rows = 0;
  for (int64_t s = 0; s < Sq; ++s) {
    const double* row = rows.data() + s * mk;
    const int64_t i = s / bq;
    const uint8_t* kept = bits + i * mk;
    double total = 0, in_kept = 0;
    for (int64_t j = 0; j < mk; ++j) {
      total += row[j];
      if (kept[j]) in_kept += row[j];
    }
    if (!(total > 0)) continue;  // this row sees no key
    ++counted[size_t(i)];
    recall_sum += in_kept / total;
    ++recall_rows;
    double* dd = r.dense.data() + i * mk;
    double* ss = r.sparse.data() + i * mk;
    for (int64_t j = 0; j < mk; ++j) {
      dd[j] += row[j] / total;
      if (kept[j] && in_kept > 0) ss[j] += row[j] / in_kept;
    }
  }
  for (int64_t i = 0; i < r.mq; ++i)
    if (counted[size_t(i)])
      for (int64_t j = 0; j < mk; ++j) {
        r.dense[size_t(i * mk + j)] /= double(counted[size_t(i)]);
        r.sparse[size_t(i * mk + j)] /= double(counted[size_t(i)]);
      }
  r.error.resize(r.dense.size());
  for (size_t x = 0; x < r.dense.size(); ++x) r.error[x] = std::abs(r.sparse[x] - r.dense[x]);
  r.recall = recall_rows ? recall_sum / double(recall_rows) : 0;
  return r;
}

Overlay parse_overlay(const std::string& s) {
  if (s == "outline") return Overlay::Outline;
  if (s == "hatch") return Overlay::Hatch;
  if (s == "none") return Overlay::None;
  throw UsageError("--overlay '" + s + "' is not known: use outline, hatch or none");
}

namespace {

// Max-pools values onto a pw x ph raster (same cell mapping as the mask rasters), maps them through
// viridis on a log scale in [lo, hi]; zero cells stay white.
std::vector<uint32_t> heat_raster(const std::vector<double>& v, int64_t mq, int64_t mk, int pw, int ph, double lo,
                                  double hi) {
  std::vector<double> pooled(static_cast<size_t>(pw) * static_cast<size_t>(ph), 0.0);
  for (int64_t i = 0; i < mq; ++i) {
    int64_t y0 = i * ph / mq, y1 = std::max(y0 + 1, (i + 1) * ph / mq);
    for (int64_t j = 0; j < mk; ++j) {
      int64_t x0 = j * pw / mk, x1 = std::max(x0 + 1, (j + 1) * pw / mk);
      double val = v[size_t(i * mk + j)];
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          double& d = pooled[size_t(y * pw + x)];
          d = std::max(d, val);
        }
    }
  }
  std::vector<uint32_t> out(pooled.size());
  const double llo = std::log10(lo), lhi = std::log10(hi);
  for (size_t x = 0; x < pooled.size(); ++x)
    out[x] = pooled[x] > 0 ? viridis((std::log10(std::max(pooled[x], lo)) - llo) / (lhi - llo)).argb() : 0xffffffffu;
  return out;
}

}  // namespace

FigureReport render_attention_figure(const AttentionMaps& maps, const BlockMask& mask, int64_t h,
                                     const AttentionFigureOptions& o, const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  const double s = o.scale;
  const int64_t mq = maps.mq, mk = maps.mk;
  const int panels = o.error_map ? 2 : 1;
  const double aspect = std::clamp(double(mq) / double(mk), 0.25, 4.0);
  const double L = 70 * s, T = 78 * s, B = 70 * s, cbar = 100 * s, gap = 64 * s;
  int pw = o.width > 0 ? int((o.width - L - panels * cbar - (panels - 1) * gap - 10 * s) / panels) : int(520 * s);
  int ph = o.height > 0 ? int(o.height - T - B) : int(std::lround(pw * aspect));
  if (o.width <= 0 && o.height > 0) pw = int(std::lround(ph / aspect));
  if (pw < 16 || ph < 16) throw UsageError("--width/--height leave too little room for the attention panels");
  const int W = o.width > 0 ? o.width : int(L + panels * (pw + cbar) + (panels - 1) * gap + 10 * s);
  const int H = o.height > 0 ? o.height : int(T + ph + B);

  FigureReport rep;
  Canvas c(W, H, o.format);
  c.fill(Rgb{1, 1, 1});
  const Rgb ink{0.13, 0.13, 0.13};
  const double cell_w = double(pw) / double(mk), cell_h = double(ph) / double(mq);

  auto panel = [&](int idx, const std::vector<double>& v, const std::string& label, const std::string& cbar_label,
                   bool overlay) {
    double vmax = 0;
    for (double x : v) vmax = std::max(vmax, x);
    if (!(vmax > 0)) vmax = 1;
    double vmin = vmax / std::pow(10.0, o.decades);
    const double px = std::round(L + idx * (pw + cbar + gap)), py = std::round(T);
    c.image(heat_raster(v, mq, mk, pw, ph, vmin, vmax), pw, ph, px, py, pw, ph);
    rep.panels.push_back({label, px, py, double(pw), double(ph), mq, mk});
    if (overlay && o.overlay != Overlay::None) {
      const uint8_t* kb = mask.head_bits(mask.shape.batch == 1 ? 0 : o.batch_index, h);
      if (cell_w >= 5 && cell_h >= 5) {
        for (int64_t i = 0; i < mq; ++i)
          for (int64_t j = 0; j < mk; ++j) {
            double x = px + double(j * pw / mk), y = py + double(i * ph / mq);
            double w = double((j + 1) * pw / mk - j * pw / mk), hh = double((i + 1) * ph / mq - i * ph / mq);
            bool kept = kb[i * mk + j] != 0;
            if (o.overlay == Overlay::Outline && kept)
              c.stroke_rect(x + 0.75 * s, y + 0.75 * s, w - 1.5 * s, hh - 1.5 * s, Rgb{1, 1, 1}, 1.5 * s);
            if (o.overlay == Overlay::Hatch && !kept) c.hatch_rect(x, y, w, hh, Rgb{1, 1, 1}, 4 * s, 1 * s);
          }
      } else {
        // Blocks too small to outline or hatch: dropped blocks are dimmed with white instead.
        for (int64_t i = 0; i < mq; ++i)
          for (int64_t j = 0; j < mk; ++j)
            if (!kb[i * mk + j]) {
              double x = px + double(j) * cell_w, y = py + double(i) * cell_h;
              c.fill_rect(x, y, std::max(cell_w, 1.0), std::max(cell_h, 1.0), Rgb{1, 1, 1}, 0.55);
            }
      }
    }
    c.stroke_rect(px - 0.5, py - 0.5, pw + 1, ph + 1, Rgb{0.35, 0.35, 0.35}, 1.0);
    for (double t : nice_ticks(0, double(mk), std::max(2, int(pw / (70 * s))))) {
      double x = px + t * pw / double(mk);
      c.line(x, py + ph, x, py + ph + 4 * s, Rgb{0.35, 0.35, 0.35}, 1 * s);
      c.text(format_tick(t), x, py + ph + 5 * s, 11 * s, ink, HAlign::Center, VAlign::Top);
    }
    for (double t : nice_ticks(0, double(mq), std::max(2, int(ph / (50 * s))))) {
      double y = py + t * ph / double(mq);
      c.line(px - 4 * s, y, px, y, Rgb{0.35, 0.35, 0.35}, 1 * s);
      c.text(format_tick(t), px - 6 * s, y, 11 * s, ink, HAlign::Right, VAlign::Middle);
    }
    c.text(label, px + pw / 2.0, py - 8 * s, 13 * s, ink, HAlign::Center, VAlign::Bottom, true);
    c.text("key block", px + pw / 2.0, py + ph + 24 * s, 12 * s, ink, HAlign::Center, VAlign::Top);
    c.text("query block", px - 40 * s, py + ph / 2.0, 12 * s, ink, HAlign::Center, VAlign::Bottom, false, 90);
    draw_colorbar(c, px + pw + 14 * s, py, 16 * s, ph, vmin, vmax, true, cbar_label, s);
  };
  std::string overlay_note = o.overlay == Overlay::Outline ? "kept blocks outlined"
                             : o.overlay == Overlay::Hatch ? "dropped blocks hatched"
                                                           : "no overlay";
  if (o.overlay != Overlay::None && !(cell_w >= 5 && cell_h >= 5)) overlay_note = "dropped blocks dimmed";
  panel(0, maps.dense, "dense attention mass (" + overlay_note + ")", "mass per block (log)", true);
  if (o.error_map) panel(1, maps.error, "|sparse - dense| mass per block", "abs. difference (log)", false);

  std::string label = mask_pattern_label(mask);
  char title[256];
  std::snprintf(title, sizeof title, "%s \xc2\xb7 head %lld \xc2\xb7 recall %.4f",
                o.title.empty() ? (label.empty() ? "attention map" : label.c_str()) : o.title.c_str(), (long long)h,
                maps.recall);
  std::string sub = mask.shape.str() + (mask.causal ? ", causal" : "") + (o.subtitle.empty() ? "" : "  \xc2\xb7  " + o.subtitle) +
                    "  \xc2\xb7  white: zero mass";
  if (o.show_title) draw_title(c, title, W / 2.0, 10 * s, s, sub);
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
