#include "lib/render/json_plots.h"

#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "lib/error.h"
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
    p.xa.label = "density (kept / causally visible blocks)";
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
  std::set<std::string> passes, others, kernels;
  std::vector<const nlohmann::json*> recs;
  for (auto& r : doc["records"]) {
    if (!r.is_object()) throw UsageError(what + ": every record must be an object");
    if (!o.pass.empty() && str(r, "pass") != o.pass) continue;
    if (std::isnan(num(r, xkey))) continue;
    recs.push_back(&r);
    passes.insert(str(r, "pass"));
    others.insert(str(r, other));
  }
  if (recs.empty())
    throw UsageError(what + " has no records with a numeric \"" + std::string(xkey) + "\"" +
                     (o.pass.empty() ? "" : " and pass '" + o.pass + "'"));
  std::map<std::string, Series> tf, sp;
  std::vector<std::string> order;
  for (auto* rp : recs) {
    const auto& r = *rp;
    std::string impl = str(r, "impl");
    if (impl.empty()) impl = str(r, "name");
    if (impl.empty()) impl = "?";
    std::string kernel = str(r, "kernel");
    std::string label = impl + (kernel.empty() || kernel == impl ? "" : " " + kernel);
    if (passes.size() > 1) label += " " + str(r, "pass");
    if (others.size() > 1) label += std::string(" (") + (o.x == "density" ? "S=" : "density ") + str(r, other) + ")";
    if (!tf.count(label)) order.push_back(label);
    tf[label].label = sp[label].label = label;
    double x = num(r, xkey);
    tf[label].x.push_back(x);
    tf[label].y.push_back(num(r, "tflops_effective"));
    sp[label].x.push_back(x);
    sp[label].y.push_back(num(r, "speedup_vs_dense"));
  }
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
  if (!o.pass.empty()) sub += "  \xc2\xb7  pass " + o.pass;
  if (o.show_title)
    draw_title(c, o.title.empty() ? "block-sparse attention benchmark" : o.title, W / 2.0, 8 * s, s, sub);
  double top = 50 * s;
  int k = 0;
  auto panel = [&](std::map<std::string, Series>& m, const std::string& ylabel, bool speedup) {
    LinePlot p;
    for (auto& name : order) p.series.push_back(m[name]);
    p.xa.label = o.x == "density" ? "density (kept / causally visible blocks)" : "sequence length";
    p.xa.log = o.x == "seq";
    p.ya.label = ylabel;
    if (speedup) p.hlines.push_back({1.0, "dense = 1"});
    double pw = double(W) / panels;
    draw_line_plot(c, p, k * pw, top, pw, H - top, s);
    ++k;
  };
  if (o.metric != "speedup") panel(tf, "effective TFLOP/s", false);
  if (o.metric != "tflops") panel(sp, "speedup over dense", true);
  return finish(c, path, t0);
}

}  // namespace bsattn::render
