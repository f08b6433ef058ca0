#include "lib/render/json_plots.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "lib/error.h"
#include "lib/render/colormap.h"
#include "lib/render/plot.h"

namespace bsattn::render {

void check_schema(const nlohmann::json& doc, const std::string& schema, const std::string& what,
                  const std::string& kind) {
  if (!doc.is_object() || !doc.contains("schema") || !doc["schema"].is_string())
    throw UsageError(what + " has no \"schema\": visualize " + kind + " reads " + schema + " documents");
  std::string got = doc["schema"].get<std::string>();
  if (got != schema) {
    std::string hint = got == "bsattn.bench/v1"      ? " (use visualize bench)"
                       : got == "bsattn.frontier/v1" ? " (use visualize frontier)"
                       : got == "bsattn.mask/v1"     ? " (use visualize mask)"
                                                     : "";
    throw UsageError(what + " is a '" + got + "' document, not '" + schema + "'" + hint);
  }
  if (!doc.contains("records") || !doc["records"].is_array())
    throw UsageError(what + ": \"records\" must be an array");
}

namespace {

// A finite number at r[key], or NaN when missing/null/not a number.
double num(const nlohmann::json& r, const char* key) {
  if (!r.is_object() || !r.contains(key) || !r[key].is_number()) return NAN;
  double v = r[key].get<double>();
  return std::isfinite(v) ? v : NAN;
}
std::string str(const nlohmann::json& r, const char* key) {
  if (!r.is_object() || !r.contains(key)) return "";
  if (r[key].is_string()) return r[key].get<std::string>();
  if (r[key].is_number()) return r[key].dump();
  return "";
}

FigureReport finish(Canvas& c, const std::string& path, std::chrono::steady_clock::time_point t0) {
  c.save(path);
  FigureReport r;
  r.width = c.width();
  r.height = c.height();
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// One or two panels side by side.
void layout(const FigureOptions& o, int panels, int& W, int& H) {
  W = o.width > 0 ? o.width : int(std::lround((panels == 2 ? 1200 : 720) * o.scale));
  H = o.height > 0 ? o.height : int(std::lround(500 * o.scale));
}

}  // namespace

FigureReport render_frontier_figure(const nlohmann::json& doc, const std::string& what, const FrontierFigureOptions& o,
                                    const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  check_schema(doc, "bsattn.frontier/v1", what, "frontier");
  if (o.metric != "recall" && o.metric != "error" && o.metric != "both")
    throw UsageError("--metric '" + o.metric + "' is not known: use recall, error or both");
  std::map<std::string, Series> recall, error;
  std::vector<std::string> order;
  for (auto& r : doc["records"]) {
    std::string p = str(r, "pattern");
    if (p.empty()) p = str(r, "spec");
    double d = num(r, "density");
    if (p.empty() || std::isnan(d)) throw UsageError(what + ": every record needs \"pattern\" and a numeric \"density\"");
    if (!recall.count(p)) order.push_back(p);
    auto& a = recall[p];
    auto& e = error[p];
    a.label = e.label = p;
    a.x.push_back(d);
    a.y.push_back(num(r, "recall_mean"));
    e.x.push_back(d);
    e.y.push_back(num(r, "rel_l2"));
  }
  if (order.empty()) throw UsageError(what + " has no records to plot");
  const int panels = o.metric == "both" ? 2 : 1;
  int W, H;
  layout(o, panels, W, H);
  Canvas c(W, H, o.format);
  c.fill(Rgb{1, 1, 1});
  const double s = o.scale;
  std::string sub = std::to_string(doc["records"].size()) + " masks, " + std::to_string(order.size()) + " patterns";
  if (doc.contains("context") && doc["context"].is_object()) {
    const auto& ctx = doc["context"];
    if (ctx.contains("inputs") && ctx["inputs"].is_object()) {
      const auto& in = ctx["inputs"];
      if (in.contains("synthetic") && in["synthetic"].is_object() && in["synthetic"].contains("kind"))
        sub += "  \xc2\xb7  synthetic " + str(in["synthetic"], "kind");
      if (in.contains("sizes") && in["sizes"].is_object()) sub += ", seq " + str(in["sizes"], "seq");
    }
    if (ctx.contains("seed") && ctx["seed"].is_number()) sub += "  \xc2\xb7  seed " + ctx["seed"].dump();
  }
  if (o.show_title)
    draw_title(c, o.title.empty() ? "quality frontier: what each pattern keeps at each density" : o.title, W / 2.0,
               8 * s, s, sub);
  double top = 50 * s;
  int k = 0;
  auto panel = [&](std::map<std::string, Series>& m, const std::string& ylabel, bool ylog, double ylo, double yhi) {
    LinePlot p;
    for (auto& name : order) p.series.push_back(m[name]);
    p.xa.label = "density (kept / visible blocks)";
    p.ya.label = ylabel;
    p.ya.log = ylog;
    p.ya.lo = ylo;
    p.ya.hi = yhi;
    double pw = double(W) / panels;
    draw_line_plot(c, p, k * pw, top, pw, H - top, s);
    ++k;
  };
  if (o.metric != "error") panel(recall, "attention recall (mean over rows)", false, 0, 1.02);
  if (o.metric != "recall") panel(error, "relative L2 error of the output", true, 0, 0);
  return finish(c, path, t0);
}

namespace {
bool listed(const std::vector<std::string>& allowed, const std::string& v) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}
// How an implementation is called in a figure.
std::string impl_display(const std::string& impl) {
  if (impl == "flex_attention") return "FlexAttention";
  if (impl == "sdpa_cudnn") return "SDPA cuDNN";
  if (impl == "sdpa_flash") return "SDPA flash";
  if (impl == "sdpa_efficient") return "SDPA mem-efficient";
  if (impl == "sdpa_math") return "SDPA math";
  return impl;
}
Rgb lighten(Rgb c, double t) { return {c.r + (1 - c.r) * t, c.g + (1 - c.g) * t, c.b + (1 - c.b) * t}; }
}  // namespace

FigureReport render_bench_figure(const nlohmann::json& doc, const std::string& what, const BenchFigureOptions& o,
                                 const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  check_schema(doc, "bsattn.bench/v1", what, "bench");
  if (o.x != "density" && o.x != "seq") throw UsageError("--x '" + o.x + "' is not known: use density or seq");
  if (o.metric != "tflops" && o.metric != "speedup" && o.metric != "both")
    throw UsageError("--metric '" + o.metric + "' is not known: use tflops, speedup or both");
  const char* xkey = o.x == "density" ? "density" : "seq";
  const char* other = o.x == "density" ? "seq" : "density";
  // Which labels vary decides what a line's name needs.
  std::set<std::string> passes, others;
  std::map<std::string, std::set<std::string>> present;  // filtered field -> values in the file
  std::vector<const nlohmann::json*> recs;
  for (auto& r : doc["records"]) {
    if (!r.is_object()) throw UsageError(what + ": every record must be an object");
    for (const char* key : {"pattern", "impl", "seq", "head_dim", "dtype", "pass"}) present[key].insert(str(r, key));
    if (!o.pass.empty() && str(r, "pass") != o.pass) continue;
    if (!listed(o.patterns, str(r, "pattern")) || !listed(o.seqs, str(r, "seq")) ||
        !listed(o.head_dims, str(r, "head_dim")) || !listed(o.dtypes, str(r, "dtype")))
      continue;
    if (!o.impls.empty() && !listed(o.impls, str(r, "impl")) && !listed(o.impls, str(r, "kernel"))) continue;
    if (o.causal >= 0 && (!r.contains("causal") || !r["causal"].is_boolean() || r["causal"].get<bool>() != (o.causal == 1)))
      continue;
    if (std::isnan(num(r, xkey))) continue;
    recs.push_back(&r);
    passes.insert(str(r, "pass"));
    others.insert(str(r, other));
  }
  if (recs.empty()) {
    std::string have;
    for (auto& [key, values] : present) {
      have += (have.empty() ? "" : "; ") + key + ":";
      for (auto& v : values) have += " " + (v.empty() ? std::string("(none)") : v);
    }
    throw UsageError(what + " has no records left by the filters with a numeric \"" + std::string(xkey) +
                     "\" (the file has " + have + ")");
  }
  // Effective throughput in GFLOP/s when every record is under 0.5 TFLOP/s (CPU runs).
  double top_tf = 0;
  for (auto* rp : recs) top_tf = std::max(top_tf, std::isnan(num(*rp, "tflops_effective")) ? 0.0 : num(*rp, "tflops_effective"));
  const bool giga = top_tf < 0.5;
  // One colour family per implementation (impl, and its kernel when it names one), bsattn first; the
  // variants of a family (S, or density, and the pass when several) by marker shape and lighter shades.
  struct Line {
    Series tf, sp;
    size_t family = 0, variant = 0;
  };
  std::vector<std::string> families, variants;
  std::map<std::pair<size_t, size_t>, Line> lines;
  auto index_of = [](std::vector<std::string>& v, const std::string& x) {
    auto it = std::find(v.begin(), v.end(), x);
    if (it != v.end()) return size_t(it - v.begin());
    v.push_back(x);
    return v.size() - 1;
  };
  for (auto* rp : recs) {
    const auto& r = *rp;
    std::string impl = str(r, "impl");
    if (impl.empty()) impl = str(r, "name");
    if (impl.empty()) impl = "?";
    std::string kernel = str(r, "kernel");
    std::string family = impl_display(impl) + (kernel.empty() || kernel == impl ? "" : " " + kernel);
    std::string variant;
    if (others.size() > 1) variant = (o.x == "density" ? "S=" : "density ") + str(r, other);
    if (passes.size() > 1) variant += (variant.empty() ? "" : " ") + str(r, "pass");
    Line& l = lines[{index_of(families, family), index_of(variants, variant)}];
    double x = num(r, xkey);
    l.tf.x.push_back(x);
    l.tf.y.push_back(num(r, "tflops_effective") * (giga ? 1000.0 : 1.0));
    l.sp.x.push_back(x);
    l.sp.y.push_back(num(r, "speedup_vs_dense"));
  }
  // bsattn's family first in colours and legend, drawn last (on top).
  std::vector<size_t> fam_order(families.size());
  for (size_t f = 0; f < families.size(); ++f) fam_order[f] = f;
  std::stable_sort(fam_order.begin(), fam_order.end(), [&](size_t a, size_t b) {
    return (families[a].rfind("bsattn", 0) == 0) > (families[b].rfind("bsattn", 0) == 0);
  });
  std::vector<size_t> rank(families.size());
  for (size_t k = 0; k < fam_order.size(); ++k) rank[fam_order[k]] = k;
  // A family with one point per line (SDPA's dense reference) is drawn as rings over the others.
  std::vector<bool> single(families.size(), true);
  for (auto& [key, l] : lines) single[key.first] = single[key.first] && l.tf.x.size() == 1;
  std::vector<Series> tf, sp;
  for (auto& [key, l] : lines) {
    const size_t f = key.first, v = key.second;
    const Rgb base = line_color(int(rank[f]));
    for (Series* se : {&l.tf, &l.sp}) {
      se->label = families[f] + (variants[v].empty() ? "" : " " + variants[v]);
      se->has_color = true;
      se->color = variants.size() > 1 ? lighten(base, 0.45 * double(v) / double(variants.size())) : base;
      se->marker = int(v);
      se->hollow = single[f];
    }
    tf.push_back(l.tf);
    sp.push_back(l.sp);
  }
  // Draw order: the last family in rank first, bsattn last.
  std::vector<size_t> draw(tf.size());
  for (size_t k = 0; k < draw.size(); ++k) draw[k] = k;
  {
    std::vector<size_t> fam_of;
    for (auto& [key, l] : lines) fam_of.push_back(rank[key.first]);
    std::stable_sort(draw.begin(), draw.end(), [&](size_t a, size_t b) { return fam_of[a] > fam_of[b]; });
  }
  std::vector<LegendItem> legend;
  for (size_t f : fam_order) legend.push_back({families[f], line_color(int(rank[f])), LegendItem::Line, 0, single[f]});
  if (variants.size() > 1)
    for (size_t v = 0; v < variants.size(); ++v)
      legend.push_back({variants[v], Rgb{0.35, 0.35, 0.35}, LegendItem::Marker, int(v)});

  const int panels = o.metric == "both" ? 2 : 1;
  int W, H;
  layout(o, panels, W, H);
  Canvas c(W, H, o.format);
  c.fill(Rgb{1, 1, 1});
  const double s = o.scale;
  std::string sub = std::to_string(recs.size()) + " records";
  if (doc.contains("context") && doc["context"].is_object()) {
    const auto& ctx = doc["context"];
    for (const char* k : {"gpu", "device", "commit"})
      if (ctx.contains(k) && ctx[k].is_string()) sub += "  \xc2\xb7  " + ctx[k].get<std::string>();
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string t;
    for (auto& x : v) t += (t.empty() ? "" : ",") + x;
    return t;
  };
  if (!o.pass.empty()) sub += "  \xc2\xb7  pass " + o.pass;
  if (!o.patterns.empty()) sub += "  \xc2\xb7  pattern " + list(o.patterns);
  if (!o.head_dims.empty()) sub += "  \xc2\xb7  D=" + list(o.head_dims);
  if (!o.seqs.empty()) sub += "  \xc2\xb7  S=" + list(o.seqs);
  if (!o.dtypes.empty()) sub += "  \xc2\xb7  " + list(o.dtypes);
  if (o.causal >= 0) sub += o.causal ? "  \xc2\xb7  causal" : "  \xc2\xb7  not causal";
  if (o.show_title)
    draw_title(c, o.title.empty() ? "block-sparse attention benchmark" : o.title, W / 2.0, 8 * s, s, sub);
  double top = 50 * s;
  int k = 0;
  auto panel = [&](std::vector<Series>& m, const std::string& ylabel, bool speedup) {
    LinePlot p;
    for (size_t i : draw) p.series.push_back(m[i]);
    p.legend = legend;
    p.xa.label = o.x == "density" ? "density (kept / visible blocks)" : "sequence length";
    p.xa.log = o.x == "seq";
    p.ya.label = ylabel;
    if (speedup) p.hlines.push_back({1.0, "dense = 1"});
    double pw = double(W) / panels;
    draw_line_plot(c, p, k * pw, top, pw, H - top, s);
    ++k;
  };
  if (o.metric != "speedup") panel(tf, giga ? "effective GFLOP/s" : "effective TFLOP/s", false);
  if (o.metric != "tflops") panel(sp, "speedup over dense", true);
  return finish(c, path, t0);
}

}  // namespace bsattn::render
