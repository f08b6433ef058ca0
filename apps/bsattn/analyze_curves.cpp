// `bsattn analyze --curves`: locality of token orders on a grid, all orders side by side, per block
// size. Options live in their own group; names the quality analysis may also define on `analyze`
// (--json, --block, --quiet, ...) are read from whichever option received them.
#include "apps/bsattn/analyze_curves.h"
#include "lib/build_info.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lib/atomic_file.h"
#include "lib/curves/locality.h"
#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/spec.h"

namespace bsattn::app {

struct AnalyzeCurvesOptions {
  CLI::App* analyze = nullptr;
  CLI::App* group = nullptr;
  bool curves = false;
  std::string grid, text = "0", text_position = "head", block, blocks, orders, radius = "1", json_out, markdown;
  bool quiet = false;
};

namespace {

const char* kDefaultOrders = "raster,snake,morton,hilbert,gilbert,tiles";

// The value given on the command line for `name`, whether our group or the analyze subcommand itself
// registered the option that received it; `mine` when neither did.
const CLI::Option* received(const AnalyzeCurvesOptions& o, const std::string& name) {
  for (CLI::App* app : {o.analyze, o.group})
    for (const CLI::Option* opt : app->get_options())
      if (opt->check_name(name) && opt->count() > 0) return opt;
  return nullptr;
}
std::string given(const AnalyzeCurvesOptions& o, const std::string& name, const std::string& mine) {
  const CLI::Option* opt = received(o, name);
  if (!opt || opt->results().empty()) return mine;
  std::string v;
  for (auto& r : opt->results()) v += (v.empty() ? "" : ",") + r;
  return v;
}
bool given_flag(const AnalyzeCurvesOptions& o, const std::string& name, bool mine) {
  return received(o, name) != nullptr || mine;
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown";
}

struct Row {
  const char* label;
  const char* key;  // JSON key, for the markdown/human tables
  int decimals;
};
const Row kRows[] = {
    {"face-adjacent steps", "face_step_share", 4},
    {"diagonal steps", "diagonal_step_share", 4},
    {"jump steps", "jump_step_share", 4},
    {"longest step (cells)", "longest_step", 2},
    {"bbox volume / token", "bbox_per_token", 3},
    {"radius of gyration", "radius_of_gyration", 3},
    {"surface / token", "surface_per_token", 3},
    {"neighbour blocks", "neighbour_blocks", 2},
    {"same-block face pairs", "same_block_share", 4},
};

std::string fmt(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// One table per block size: rows are metrics, columns are orders.
std::vector<std::vector<std::string>> table_cells(const nlohmann::json& recs, int64_t block,
                                                  const std::vector<std::string>& radii) {
  std::vector<std::vector<std::string>> t;
  std::vector<const nlohmann::json*> cols;
  for (auto& r : recs)
    if (r["block"] == block) cols.push_back(&r);
  std::vector<std::string> head = {"metric (block " + std::to_string(block) + ")"};
  for (auto* c : cols) head.push_back((*c)["order"].get<std::string>());
  t.push_back(head);
  for (auto& row : kRows) {
    std::vector<std::string> line = {row.label};
    for (auto* c : cols) line.push_back(fmt((*c)["metrics"][row.key].get<double>(), row.decimals));
    t.push_back(line);
  }
  for (size_t k = 0; k < radii.size(); ++k) {
    std::vector<std::string> d = {"window " + radii[k] + ": block density"};
    std::vector<std::string> u = {"window " + radii[k] + ": useful pair share"};
    for (auto* c : cols) {
      auto& w = (*c)["metrics"]["windows"][k];
      d.push_back(fmt(w["block_density"].get<double>(), 4));
      u.push_back(fmt(w["useful_share"].get<double>(), 4));
    }
    t.push_back(d);
    t.push_back(u);
  }
  std::vector<std::string> ms = {"order time (ms, one run)"};
  for (auto* c : cols) ms.push_back(fmt((*c)["order_ms"].get<double>(), 2));
  t.push_back(ms);
  return t;
}

std::string text_table(const std::vector<std::vector<std::string>>& t) {
  std::vector<size_t> wdt(t[0].size(), 0);
  for (auto& r : t)
    for (size_t i = 0; i < r.size(); ++i) wdt[i] = std::max(wdt[i], r[i].size());
  std::ostringstream s;
  for (auto& r : t) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i == 0) s << r[i] << std::string(wdt[i] - r[i].size(), ' ');
      else s << "  " << std::string(wdt[i] - r[i].size(), ' ') << r[i];
    }
    s << "\n";
  }
  return s.str();
}

