// bsattn visualize: figures from bsattn's own files. One sub-command per figure kind:
//   mask FILE            the block mask (one head or a labelled grid of heads), or --ascii text
//   attention MASK       dense attention mass per block with the mask overlaid, and the error map
//   curve                token orders on an image/video grid: path or block membership
//   frontier FILE        quality frontier of `analyze --sweep` (bsattn.frontier/v1)
//   bench FILE           effective TFLOP/s and speedup of `bench` (bsattn.bench/v1)
// Options shared by the image kinds: -o, --format, --width/--height, --dpi, --title, --no-title, --quiet.
#include <cstdio>
#include <iostream>
#include <memory>

#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "lib/atomic_file.h"
#include "lib/block_sizes.h"
#include "lib/error.h"
#include "lib/json_file.h"
#include "lib/mask_io.h"
#include "lib/curves/order.h"
#include "lib/tensor/qkv_source.h"
#include "lib/render/attention_map.h"
#include "lib/render/canvas.h"
#include "lib/render/curve_render.h"
#include "lib/render/json_plots.h"
#include "lib/render/mask_render.h"
#include "lib/spec.h"

namespace bsattn::app {

namespace {

struct ImageOptions {
  std::string output, format;
  int width = 0, height = 0;
  double dpi = 100;
  std::string title, json_out;
  bool no_title = false, quiet = false;
};

void add_image_options(CLI::App* sub, ImageOptions& o) {
  auto* g = "Output";
  sub->add_option("-o,--output", o.output, "Image file to write: .png, .svg or .pdf (the extension picks the format; SVG and PDF keep text as text)")->group(g);
  sub->add_option("--format", o.format, "png, svg or pdf, whatever -o ends in (default: from the -o extension)")
      ->check(CLI::IsMember({"png", "svg", "pdf"}))
      ->group(g);
  sub->add_option("--width", o.width, "Image width in pixels (default: the figure's natural size)")
      ->check(CLI::Range(16, 32768))
      ->group(g);
  sub->add_option("--height", o.height, "Image height in pixels (default: from the width and the data)")
      ->check(CLI::Range(16, 32768))
      ->group(g);
  sub->add_option("--dpi", o.dpi, "Resolution: scales fonts, lines and the default size (100 = 1x)")
      ->default_val(100)
      ->check(finite_range(25.0, 600.0))
      ->group(g);
  auto* title = sub->add_option("--title", o.title, "Title replacing the default one")->group(g);
  sub->add_flag("--no-title", o.no_title, "Draw no title and no subtitle line (for a caption of your own)")
      ->excludes(title)
      ->group(g);
  sub->add_option("--json", o.json_out, "Write the figure's layout (size, panel rectangles in pixels) as JSON to FILE ('-' for stdout)")->group(g);
  sub->add_flag("-q,--quiet", o.quiet, "Print nothing on success")->group(g);
}

// The image format: --format when given, else the -o extension; an unknown extension is bad usage.
render::ImageFormat image_format(const ImageOptions& o) {
  if (!o.format.empty()) return render::parse_image_format(o.format);
  return render::image_format_for_path(o.output, "-o");
}

void fill_figure_options(const ImageOptions& o, render::FigureOptions& f) {
  if (o.output.empty()) throw UsageError("give -o FILE.png (or .svg, .pdf) for the image");
  f.format = image_format(o);
  f.width = o.width;
  f.height = o.height;
  f.scale = o.dpi / 100.0;
  f.title = o.title;
  f.show_title = !o.no_title;
  if (!render::cairo_available()) throw RuntimeFailure(render::no_cairo_message());
}

void report(const ImageOptions& o, const render::FigureReport& r, const std::string& what) {
  if (!o.json_out.empty()) {
    nlohmann::json j = render::to_json(r);
    j["schema"] = "bsattn.figure/v1";
    j["output"] = o.output;
    j["what"] = what;
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  if (o.quiet || o.json_out == "-") return;
  std::printf("wrote %s: %s, %dx%d px%s, %.0f ms\n", o.output.c_str(), what.c_str(), r.width, r.height,
              r.downsampled ? " (downsampled: a pixel covers several blocks)" : "", r.ms);
}

// Runs one figure with its outputs (-o and its format, --json) checked before any work and written
// together at the end (all or none).
template <class F>
void with_outputs(const ImageOptions& o, F&& draw) {
  OutputSet outputs;
  outputs.add(o.output, "-o");
  outputs.add(o.json_out, "--json");
  if (!o.output.empty()) image_format(o);
  draw();
  outputs.commit();
}

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Sizes a .npy or CSR mask does not carry (mask and attention).
struct MaskSizeHints {
  int64_t q_len = 0, kv_len = 0;
  BlockOptions blocks;
  bool causal = false;
};

// ---- mask ----
struct MaskOptions {
  ImageOptions img;
  std::string file, heads = "all";
  int64_t batch_index = 0;
  bool ascii = false;
  int ascii_width = 64;
  MaskSizeHints sizes;
};

// `note` receives, for a .npy or CSR mask read without sizes, the line saying which it was drawn with
// (printed once the figure is made, so that bad usage still gets one line).
BlockMask load_visualized_mask(const std::string& file, const MaskSizeHints& o, const char* kind, std::string& note) {
  MaskSizesHint hint;
  if (o.q_len) hint.q_len = o.q_len;
  if (o.kv_len) hint.kv_len = o.kv_len;
  const BlockSizes blocks = resolve_block_sizes(o.blocks, 0);
  if (blocks.q) hint.block_q = blocks.q;
  if (blocks.kv) hint.block_kv = blocks.kv;
  hint.causal = o.causal;
  BlockMask m = load_mask(file, hint);
  // A .npy or CSR mask holds blocks, not tokens: say which sizes it is drawn with when none were given.
  const bool self_describing = file.size() > 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  if (!self_describing && !hint.block_q && !hint.block_kv && !hint.q_len && !hint.kv_len) {
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "bsattn visualize %s: note: %s stores no block size; drawn with block %lldx%lld (q_len %lld, kv_len "
                  "%lld); give --block (or --block-q/--block-kv, --q-len/--kv-len) for other sizes\n",
                  kind, base_name(file).c_str(), (long long)m.shape.block_q, (long long)m.shape.block_kv,
                  (long long)m.shape.q_len, (long long)m.shape.kv_len);
    note = buf;
  }
  return m;
}

void add_mask_size_hints(CLI::App* sub, MaskSizeHints& o) {
  auto* g = "Mask sizes (.npy / CSR masks only; .json masks carry their own)";
  sub->add_option("--q-len", o.q_len, "Query length (default: Mq x block)")->check(CLI::Range(int64_t(1), int64_t(1) << 40))->group(g);
  sub->add_option("--kv-len", o.kv_len, "Key length (default: Mk x block)")->check(CLI::Range(int64_t(1), int64_t(1) << 40))->group(g);
  add_block_options(*sub, o.blocks, g, "128");
  sub->add_flag("--causal", o.causal, "The mask is causal (marks diagonal blocks partial, the upper triangle outside)")->group(g);
}

void run_mask(MaskOptions& o) {
  std::string note;
  BlockMask m = load_visualized_mask(o.file, o.sizes, "mask", note);
  auto heads = render::parse_head_list(o.heads, m.shape.heads);
  if (o.batch_index < 0 || o.batch_index >= m.shape.batch)
    throw UsageError("--batch-index " + std::to_string(o.batch_index) + " is out of range: the mask has batch " +
                     std::to_string(m.shape.batch));
  if (o.ascii) {
    std::cout << render::mask_ascii(m, o.batch_index, heads, o.ascii_width, base_name(o.file));
    if (o.img.output.empty()) {
      if (!o.img.quiet) std::fputs(note.c_str(), stderr);
      return;
    }
  }
  render::MaskFigureOptions f;
  fill_figure_options(o.img, f);
  f.heads = heads;
  f.batch_index = o.batch_index;
  f.name = base_name(o.file);
  auto r = render::render_mask_figure(m, f, o.img.output);
  if (!o.img.quiet) std::fputs(note.c_str(), stderr);
  report(o.img, r, "mask " + m.shape.str() + ", " + std::to_string(heads.size()) + " head(s)");
}

// ---- attention ----
struct AttentionOptions {
  ImageOptions img;
  std::string mask, q, k, layout = "bshd", dtype = "auto", synthetic, overlay = "outline";
  int64_t head = 0, batch_index = 0, heads = 0, head_dim = 64;
  uint64_t seed = 0;
  double decades = 5;
  bool no_error = false;
  MaskSizeHints sizes;
};

void run_attention(AttentionOptions& o) {
  std::string note;
  BlockMask m = load_visualized_mask(o.mask, o.sizes, "attention", note);
  if (o.head < 0 || o.head >= m.shape.heads)
    throw UsageError("--head " + std::to_string(o.head) + " is out of range: the mask has heads 0-" +
                     std::to_string(m.shape.heads - 1));
  QkvSource src;
  src.q = o.q;
  src.k = o.k;
  src.layout = o.layout;
  src.dtype = o.dtype;
  src.synthetic = o.synthetic;
  src.seed = o.seed;
  if (!o.synthetic.empty()) {
    if (m.shape.q_len != m.shape.kv_len)
      throw UsageError("--synthetic makes q_len == kv_len inputs; this mask has q_len " + std::to_string(m.shape.q_len) +
                       " and kv_len " + std::to_string(m.shape.kv_len) + " (give --q/--k files)");
    src.sizes.batch = 1;
    src.sizes.seq = m.shape.q_len;
    src.sizes.heads_q = src.sizes.heads_kv = m.shape.heads;
    src.sizes.head_dim = o.head_dim;
  }
  Qkv in = load_qkv(src, false);
  AttentionProblem p = problem_for(in.q, in.k);
  render::AttentionFigureOptions f;
  fill_figure_options(o.img, f);
  f.overlay = render::parse_overlay(o.overlay);
  f.error_map = !o.no_error;
  f.decades = o.decades;
  f.batch_index = o.batch_index;
  f.subtitle = o.synthetic.empty() ? "q " + base_name(o.q) + ", k " + base_name(o.k)
                                   : "synthetic " + o.synthetic + ", seed " + std::to_string(o.seed);
  auto maps = render::attention_maps(p, in.q.data.data(), in.k.data.data(), m, o.batch_index, o.head);
  auto r = render::render_attention_figure(maps, m, o.head, f, o.img.output);
  if (!o.img.quiet) std::fputs(note.c_str(), stderr);
  char what[160];
  std::snprintf(what, sizeof what, "attention map of head %lld, recall %.4f", (long long)o.head, maps.recall);
  report(o.img, r, what);
}

// ---- curve ----
struct CurveOptions {
  ImageOptions img;
  std::string grid, orders = "raster,gilbert", view = "path";
  BlockOptions blocks;
  int frames = 8;
};

void run_curve(CurveOptions& o) {
  if (o.grid.empty()) throw UsageError("give --grid TxHxW (or HxW)");
  const int64_t block = resolve_block_sizes(o.blocks, kDefaultBlockSize).q;
  curves::Grid g = curves::parse_grid(o.grid, "--grid");
  std::vector<render::NamedOrder> orders;
  for (const auto& text : curves::split_order_list(o.orders, "--order")) {
    curves::OrderSpec spec = curves::parse_order(text, g, block, "--order");
    orders.push_back({spec.str(), curves::grid_order(spec, g)});
  }
  render::CurveFigureOptions f;
  fill_figure_options(o.img, f);
  f.view = render::parse_curve_view(o.view);
  f.block = block;
  f.max_frames = o.frames;
  auto r = render::render_curve_figure(g, orders, f, o.img.output);
  report(o.img, r, std::to_string(orders.size()) + " order(s) on grid " + g.str());
}

// ---- frontier / bench ----
struct JsonPlotOptions {
  ImageOptions img;
  std::string file, metric = "both", x = "density", pass;
  std::vector<std::string> patterns, impls, seqs, head_dims, dtypes;  // bench filters, each a list as given
  bool causal_only = false, non_causal = false;
};

// The items of a filter given once or more, each time as a comma-separated list.
std::vector<std::string> filter_items(const std::vector<std::string>& given, const std::string& what,
                                      const std::string& example) {
  std::vector<std::string> out;
  for (const auto& text : given)
    for (auto& item : split_list(text, what, example)) out.push_back(item);
  return out;
}

void run_frontier(JsonPlotOptions& o) {
  auto doc = read_json_file(o.file, "");
  render::FrontierFigureOptions f;
  fill_figure_options(o.img, f);
  f.metric = o.metric;
  auto r = render::render_frontier_figure(doc, o.file, f, o.img.output);
  report(o.img, r, "frontier of " + std::to_string(doc["records"].size()) + " records");
}

void run_bench(JsonPlotOptions& o) {
  auto doc = read_json_file(o.file, "");
  render::BenchFigureOptions f;
  fill_figure_options(o.img, f);
  f.metric = o.metric;
  f.x = o.x;
  f.pass = o.pass;
  f.patterns = filter_items(o.patterns, "--pattern", "random,dense");
  f.impls = filter_items(o.impls, "--impl", "bsattn,sdpa_flash");
  f.seqs = filter_items(o.seqs, "--seq", "1024,2048");
  f.head_dims = filter_items(o.head_dims, "--head-dim", "64,128");
  f.dtypes = filter_items(o.dtypes, "--dtype", "bf16,f16");
  f.causal = o.causal_only ? 1 : o.non_causal ? 0 : -1;
  auto r = render::render_bench_figure(doc, o.file, f, o.img.output);
  report(o.img, r, "benchmark plot");
}

}  // namespace

void register_visualize(CLI::App& app) {
  auto* vis = app.add_subcommand("visualize", "Draw masks, attention maps, curve orders, frontiers and benchmarks (PNG/SVG/PDF)");
  vis->require_subcommand(1);
  vis->footer(
      "Kinds (each has its own --help):\n"
      "  mask FILE          block mask (.npy/.json/CSR prefix): one head or a grid of heads; --ascii for a terminal\n"
      "  attention MASK     dense attention mass per block (log colour scale) with the mask overlaid, and |sparse - dense|\n"
      "  curve              token orders on a grid: the path coloured by position, or block membership\n"
      "  frontier FILE      recall / error vs density per pattern from analyze --sweep --json (bsattn.frontier/v1)\n"
      "  bench FILE         effective TFLOP/s and speedup vs density or seq from bench --json (bsattn.bench/v1)\n"
      "-o FILE.png, FILE.svg or FILE.pdf: the extension picks the format (any other is refused); SVG and PDF\n"
      "keep text as text. --no-title leaves out title and subtitle. Bad input exits 2; a build without\n"
      "Cairo draws nothing and exits 1 (mask --ascii still works).\n"
      "Examples:\n"
      "  bsattn visualize mask m.json -o mask.png --heads 0-3\n"
      "  bsattn visualize mask m.npy --ascii\n"
      "  bsattn visualize attention m.json --synthetic decay --head 0 -o attn.png\n"
      "  bsattn visualize curve --grid 4x16x24 --order raster,gilbert --view blocks --block 64 -o blocks.png\n"
      "  bsattn visualize frontier frontier.json -o frontier.pdf --no-title\n"
      "  bsattn visualize bench bench.json --x density -o bench.png\n"
      "  bsattn visualize bench h200.json --pattern random,dense --head-dim 128 --no-causal --pass fwd -o bench.pdf");

  auto mo = std::make_shared<MaskOptions>();
  auto* ms = vis->add_subcommand("mask", "Draw a block mask: kept / partial / empty / outside-causal blocks per head");
  ms->add_option("file", mo->file, "Mask: .json (bsattn.mask/v1), .npy (bool [B,H,Mq,Mk]) or a CSR prefix")
      ->required()
      ->group("Input");
  ms->add_option("--heads", mo->heads, "Heads to draw: all, 3, or a list like 0-3,8")->default_val("all")->group("Input");
  ms->add_option("--batch-index", mo->batch_index, "Batch entry to draw")->default_val(0)->group("Input");
  add_mask_size_hints(ms, mo->sizes);
  ms->add_flag("--ascii", mo->ascii, "Print a text rendering to stdout (no image unless -o is given too)")->group("Output");
  ms->add_option("--ascii-width", mo->ascii_width, "Columns of the text rendering (a character covering several blocks shows the share kept)")
      ->default_val(64)
      ->check(CLI::Range(4, 1000))
      ->group("Output");
  add_image_options(ms, mo->img);
  ms->callback([mo]() { with_outputs(mo->img, [&] { run_mask(*mo); }); });

  auto ao = std::make_shared<AttentionOptions>();
  auto* as = vis->add_subcommand("attention", "Draw dense attention mass per block with the mask overlaid, and the error map");
  auto* gi = "Input";
  as->add_option("mask", ao->mask, "Mask: .json, .npy or CSR prefix (its sizes must match Q/K)")->required()->group(gi);
  as->add_option("--q", ao->q, "Q .npy ([B,S,H,D] f32/f16, or bf16 with --dtype bf16)")->group(gi);
  as->add_option("--k", ao->k, "K .npy ([B,S,Hkv,D])")->group(gi);
  as->add_option("--layout", ao->layout, "Layout of --q/--k: bshd or bhsd")->default_val("bshd")->check(CLI::IsMember({"bshd", "bhsd"}))->group(gi);
  as->add_option("--dtype", ao->dtype, "Element type of --q/--k: auto, f32, f16, bf16")->default_val("auto")->group(gi);
  as->add_option("--synthetic", ao->synthetic, "Synthetic Q/K instead of files: KIND[:key=value,...]\n" + synthetic_help())->group(gi);
  as->add_option("--seed", ao->seed, "Seed of --synthetic (recorded in the figure)")->default_val(0)->check(seed_check())->group(gi);
  add_head_dim_option(*as, ao->head_dim, "Head dimension of --synthetic (even)", gi);
  as->add_option("--head", ao->head, "Query head to draw")->default_val(0)->group(gi);
  as->add_option("--batch-index", ao->batch_index, "Batch entry to draw")->default_val(0)->group(gi);
  add_mask_size_hints(as, ao->sizes);
  auto* gv = "View";
  as->add_option("--overlay", ao->overlay, "Mask overlay: outline (kept blocks), hatch (dropped blocks) or none; blocks under 5 px: dropped blocks dimmed")
      ->default_val("outline")->check(CLI::IsMember({"outline", "hatch", "none"}))->group(gv);
  as->add_option("--decades", ao->decades, "Colour range in decades below the largest block mass")->default_val(5)->check(finite_range(1.0, 16.0))->group(gv);
  as->add_flag("--no-error", ao->no_error, "Draw only the dense mass (no |sparse - dense| panel)")->group(gv);
  add_image_options(as, ao->img);
  as->callback([ao]() {
    if (ao->synthetic.empty() == (ao->q.empty() || ao->k.empty()) && !(ao->synthetic.empty() && ao->q.empty() && ao->k.empty()))
      throw UsageError("give either --q and --k, or --synthetic KIND");
    if (ao->synthetic.empty() && (ao->q.empty() || ao->k.empty())) throw UsageError("give --q and --k, or --synthetic KIND");
    with_outputs(ao->img, [&] { run_attention(*ao); });
  });

  auto co = std::make_shared<CurveOptions>();
  auto* cs = vis->add_subcommand("curve", "Draw token orders on an image/video grid: path or block membership");
  cs->add_option("--grid", co->grid, "Grid TxHxW (video) or HxW (image)")->required()->group("Input");
  cs->add_option("--order", co->orders, "Orders to compare side by side, comma separated:\n" + curves::orders_help())
      ->default_val("raster,gilbert")->group("Input");
  add_block_options(*cs, co->blocks, "Input", "128; used by --view blocks and tiles:tile=auto",
                    BlockValues::Square);
  cs->add_option("--view", co->view, "path: cells coloured by position with the path drawn; blocks: one colour per block")
      ->default_val("path")->check(CLI::IsMember({"path", "blocks"}))->group("View");
  cs->add_option("--frames", co->frames, "Video grids: at most this many frames per order, evenly spaced")->default_val(8)
      ->check(CLI::Range(1, 64))->group("View");
  add_image_options(cs, co->img);
  cs->callback([co]() { with_outputs(co->img, [&] { run_curve(*co); }); });

  auto fo = std::make_shared<JsonPlotOptions>();
  auto* fs = vis->add_subcommand("frontier", "Plot recall and error vs density, one line per pattern (analyze --sweep JSON)");
  fs->add_option("file", fo->file, "bsattn.frontier/v1 JSON (analyze --sweep ... --json FILE)")->required()->group("Input");
  fs->add_option("--metric", fo->metric, "recall (mean attention recall), error (relative L2 of the output, log) or both")
      ->default_val("both")->check(CLI::IsMember({"recall", "error", "both"}))->group("View");
  add_image_options(fs, fo->img);
  fs->callback([fo]() { with_outputs(fo->img, [&] { run_frontier(*fo); }); });

  auto bo = std::make_shared<JsonPlotOptions>();
  auto* bs = vis->add_subcommand("bench", "Plot effective TFLOP/s and speedup, one line per implementation (bench JSON)");
  bs->add_option("file", bo->file, "bsattn.bench/v1 JSON (bench ... --json FILE; peers merged by scripts/peers.py included)")->required()->group("Input");
  bs->add_option("--x", bo->x, "Horizontal axis: density or seq")->default_val("density")->check(CLI::IsMember({"density", "seq"}))->group("View");
  bs->add_option("--metric", bo->metric, "tflops (effective TFLOP/s), speedup (over dense) or both")->default_val("both")
      ->check(CLI::IsMember({"tflops", "speedup", "both"}))->group("View");
  auto* gf = "Filter (lists are comma separated; a record is drawn when it matches every filter given)";
  bs->add_option("--pass", bo->pass, "Only records of this pass (e.g. fwd, bwd); default all")->group(gf);
  bs->add_option("--pattern", bo->patterns, "Only these patterns (e.g. random,dense: SDPA's dense records are pattern dense)")
      ->type_name("LIST")->group(gf);
  bs->add_option("--impl", bo->impls, "Only these implementations or kernels (bsattn, flex_attention, sdpa_cudnn, sdpa_flash, sm90-ws, ...)")
      ->type_name("LIST")->group(gf);
  bs->add_option("--seq", bo->seqs, "Only these sequence lengths")->type_name("LIST")->group(gf);
  bs->add_option("--head-dim", bo->head_dims, "Only these head dimensions")->type_name("LIST")->group(gf);
  bs->add_option("--dtype", bo->dtypes, "Only these element types (bf16, f16, f32)")->type_name("LIST")->group(gf);
  auto* only_causal = bs->add_flag("--causal", bo->causal_only, "Only causal records")->group(gf);
  bs->add_flag("--no-causal", bo->non_causal, "Only non-causal records")->excludes(only_causal)->group(gf);
  add_image_options(bs, bo->img);
  bs->callback([bo]() { with_outputs(bo->img, [&] { run_bench(*bo); }); });
}

}  // namespace bsattn::app
