// bsattn bench: time sparse attention over a sweep (CUDA kernel on a GPU, CPU reference elsewhere),
// with the ceilings and the dense baseline measured in the same run; Markdown table on stdout,
// --json / --csv exports of the same records (schema bsattn.bench/v1, docs/bench-json.md).
#include <cstdio>
#include <iostream>
#include <memory>

#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "apps/bsattn/nsa_cli.h"
#include "lib/nsa/nsa_bench.h"
#include "lib/atomic_file.h"
#include "lib/backend.h"
#include "lib/bench/results.h"
#include "lib/bench/runner.h"
#include "lib/dilated/dilated_bench.h"
#include "lib/error.h"
#include "lib/json_file.h"
#include "lib/progress.h"
#include "lib/ring/ring_bench.h"
#include "lib/spec.h"
#include "lib/tensor/synthetic.h"
#include "lib/varlen/varlen.h"
#include "patterns/adaptive/gpu_select.h"
#include "patterns/registry.h"

namespace bsattn::app {

namespace {

struct BenchOptions {
  std::map<std::string, std::string> axes;  // axis name -> text, only those given
  BlockOptions blocks;                       // the block axis (--block)
  std::string config_file;
  std::string backend = "auto", kernel, bwd_kernel;
  bool list_kernels = false, no_ceilings = false, quiet = false, deterministic = false, progress = false;
  int max_ctas = 0;
  bench::TimingOptions timing;
  bool timing_given = false;
  uint64_t seed = 0;
  std::string json_out, csv_out, md_out, save_masks, from;
  std::string synthetic;  // Q/K for patterns that select from them (energy, topk, xattn, vslash)
  struct {
    std::string seqlens, cu_seqlens;
  } varlen;  // one packed batch of these sequences instead of the seq and batch axes
  NsaCli nsa;
  std::string dilated, orders, grid;  // --dilated: LongNet configurations, token orders on a grid
  int64_t text = 0;
  bool causal = false;
  std::string ranks, ring_layout = "contiguous", transport = "loopback", scaling = "strong";  // --ranks: the ring's scaling
  bool gate_u = false;  // HSTU u-gating (--score silu)
};

// --markdown: a file gets the table under the run's context; stdout ("-") the table alone.
void write_markdown(const std::string& path, const bench::BenchDoc& doc, const std::string& table) {
  if (!path.empty()) write_text_file(path, path == "-" ? table : bench::to_markdown_report(doc));
}

// --from FILE: the exports and the table of an existing document (e.g. merged by scripts/peers.py).
void export_existing(const BenchOptions& o) {
  OutputSet outputs;
  outputs.add(o.json_out, "--json");
  outputs.add(o.csv_out, "--csv");
  outputs.add(o.md_out, "--markdown");
  bench::BenchDoc doc = bench::bench_doc_from_json(read_json_file(o.from, "--from"), o.from);
  if (!o.json_out.empty()) write_text_file(o.json_out, bench::to_json(doc).dump(1) + "\n");
  if (!o.csv_out.empty()) write_text_file(o.csv_out, bench::to_csv(doc));
  std::string table = bench::to_markdown(doc);
  write_markdown(o.md_out, doc, table);
  outputs.commit();
  if (!o.quiet && o.json_out != "-" && o.csv_out != "-" && o.md_out != "-") std::cout << table;
}

// --ranks 1,2,4,8: ring attention's scaling (lib/ring/ring_bench.h) on each shape of the sweep, one mask
// pattern at a time; its own table and JSON document (bsattn.ring-bench/v1, docs/ring.md).
void run_ring_bench(const BenchOptions& o, bool use_cuda, const bench::SweepAxes& axes, const std::vector<std::string>& argv,
                    OutputSet& outputs) {
  if (!o.dilated.empty() || o.nsa.requested() || !axes.cu_seqlens.empty())
    throw UsageError("--ranks times one block-sparse attention over a ring: --dilated, --nsa and --seqlens do not apply");
  if (!o.csv_out.empty() || !o.save_masks.empty() || !o.synthetic.empty())
    throw UsageError("--ranks writes its table and --json/--markdown; --csv, --save-masks and --synthetic do not apply");
  if (axes.pass != std::vector<std::string>{"fwd"}) throw UsageError("--ranks times the forward ring: --pass fwd only");
  if (o.causal || !o.orders.empty() || !o.grid.empty() || o.text)
    throw UsageError("--causal, --order, --grid and --text apply to --dilated; a causal ring: --pattern causal");
  ring::RingBenchOptions ro;
  ro.ranks = ring::parse_rank_list(o.ranks);
  ro.scaling = ring::parse_scaling(o.scaling);
  ro.ring.layout = ring::parse_ring_layout(o.ring_layout);
  ro.ring.transport = ring::parse_transport(o.transport);
  if (ro.ring.transport == ring::TransportKind::Nccl && !use_cuda)
    throw UsageError("--transport nccl moves GPU memory between GPUs: it needs --backend cuda (or auto on a GPU machine)");
  ro.ring.attention.backend = use_cuda ? Backend::Cuda : Backend::Cpu;
  ro.ring.attention.kernel = o.kernel;
  ro.ring.attention.max_ctas = o.max_ctas;
  ro.warmup = o.timing_given ? int(o.timing.warmup) : 1;
  ro.reps = o.timing_given ? int(std::max<int64_t>(1, o.timing.min_samples)) : 3;
  ro.seed = o.seed;
  const bench::SweepPlan plan = bench::expand_sweep(axes, bench::BackendCaps{});
  if (plan.configs.empty())
    throw UsageError("no configuration of the sweep can run (" + (plan.skipped.empty() ? std::string("the sweep is empty")
                                                                                         : plan.skipped.front().reason) + ")");
  const bool progress = o.progress || (!o.quiet && stderr_is_terminal());
  std::vector<nlohmann::json> records;
  for (const bench::BenchConfig& c : plan.configs) {
    if (use_cuda && c.dtype == ElemType::F32) throw UsageError("--ranks on cuda: --dtype bf16 or f16");
    if (!bench::pattern_takes_density(c.pattern)) find_pattern(parse_spec(c.pattern, "--pattern").name);
    AttentionProblem base = c.problem();
    auto make_mask = [&c, &o](int64_t seq) {
      bench::BenchConfig one = c;
      one.shape.q_len = one.shape.kv_len = seq;
      std::string spec = c.spec, why;
      bool causal = c.causal;
      if (bench::pattern_takes_density(c.pattern) &&
          !bench::mask_spec_for(c.pattern, c.density_target, one.mask_shape().mk(), spec, causal, why))
        throw UsageError("--density: " + why);
      return generate_mask(one.mask_shape(), causal, o.seed, spec);
    };
    std::vector<nlohmann::json> r = ring::ring_scaling(base, make_mask, ro, progress ? [](const std::string& line) {
      std::fprintf(stderr, "%s\n", line.c_str());
    } : std::function<void(const std::string&)>{});
    for (auto& rec : r) rec["pattern"] = c.pattern, rec["density_target"] = c.density_target, rec["dtype"] = elem_type_name(c.dtype);
    records.insert(records.end(), r.begin(), r.end());
  }
  nlohmann::json context = bench::host_context();
  std::string joined;
  for (auto& a : argv) joined += (joined.empty() ? "" : " ") + a;
  context["argv"] = argv;
  context["command"] = joined;
  context["config"] = axes.to_json();
  if (use_cuda) {
    const GpuDeviceInfo d = require_gpu_backend().device_info();
    context["gpu"] = d.name;
    context["sms"] = d.sm_count;
    context["driver_version"] = d.driver_version;
  }
  const nlohmann::json doc = {{"schema", "bsattn.ring-bench/v1"}, {"context", context}, {"records", records}};
  const std::string table = ring::ring_bench_markdown(records);
  if (!o.json_out.empty()) write_text_file(o.json_out, doc.dump(1) + "\n");
  if (!o.md_out.empty()) write_text_file(o.md_out, table);
  outputs.commit();
  if (o.quiet || o.json_out == "-" || o.md_out == "-") return;
  const bool loopback = ro.ring.transport == ring::TransportKind::Loopback;
  std::printf("bsattn bench --ranks: ring attention, %s layout, %s transport, %s backend, seed %llu, commit %s\n\n%s",
              ring::ring_layout_name(ro.ring.layout), ring::transport_name(ro.ring.transport), use_cuda ? "cuda" : "cpu",
              (unsigned long long)o.seed, context.value("commit", std::string("?")).c_str(), table.c_str());
  if (loopback)
    std::printf("\nloopback: the ranks share this process's %s and take turns at each step; time is the longest rank's own "
                "compute (as if each rank had its own device and communication were free), median of %d runs; copies "
                "are the loopback's memory copies (longest rank), not a network. Communication hiding needs --transport nccl.\n",
                use_cuda ? "GPU" : "CPU", ro.reps);
  else
    std::printf("\nnccl: one GPU per rank; time is the ring's wall time (host clock, median of %d runs); communication "
                "is hidden when the wall time exceeds the longest rank's compute by under 5%%.\n", ro.reps);
  std::printf("speedup/efficiency against %d rank(s): strong = fixed S; weak = S grows with the ranks, efficiency of the "
              "per-rank pairs per second.\n", ro.ranks.front());
}

void run_bench_command(BenchOptions& o, const std::vector<std::string>& argv) {
  if (!o.from.empty()) return export_existing(o);
  if (o.list_kernels) {
    for (auto& v : require_gpu_backend().kernels()) std::cout << v << "\n";
    return;
  }
  // Outputs are checked before any work and written together at the end (all or none).
  OutputSet outputs;
  outputs.add(o.json_out, "--json");
  outputs.add(o.csv_out, "--csv");
  outputs.add(o.md_out, "--markdown");
  outputs.add_folder(o.save_masks, "--save-masks");
  bool use_cuda;
  if (o.nsa.requested()) {
    if (o.backend == "auto") o.backend = "cpu";  // NSA on the GPU when asked for: --backend cuda
  } else {
    nsa_params(o.nsa);  // refuses --nsa-pool without --nsa
  }
  if (o.backend == "auto") {
    use_cuda = gpu_available();
  } else {
    use_cuda = o.backend == "cuda";
  }
  if (!use_cuda && !o.kernel.empty()) throw UsageError("--kernel selects a CUDA kernel; it needs --backend cuda");
  if (!use_cuda && o.max_ctas) throw UsageError("--max-ctas caps the CUDA kernel's CTAs; it needs --backend cuda");
  if (!use_cuda && !o.bwd_kernel.empty()) throw UsageError("--bwd-kernel selects a CUDA backward kernel; it needs --backend cuda");
  if (!use_cuda && o.deterministic) throw UsageError("--deterministic selects the CUDA backward's dQ pass; it needs --backend cuda");

  // The embedded default sweep: small and meaningful, under a minute on either backend.
  bench::SweepAxes axes;
  if (use_cuda) {
    axes.seq = {8192};
    axes.head_dim = {128};
    axes.heads = {16};
    axes.block = {128};
    axes.density = {0.1, 0.25, 0.5, 1.0};
  } else {
    axes.seq = {1024};
    axes.head_dim = {64};
    axes.heads = {4};
    axes.block = {64};
    axes.density = {0.1, 0.25, 0.5, 1.0};
  }
  if (!o.config_file.empty())
    axes.merge_json(read_json_file(o.config_file, "--config"), "--config " + o.config_file);
  for (auto& [axis, text] : o.axes) axes.set(axis, text);
  if (o.gate_u) axes.gate_u = true;
  if ((o.axes.count("score") || o.axes.count("rab") || o.gate_u) && (o.nsa.requested() || !o.dilated.empty()))
    throw UsageError("--score/--rab/--gate-u apply to the masks' forward; --nsa and --dilated time softmax attention");
  if (!o.varlen.seqlens.empty() || !o.varlen.cu_seqlens.empty())  // else those of --config, if any
    axes.cu_seqlens = varlen_offsets(o.varlen.seqlens, o.varlen.cu_seqlens);
  if (!axes.cu_seqlens.empty() && !o.save_masks.empty())
    throw UsageError("--save-masks keeps fixed-length masks for scripts/peers.py; drop it with --seqlens/--cu-seqlens");
  if (!o.blocks.block.empty()) axes.set("block", o.blocks.block);
  if (!o.ranks.empty()) return run_ring_bench(o, use_cuda, axes, argv, outputs);
  if (o.ring_layout != "contiguous" || o.transport != "loopback" || o.scaling != "strong")
    throw UsageError("--ring-layout, --transport and --scaling apply to --ranks");

  if (!o.timing_given && !use_cuda) {
    // The CPU reference is slow and steady: fewer samples, a shorter budget.
    o.timing.warmup = 1;
    o.timing.min_samples = 3;
    o.timing.max_time_s = 0.3;
  }
  if (!o.timing_given && use_cuda) o.timing.max_time_s = 0.5;
  o.timing.validate();

  std::unique_ptr<bench::BenchBackend> backend =
      use_cuda ? bench::make_cuda_backend({o.kernel, o.max_ctas, !o.no_ceilings, o.deterministic, o.bwd_kernel}) : bench::make_cpu_backend();

  if (o.nsa.requested()) {
    const NsaParams np = nsa_params(o.nsa);
    nlohmann::json context = bench::host_context();
    context["argv"] = argv;
    context["config"] = axes.to_json();
    ProgressMeter meter("bsattn bench --nsa:", o.progress || (!o.quiet && stderr_is_terminal()));
    bench::BenchDoc doc = bench::run_nsa_bench(axes, np, "nsa:" + o.nsa.spec, o.timing, o.seed, context, &meter,
                                               use_cuda ? backend.get() : nullptr);
    meter.finish();
    if (doc.records.empty()) throw UsageError("no configuration could run: " + doc.skipped.front()["reason"].get<std::string>());
    if (!o.json_out.empty()) write_text_file(o.json_out, bench::to_json(doc).dump(1) + "\n");
    if (!o.csv_out.empty()) write_text_file(o.csv_out, bench::to_csv(doc));
    std::string table = bench::to_markdown(doc);
    write_markdown(o.md_out, doc, table);
    outputs.commit();
    if (!o.quiet && o.json_out != "-" && o.csv_out != "-" && o.md_out != "-") {
      std::printf("bsattn bench --nsa: %s, NSA forward (all three branches, selection and gate sum) against dense causal "
                  "attention; seed %llu\n\n%s", use_cuda ? "cuda" : "cpu", (unsigned long long)o.seed, table.c_str());
      for (auto& r : doc.records)
        std::printf("nsa S=%lld H=%lld/%lld D=%lld: %.3f ms, dense causal %.3f ms, speedup %.2fx\n",
                    (long long)r["seq"].get<int64_t>(), (long long)r["heads"].get<int64_t>(),
                    (long long)r["heads_kv"].get<int64_t>(), (long long)r["head_dim"].get<int64_t>(),
                    r["median_ms"].get<double>(), r["dense_median_ms"].get<double>(), r["speedup_vs_dense"].get<double>());
    }
    return;
  }
  const bool dilated = !o.dilated.empty();
  if (!dilated && (o.causal || !o.orders.empty() || !o.grid.empty() || o.text))
    throw UsageError("--causal, --order, --grid and --text apply to --dilated");
  dilated::DilatedBenchPlan dplan;
  if (dilated) {
    if (o.axes.count("pattern") || o.axes.count("density"))
      throw UsageError("--dilated times LongNet configurations: --pattern and --density do not apply");
    dplan.axes = axes;
    dplan.specs = dilated::parse_dilated_list(o.dilated, o.causal, "--dilated");
    if (!o.orders.empty()) dplan.orders = curves::split_order_list(o.orders, "--order", "standard,hilbert");
    for (auto& name : dplan.orders)
      if (name != "standard" && o.grid.empty()) throw UsageError("--order " + name + " needs --grid TxHxW (or HxW)");
    dplan.grid = o.grid;
    dplan.text = o.text;
  }
  for (auto& p : axes.pattern)
    if (!dilated && !bench::pattern_takes_density(p)) find_pattern(parse_spec(p, "--pattern").name);  // UsageError listing names
  bench::SweepPlan plan = dilated ? bench::SweepPlan{} : bench::expand_sweep(axes, backend->caps());
  if (!dilated && plan.configs.empty()) {
    std::string why = plan.skipped.empty() ? "the sweep is empty" : plan.skipped.front().reason;
    throw UsageError("no configuration of the sweep can run on the " + backend->name() + " backend (" + why + ")");
  }
  // --synthetic's kind and parameters are checked here; its sizes come with each configuration.
  if (!o.synthetic.empty()) synthetic_required_seq(o.synthetic);
  // The fallback notice comes once every option has been checked, so a usage error is the only line;
  // --quiet leaves only errors.
  if (o.backend == "auto" && !use_cuda && !o.quiet)
    std::cerr << "bsattn bench: no usable GPU (or a build without CUDA): timing the CPU reference backend "
                 "on a small sweep; kernel numbers need a GPU\n";

  nlohmann::json context = bench::host_context();
  std::string joined;
  for (auto& a : argv) joined += (joined.empty() ? "" : " ") + a;
  context["argv"] = argv;
  context["command"] = joined;
  context["config"] = axes.to_json();

  bool progress = o.progress || (!o.quiet && stderr_is_terminal());
  ProgressMeter meter("bsattn bench:", progress);
  bench::BenchRunOptions ro;
  ro.meter = &meter;
  ro.timing = o.timing;
  ro.seed = o.seed;
  ro.save_masks_dir = o.save_masks;
  if (progress) ro.progress = [&meter](const std::string& line) { meter.message(line); };
  // Patterns that select from Q/K take synthetic ones (--synthetic); on the GPU their selection is
  // the timed mask build.
  auto make_mask = [&o, use_cuda](const bench::BenchConfig& c, uint64_t seed) {
    if (c.cu_seqlens.empty()) return adaptive::bench_mask(c, seed, o.synthetic, use_cuda);
    return build_varlen_mask(c.cu_seqlens, [&](int64_t, int64_t len) {  // each sequence's own mask
      bench::BenchConfig one = c;
      one.cu_seqlens.clear();
      one.shape.batch = 1;
      one.shape.q_len = one.shape.kv_len = len;
      return adaptive::bench_mask(one, seed, o.synthetic, use_cuda);
    });
  };
  bench::BenchDoc doc;
  if (dilated) {
    dilated::DilatedBenchOptions dro;
    dro.timing = o.timing;
    dro.seed = o.seed;
    dro.progress = ro.progress;
    doc = dilated::run_dilated_bench(dplan, *backend, dro, context);
  } else {
    doc = bench::run_bench(plan, *backend, make_mask, ro, context);
  }
  meter.finish();
  if (doc.records.empty())
    throw UsageError("no configuration could run: " + doc.skipped.front()["reason"].get<std::string>());

  std::string json_text = bench::to_json(doc).dump(1) + "\n";
  if (!o.json_out.empty()) write_text_file(o.json_out, json_text);
  if (!o.csv_out.empty()) write_text_file(o.csv_out, bench::to_csv(doc));
  std::string table = bench::to_markdown(doc);
  write_markdown(o.md_out, doc, table);
  outputs.commit();
  bool stdout_taken = o.json_out == "-" || o.csv_out == "-" || o.md_out == "-";
  if (o.quiet || stdout_taken) return;

  auto& cx = doc.context;
  std::printf("bsattn bench: backend %s%s%s, seed %llu, commit %s%s\n", backend->name().c_str(),
              backend->kernel().empty() ? "" : " kernel ", backend->kernel().c_str(), (unsigned long long)o.seed,
              cx.value("commit", std::string("?")).c_str(), cx["dirty"] == true ? " (dirty)" : "");
  if (cx.contains("gpu"))
    std::printf("device: %s, %d SMs\n", cx["gpu"].get<std::string>().c_str(), cx["sms"].get<int>());
  if (cx["ceilings"].is_object())
    std::printf("ceilings (measured now): bf16 GEMM %.1f TFLOP/s, device copy %.0f GB/s\n",
                cx["ceilings"]["gemm_bf16_tflops"].get<double>(), cx["ceilings"]["d2d_copy_gbs"].get<double>());
  std::printf("\n%s", table.c_str());
  int noisy = 0;
  for (auto& r : doc.records) noisy += r["noise_met"] == false;
  std::printf("\ntime: median over samples (L2 flushed on the GPU); noise = stddev/mean%s. eff. TFLOP/s counts computed "
              "pairs only; dense-eq. counts the dense (causal) pairs.\n",
              noisy ? ("; '!' marks " + std::to_string(noisy) + " configurations over the noise target").c_str() : "");
  if (dilated)
    std::printf("dilated: %s\n", use_cuda ? "the branches' kernels summed (CUDA events, L2 flushed); the host-side "
                                            "permutations and merge are not timed"
                                          : "the whole computation on the host clock (order, permutations, branches, merge)");
  else if (!doc.records.empty() && doc.records.front()["mask_build_kind"] == "cpu_generate_mask")
    std::printf("mask build: CPU pattern generation time as a share of the attention time.\n");
  else if (!doc.records.empty())
    std::printf("mask build: the GPU row-CSR build from the bitmap (gpu_row_csr; 'none' for dense/streaming heads), "
                "timed like the attention, as a share of it; CPU pattern generation: mask_generate_ms in --json/--csv.\n");
  if (!doc.skipped.empty()) {
    std::printf("skipped %zu configurations:\n", doc.skipped.size());
    size_t shown = 0;
    for (auto& s : doc.skipped) {
      if (++shown > 8) {
        std::printf("  ... (all of them in --json)\n");
        break;
      }
      std::printf("  %s S=%lld D=%lld: %s\n", s["pattern"].get<std::string>().c_str(), (long long)s["seq"].get<int64_t>(),
                  (long long)s["head_dim"].get<int64_t>(), s["reason"].get<std::string>().c_str());
    }
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "Time sparse attention over a sweep, with ceilings and dense baselines");
  sub->footer(
      "Axes combine as a product; lists are a,b,c or start:stop:step (inclusive). Patterns random, local and\n"
      "causal follow --density (causal: random blocks under the causal rule; local: the window whose density is\n"
      "closest); any other pattern spec is timed once per shape. Combinations a backend cannot run are skipped\n"
      "with a reason. With no axes: a small default sweep (GPU: S=8192 D=128 H=16 block 128; CPU: S=1024 D=64\n"
      "H=4 block 64; densities 0.1,0.25,0.5,1; patterns random,local,causal).\n"
      "Examples:\n"
      "  bsattn bench\n"
      "  bsattn bench --seq 8192,32768 --head-dim 64,128 --density 0.05:0.5:0.05 --pattern random,local,causal --json r.json\n"
      "  bsattn bench --config sweep.json --csv r.csv --save-masks masks/   (then scripts/peers.py)");
  const char* gs = "Sweep";
  // `name`: the axis (lib/bench/sweep.h), `alias` another option name for it; `group` "" hides it.
  auto axis = [&](const std::string& name, const std::string& help, const std::string& alias = "",
                  const char* group = "Sweep") {
    sub->add_option_function<std::string>(
           "--" + name + (alias.empty() ? "" : ",--" + alias), [o, name](const std::string& v) { o->axes[name] = v; },
           help)
        ->group(group)
        ->type_name("LIST");
  };
  axis("seq", "Sequence lengths (q_len = kv_len)");
  axis("head-dim", "Head dims");
  axis("dim", "Head dims (the older name of --head-dim)", "", "");
  axis("heads", "Query heads");
  axis("kv-heads", "KV heads (one value; 0 = --heads)");
  axis("heads-kv", "KV heads (the older name of --kv-heads)", "", "");
  axis("batch", "Batch sizes");
  sub->add_option("--seqlens", o->varlen.seqlens, "Varlen: one packed batch of these sequence lengths (e.g. 1000,517,3000) "
                  "instead of --seq and --batch; each sequence gets its own mask")->group(gs);
  add_nsa_options(*sub, o->nsa, false, gs);
  sub->add_option("--cu-seqlens", o->varlen.cu_seqlens, "Varlen: the offsets .npy (1-D int32 [0, L1, L1+L2, ...]) instead of --seqlens")->group(gs);
  axis("density", "Block densities in (0,1], list or start:stop:step");
  axis("pattern", "Patterns: random, local, causal, dense, or specs separated by ';'");
  axis("dtype", "Element types: bf16, f16, f32");
  add_block_options(*sub, o->blocks, gs, "64 on the CPU, 128 on a GPU", BlockValues::Sweep);
  axis("score", "Score functions: softmax, silu (HSTU: SiLU(alpha QK^T + rab) / n, n = seq; FLOPs counted as softmax's)");
  axis("rab", "HSTU's relative bias for the silu configurations, one configuration each: none, pos, ts, pos+ts (seeded tables: pos [H, seq], ts [H, 129] with seeded timestamps; docs/hstu.md)");
  sub->add_flag("--gate-u", o->gate_u, "HSTU: u-gating (O * U, a seeded U) in the silu configurations")->group(gs);
  axis("pass", "Passes: fwd, bwd (the backward alone, on the forward's O and LSE), fwd+bwd (or fwdbwd); bwd and fwd+bwd on the cuda backend");
  sub->add_option("--config", o->config_file, "Sweep axes from a JSON file (command-line axes override it)")
      ->group(gs)
      ->check(CLI::ExistingFile);
  sub->add_option("--synthetic", o->synthetic,
                  "Synthetic Q/K (KIND[:params], as analyze's) for patterns that select from Q/K (e.g. --pattern "
                  "energy:pool=4); on a GPU the energy selection runs there and is the timed mask build")
      ->group(gs);
  const char* gdil = "Dilated";
  sub->add_option("--dilated", o->dilated, "Time dilated attention (LongNet) instead of masks: SEGMENT:RATE pairs, e.g. 2048:1,4096:2,8192:4; several configurations separated by ';' (the shape axes still sweep)")->group(gdil);
  sub->add_flag("--causal", o->causal, "--dilated: causal within segments")->group(gdil);
  sub->add_option("--order", o->orders, "--dilated: token orders applied before the segments are cut, compared side by side: standard (as given), raster, snake, hilbert, gilbert, ... (needs --grid)")->group(gdil);
  sub->add_option("--grid", o->grid, "--dilated: the grid of the orders, TxHxW or HxW (text + grid = seq)")->group(gdil);
  sub->add_option("--text", o->text, "--dilated: text tokens before the grid (kept in place)")->check(CLI::Range(int64_t(0), int64_t(1) << 40))->group(gdil);
  sub->add_option("--seed", o->seed, "Seed for masks and inputs (recorded in every output)")->group(gs)->check(seed_check())->capture_default_str();
  const char* gring = "Ring";
  sub->add_option("--ranks", o->ranks, "Ring attention's scaling over these rank counts, e.g. 1,2,4,8 (strong: fixed --seq; weak: --seq per smallest count); its own table (docs/ring.md)")->group(gring);
  sub->add_option("--ring-layout", o->ring_layout, "--ranks: contiguous or zigzag")->check(CLI::IsMember({"contiguous", "zigzag"}))->capture_default_str()->group(gring);
  sub->add_option("--transport", o->transport, "--ranks: loopback (virtual ranks in this process) or nccl (one GPU per rank)")->check(CLI::IsMember({"loopback", "nccl"}))->capture_default_str()->group(gring);
  sub->add_option("--scaling", o->scaling, "--ranks: strong, weak or both")->check(CLI::IsMember({"strong", "weak", "both"}))->capture_default_str()->group(gring);

  const char* gd = "Device";
  sub->add_option("--backend", o->backend, "auto (CUDA when a GPU is present, else CPU), cuda or cpu")
      ->group(gd)
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}))
      ->capture_default_str();
  sub->add_option("--kernel", o->kernel, "CUDA kernel variant (see --list-kernels; default: the fastest)")->group(gd);
  sub->add_flag("--list-kernels", o->list_kernels, "List the CUDA kernel variants and exit")->group(gd);
  sub->add_flag("--no-ceilings", o->no_ceilings, "Skip the cuBLAS GEMM and copy ceilings")->group(gd);
  sub->add_option("--bwd-kernel", o->bwd_kernel, "CUDA backward kernel: sm90 or sm80 (default: sm90 where it runs)")->check(CLI::IsMember({"sm90", "sm80"}))->group(gd);
  sub->add_flag("--deterministic", o->deterministic, "CUDA backward: dQ by its own pass (bit-identical runs) instead of fp32 atomics")->group(gd);
  sub->add_option("--max-ctas", o->max_ctas, "CUDA: the most CTAs the persistent Hopper kernel starts (0: one per SM)")
      ->group(gd)
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  const char* gt = "Timing";
  auto mark = [o](auto) { o->timing_given = true; };
  sub->add_option("--warmup", o->timing.warmup, "Warm-up samples")->group(gt)->capture_default_str()->each(mark);
  sub->add_option("--min-samples", o->timing.min_samples, "Minimum samples")->group(gt)->capture_default_str()->each(mark);
  sub->add_option("--max-samples", o->timing.max_samples, "Maximum samples")->group(gt)->capture_default_str()->each(mark);
  sub->add_option("--noise", o->timing.noise_target, "Stop once stddev/mean is under this")
      ->group(gt)
      ->capture_default_str()
      ->each(mark);
  sub->add_option("--max-time", o->timing.max_time_s,
                  "Seconds of samples per configuration before stopping above the noise target (CPU default 0.3, GPU 0.5)")
      ->group(gt)
      ->each(mark);

  const char* go = "Output";
  sub->add_option("--json", o->json_out, "Write the bsattn.bench/v1 document (- for stdout)")->group(go);
  sub->add_option("--csv", o->csv_out, "Write the records as CSV (- for stdout)")->group(go);
  sub->add_option("--markdown", o->md_out, "Write the Markdown table (a file gets the run's context above it; - for stdout: the table alone)")->group(go);
  sub->add_option("--save-masks", o->save_masks, "Save every mask as DIR/NAME.npy + CSR (for scripts/peers.py)")->group(go);
  sub->add_option("--from", o->from, "Export an existing bsattn.bench/v1 document instead of measuring")
      ->group(go)
      ->check(CLI::ExistingFile);
  sub->add_flag("-q,--quiet", o->quiet, "Print nothing but errors: no table, no progress (unless --progress), no CPU-fallback notice")->group(go);
  sub->add_flag("--progress", o->progress, "One line per configuration with the ETA on stderr even when it is not a terminal (default: on a terminal)")->group(go);

  sub->callback([o, sub]() {
    std::vector<std::string> argv{"bsattn", "bench"};
    for (auto* opt : sub->get_options()) {
      if (opt->count() == 0 || opt->get_name() == "--help") continue;
      auto res = opt->results();
      if (opt->get_type_size() == 0) argv.push_back(opt->get_name());
      else
        for (auto& r : res) argv.push_back(opt->get_name()), argv.push_back(r);
    }
    run_bench_command(*o, argv);
  });
}

}  // namespace bsattn::app