std::string markdown_table(const std::vector<std::vector<std::string>>& t) {
  std::ostringstream s;
  for (size_t r = 0; r < t.size(); ++r) {
    s << "|";
    for (auto& c : t[r]) s << " " << c << " |";
    s << "\n";
    if (r == 0) {
      s << "|";
      for (size_t i = 0; i < t[r].size(); ++i) s << (i == 0 ? "---|" : "---:|");
      s << "\n";
    }
  }
  return s.str();
}

}  // namespace

std::shared_ptr<AnalyzeCurvesOptions> add_analyze_curves_options(CLI::App& analyze) {
  auto o = std::make_shared<AnalyzeCurvesOptions>();
  o->analyze = &analyze;
  auto* g = analyze.add_option_group("Curves", "Locality of token orders (with --curves)");
  o->group = g;
  // Names analyze may already define for the mask analysis are shared, not registered twice.
  auto absent = [&](const std::string& name) { return analyze.get_option_no_throw(name) == nullptr; };
  g->add_flag("--curves", o->curves, "Measure the locality of token orders on a grid (needs --grid)");
  g->add_option("--grid", o->grid, "Grid TxHxW (video) or HxW (image), e.g. 13x30x45");
  g->add_option("--text", o->text, "Text tokens kept in place at the head or tail of the sequence")
      ->capture_default_str();
  g->add_option("--text-position", o->text_position, "Where the text part sits")
      ->check(CLI::IsMember({"head", "tail"}))
      ->capture_default_str();
  if (absent("--block")) g->add_option("--block", o->block, "Block size (default 128; --blocks for several)");
  g->add_option("--blocks", o->blocks, "Several block sizes, comma separated (e.g. 64,128); overrides --block");
  g->add_option("--order", o->orders,
                std::string("Orders to compare, comma separated (default ") + kDefaultOrders +
                    "; tiles:tile=TxHxW, residue:segment=N,rate=R)\n" + curves::orders_help());
  // The older name, kept working but out of --help: --order is the name in every subcommand.
  analyze.add_option("--orders", o->orders)->group("");
  g->add_option("--radius", o->radius,
                "Window radii for coverage, comma separated: R, RTxRHxRW (or RHxRW on a 2D grid)")
      ->capture_default_str();
  if (absent("--json")) g->add_option("--json", o->json_out, "Write the records as JSON to FILE ('-' for stdout)");
  g->add_option("--markdown", o->markdown, "Write the tables as Markdown to FILE (with command and context)");
  if (absent("--quiet")) g->add_flag("-q,--quiet", o->quiet, "Print no table");
  return o;
}

bool analyze_curves_requested(const AnalyzeCurvesOptions& o) { return given_flag(o, "--curves", o.curves); }

CurveOrderSelection curve_order_selection(const AnalyzeCurvesOptions& o) {
  return {given(o, "--grid", o.grid), given(o, "--text", o.text), given(o, "--text-position", o.text_position),
          given(o, "--order", o.orders)};
}

void run_analyze_curves(const AnalyzeCurvesOptions& o) {
  using namespace curves;
  std::string grid_s = given(o, "--grid", o.grid);
  if (grid_s.empty()) throw UsageError("--curves needs --grid TxHxW (or HxW), e.g. --grid 13x30x45");
  SequenceLayout layout;
  layout.grid = parse_grid(grid_s, "--grid");
  layout.text = parse_int(given(o, "--text", o.text), "--text");
  if (layout.text < 0) throw UsageError("--text must be >= 0 (got " + std::to_string(layout.text) + ")");
  std::string pos = given(o, "--text-position", o.text_position);
  if (pos != "head" && pos != "tail") throw UsageError("--text-position must be head or tail (got '" + pos + "')");
  layout.text_at_head = pos == "head";
  std::string blocks_s = given(o, "--blocks", o.blocks);
  if (blocks_s.empty()) blocks_s = given(o, "--block", o.block);
  if (blocks_s.empty()) blocks_s = "128";
  std::vector<int64_t> blocks = parse_int_axis(blocks_s, "--blocks", "64,128");
  for (int64_t b : blocks)
    if (b < 1) throw UsageError("--block values must be >= 1 (got " + std::to_string(b) + ")");
  std::string orders_s = given(o, "--order", o.orders);
  if (orders_s.empty()) orders_s = kDefaultOrders;
  std::vector<std::string> order_texts = split_order_list(orders_s, "--order");
  std::vector<WindowRadius> radii;
  std::vector<std::string> radius_names;
  for (auto& r : split_list(given(o, "--radius", o.radius), "--radius", "1,0x2x2")) {
    radii.push_back(parse_radius(r, layout.grid, "--radius"));
    radius_names.push_back(radii.back().str());
  }
  std::string json_out = given(o, "--json", o.json_out), md_out = given(o, "--markdown", o.markdown);
  bool quiet = given_flag(o, "--quiet", o.quiet);
  OutputSet outputs;  // checked before any work, written together at the end
  outputs.add(json_out, "--json");
  outputs.add(md_out, "--markdown");

  std::string command = "bsattn analyze --curves --grid " + layout.grid.str() + " --text " +
                        std::to_string(layout.text) + (layout.text_at_head ? "" : " --text-position tail") +
                        (blocks.size() == 1 ? " --block " : " --blocks ");
  for (size_t i = 0; i < blocks.size(); ++i) command += (i ? "," : "") + std::to_string(blocks[i]);
  command += " --order " + orders_s + " --radius ";
  for (size_t i = 0; i < radius_names.size(); ++i) command += (i ? "," : "") + radius_names[i];

  nlohmann::json recs = nlohmann::json::array();
  for (int64_t block : blocks) {
    for (auto& text : order_texts) {
      OrderSpec spec = parse_order(text, layout.grid, block, "--order");
      auto t0 = std::chrono::steady_clock::now();
      Perm perm = grid_order(spec, layout.grid);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      LocalityMetrics m = locality_metrics(layout.grid, perm, block, layout.grid_offset(), radii);
      std::string label = spec.name == "tiles" ? "tiles:" + spec.tile.str() : spec.str();
      recs.push_back({{"order", label}, {"spec", spec.to_json()}, {"block", block}, {"order_ms", ms},
                      {"metrics", m.to_json()}});
    }
  }

  std::ostringstream head;
  head << "curve locality: grid " << layout.grid.str() << " (" << layout.grid.size() << " tokens), text "
       << layout.text << " at " << (layout.text_at_head ? "head" : "tail") << ", sequence " << layout.length()
       << "\n";
  std::string notes =
      "Blocks are those of the whole sequence (the text shifts their boundaries); per-block values are "
      "token-weighted means over blocks holding grid tokens; text tokens are left out.\n";
  std::string window_floor;
  if (!recs.empty())
    for (size_t k = 0; k < radii.size(); ++k)
      window_floor += "window " + radius_names[k] + " token density (the floor for any order): " +
                      fmt(recs[0]["metrics"]["windows"][k]["token_density"].get<double>(), 4) + "\n";

  if (!json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.curves-locality/v1"},
                        {"context",
                         {{"bsattn_version", BSATTN_VERSION},
                          {"commit", bsattn::build_commit()},
                          {"host", host_name()},
                          {"cpu", cpu_model()},
                          {"command", command}}},
                        {"config",
                         {{"layout", layout.to_json()},
                          {"blocks", blocks},
                          {"orders", order_texts},
                          {"radii", radius_names}}},
                        {"records", recs}};
    write_text_file(json_out, j.dump(1) + "\n");
  }
  if (!md_out.empty()) {
    std::ostringstream md;
    md << "# Curve locality: grid " << layout.grid.str() << ", text " << layout.text << "\n\n"
       << "Produced by:\n\n```\n" << command << (json_out.empty() ? "" : " --json " + json_out) << " --markdown "
       << md_out << "\n```\n\n"
       << "bsattn " << BSATTN_VERSION << ", commit " << bsattn::build_commit() << ", host " << host_name() << " ("
       << cpu_model() << "). Order times are one run on one core.\n\n"
       << notes << "\n";
    for (int64_t b : blocks) md << markdown_table(table_cells(recs, b, radius_names)) << "\n";
    md << window_floor;
    write_text_file(md_out, md.str());
  }
  outputs.commit();
  if (!quiet && json_out != "-") {
    std::printf("%s", head.str().c_str());
    for (int64_t b : blocks) std::printf("\n%s", text_table(table_cells(recs, b, radius_names)).c_str());
    std::printf("\n%s%s", window_floor.c_str(), notes.c_str());
  }
}

}  // namespace bsattn::app
