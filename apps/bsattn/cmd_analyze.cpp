// bsattn analyze: how much of dense attention a mask keeps on given or synthetic Q/K/V (per-head
// recall and output error), --check / --check-grads to validate another library's outputs against the
// CPU reference, --sweep for the recall/error vs density frontier, and --curves (curve locality).
#include <cmath>
#include <cstdio>
#include <iostream>

#include "apps/bsattn/analyze_curves.h"
#include "lib/build_info.h"
#include "apps/bsattn/attention_inputs.h"
#include "apps/bsattn/nsa_cli.h"
#include "apps/bsattn/hstu_cli.h"
#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "lib/atomic_file.h"
#include "lib/backend.h"
#include "lib/curves/order.h"
#include "lib/dilated/dilated_quality.h"
#include "lib/error.h"
#include "lib/progress.h"
#include "lib/reference/cpu_attention.h"
#include "lib/quality/frontier.h"
#include "lib/reference/parallel.h"
#include "lib/quality/quality.h"
#include "lib/run/run.h"
#include "lib/tensor/tensor_io.h"
#include "lib/varlen/varlen.h"

namespace bsattn::app {

namespace {

struct AnalyzeOptions {
  MaskCli mask;
  InputCli inputs;
  VarlenCli varlen;
  NsaCli nsa;
  HstuCli hstu;
  std::string backend = "cpu", score = "softmax", kernel;
  double silu_n = 0;
  uint64_t seed = 0;
  std::string check, check_grads, dout;
  double rtol = 0;
  bool sweep = false;
  std::string patterns = "local;random;energy;topk", densities = "0.05,0.1,0.2,0.3,0.5";
  std::string json_out;
  bool quiet = false, progress = false;
  int threads = 0;
  std::shared_ptr<AnalyzeCurvesOptions> curves;
  std::string dilated;
  int64_t sample_rows = 0;  // --dilated: quality over this many rows per head (0: every row)
};

// Default pass/fail bound on the relative L2 error of a checked output: about 2x the error of the
// input precision's rounding (FlashAttention's rule of thumb).
double default_rtol(ElemType t) { return t == ElemType::F32 ? 1e-4 : t == ElemType::F16 ? 5e-3 : 2e-2; }

nlohmann::json context_json(const AnalyzeOptions& o, const Qkv& in) {
  return {{"tool", "bsattn analyze"}, {"version", BSATTN_VERSION}, {"commit", bsattn::build_commit()},
          {"inputs", in.spec}, {"seed", o.seed}, {"score", o.score}, {"causal", o.mask.causal},
          {"threads", resolve_threads(o.threads)}};
}

void print_quality(const QualityReport& r, const BlockMask& m) {
  std::printf("%-5s %-9s %8s %9s %9s %10s %9s\n", "head", "type", "density", "recall", "rec_min", "rel_l2", "cosine");
  for (const auto& h : r.heads)
    std::printf("%-5lld %-9s %8.4f %9.5f %9.5f %10.3e %9.6f\n", (long long)h.head,
                head_type_name(m.heads[size_t(h.head)].type), h.density, h.recall_mean, h.recall_min, h.error.rel_l2,
                h.error.cosine);
  std::printf("summary: density %.4f (kept / visible blocks), pair density %.4f, recall mean %.5f, worst row %.5f, rel_l2 %.3e, rel_l1 %.3e, "
              "rmse %.3e, max_abs %.3e, cosine %.6f\n",
              r.mask.density, r.mask.pair_density(), r.recall_mean, r.recall_min, r.error.rel_l2,
              r.error.rel_l1, r.error.rmse, r.error.max_abs, r.error.cosine);
}

// The check of one tensor: prints a line, returns pass.
bool check_line(const char* what, const ErrorStats& e, double rtol, int64_t heads, int64_t dim, bool quiet,
                nlohmann::json& out) {
  bool pass = e.rel_l2 <= rtol;
  int64_t w = e.worst_index, d = w % dim, h = (w / dim) % heads, row = w / (dim * heads);
  if (!quiet)
    std::printf("check %-3s %s: rel_l2 %.3e (bound %.1e), rel_l1 %.3e, max_abs %.3e at [row %lld, h %lld, d %lld], cosine %.7f\n",
                what, pass ? "PASS" : "FAIL", e.rel_l2, rtol, e.rel_l1, e.max_abs, (long long)row, (long long)h,
                (long long)d, e.cosine);
  out[what] = to_json(e);
  out[what]["pass"] = pass;
  return pass;
}

// --backend cuda: the sparse pass on the fused kernel, the dense one on the GPU dense reference, in
// the inputs' 16-bit type (f16 files stay f16; bf16 files, and float32 values rounded to nearest even,
// run in bf16). Prints the same table as the CPU path.
void run_analyze_cuda(const AnalyzeOptions& o, const Qkv& in, AttentionProblem p, nlohmann::json& result) {
  const ElemType t = in.q.dtype == ElemType::F16 && in.k.dtype == ElemType::F16 && in.v.dtype == ElemType::F16
                         ? ElemType::F16
                         : ElemType::BF16;
  BlockMask m = resolve_mask(parse_mask_cli(o.mask, o.seed), in);
  result["mask"] = m.spec;
  p.dtype = t;
  std::vector<uint16_t> q16 = to_16bit(in.q.data, t), k16 = to_16bit(in.k.data, t), v16 = to_16bit(in.v.data, t);
  GpuQualityOptions go;
  go.kernel = o.kernel;
  GpuQuality gq = gpu_evaluate_mask(p, m, AttentionInputs{q16.data(), k16.data(), v16.data(), nullptr}, go);
  if (gq.report.mask.empty_rows > 0)
    std::fprintf(stderr, "bsattn analyze: warning: %lld mask rows keep no block (their output is 0, LSE = -inf)\n",
                 (long long)gq.report.mask.empty_rows);
  if (!o.quiet) {
    std::printf("backend cuda: %s inputs, sparse pass %s, dense pass %s\n", elem_type_name(t), gq.kernel.c_str(),
                gq.dense_path.c_str());
    print_quality(gq.report, m);
  }
  result["context"]["backend"] = {{"name", "cuda"}, {"dtype", elem_type_name(t)}, {"kernel", gq.kernel},
                                  {"dense_path", gq.dense_path}};
  result["quality"] = to_json(gq.report);
  if (!o.json_out.empty()) write_text_file(o.json_out, result.dump(1) + "\n");
}

// analyze --nsa: NSA's output (and each branch) against dense causal attention (lib/nsa/nsa.h).
void analyze_nsa(const AnalyzeOptions& o, const AttentionProblem& p, const Qkv& in, nlohmann::json& result) {
  const NsaParams np = nsa_params(o.nsa);
  const std::vector<float> gates = nsa_gates(o.nsa, p.total_q(), p.heads_q);
  NsaQuality r = nsa_quality(p, in.q.data.data(), in.k.data.data(), in.v.data.data(), np,
                             gates.empty() ? nullptr : gates.data(), o.threads);
  if (!o.quiet) {
    std::printf("nsa against dense causal attention (cpu float32)\n%-5s %10s %9s %10s %10s %10s\n", "head", "rel_l2",
                "cosine", "cmp_l2", "slc_l2", "win_l2");
    for (size_t h = 0; h < r.out.heads.size(); ++h)
      std::printf("%-5zu %10.3e %9.6f %10.3e %10.3e %10.3e\n", h, r.out.heads[h].rel_l2, r.out.heads[h].cosine,
                  r.cmp.heads[h].rel_l2, r.slc.heads[h].rel_l2, r.win.heads[h].rel_l2);
    std::printf("summary: nsa rel_l2 %.3e, cosine %.6f, max_abs %.3e; branches alone rel_l2: compressed %.3e, selected "
                "%.3e, window %.3e; %lld compressed blocks; pair density: selected %.4f, window %.4f\n",
                r.out.overall.rel_l2, r.out.overall.cosine, r.out.overall.max_abs, r.cmp.overall.rel_l2,
                r.slc.overall.rel_l2, r.win.overall.rel_l2, (long long)r.compressed_blocks,
                r.select_stats.pair_density(), r.window_stats.pair_density());
  }
  result["nsa"] = np.to_json();
  result["quality"] = to_json(r);
  if (p.varlen()) result["cu_seqlens"] = p.cu_seqlens_q;
  if (!o.json_out.empty()) write_text_file(o.json_out, result.dump(1) + "\n");
}

// analyze --score silu with HSTU's bias / u-gating: the masked HSTU output against the one with every
// visible block kept (lib/hstu/hstu.h).
void analyze_hstu(const AnalyzeOptions& o, const AttentionProblem& p, const Qkv& in, const std::vector<int32_t>& cu,
                  nlohmann::json& result) {
  HstuBias bias = load_hstu_bias(o.hstu, p.total_q(), p.heads_q, p.q_len, p.kv_len);
  std::vector<float> u;
  if (!o.hstu.gate_u.empty()) {
    Tensor ut = load_tensor(o.hstu.gate_u, "--gate-u", in.layout, "auto");
    if (ut.batch != in.q.batch || ut.seq != in.q.seq || ut.heads != in.q.heads || ut.dim != in.q.dim)
      throw UsageError("--gate-u " + o.hstu.gate_u + ": U must have the shape of O (that of Q)");
    u = std::move(ut.data);
  }
  BlockMask m = cu.empty() ? resolve_mask(parse_mask_cli(o.mask, o.seed), in)
                           : resolve_varlen_mask(parse_mask_cli(o.mask, o.seed), in, cu);
  const MaskStats st = cu.empty() ? mask_stats(m) : varlen_mask_stats(m, cu);
  const bool cuda = o.backend == "cuda";
  std::string where = "cpu float32";
  ErrorReport e;
  if (cuda) {  // the inputs' 16-bit values (U rounded to the same type), the bias computed in the kernel
    const ElemType t = cuda_input_type(in);
    AttentionProblem p16 = p;
    p16.dtype = t;
    const std::vector<uint16_t> q16 = to_16bit(in.q.data, t), k16 = to_16bit(in.k.data, t), v16 = to_16bit(in.v.data, t);
    const std::vector<uint16_t> u16 = u.empty() ? std::vector<uint16_t>{} : to_16bit(u, t);
    AttentionOptions opt;
    opt.kernel = o.kernel;
    e = hstu_quality_cuda(p16, m, q16.data(), k16.data(), v16.data(), bias, u16.empty() ? nullptr : u16.data(), opt);
    where = std::string("cuda ") + elem_type_name(t);
  } else {
    e = hstu_quality(p, m, in.q.data.data(), in.k.data.data(), in.v.data.data(), bias, u.empty() ? nullptr : u.data(),
                     o.threads);
  }
  if (!o.quiet) {
    std::printf("hstu (silu, n=%g) with the mask against every visible block kept (%s)\n%-5s %10s %9s\n",
                p.silu_n, where.c_str(), "head", "rel_l2", "cosine");
    for (size_t h = 0; h < e.heads.size(); ++h)
      std::printf("%-5zu %10.3e %9.6f\n", h, e.heads[h].rel_l2, e.heads[h].cosine);
    std::printf("summary: density %.4f, pair density %.4f, rel_l2 %.3e, cosine %.6f, max_abs %.3e\n", st.density,
                st.pair_density(), e.overall.rel_l2, e.overall.cosine, e.overall.max_abs);
  }
  result["mask"] = m.spec;
  result["hstu"] = {{"rab_pos", o.hstu.rab_pos}, {"rab_ts", o.hstu.rab_ts}, {"timestamps", o.hstu.timestamps},
                    {"rab", o.hstu.rab}, {"gate_u", o.hstu.gate_u}, {"silu_n", p.silu_n}};
  nlohmann::json heads = nlohmann::json::array();
  for (auto& h : e.heads) heads.push_back(to_json(h));
  result["context"]["backend"] = where;
  result["quality"] = {{"reference", "the same HSTU attention with every visible block kept"},
                       {"mask", to_json(st)}, {"error", to_json(e.overall)}, {"heads", heads}};
  if (!cu.empty()) result["cu_seqlens"] = cu;
  if (!o.json_out.empty()) write_text_file(o.json_out, result.dump(1) + "\n");
}

// --dilated: LongNet dilated attention against dense attention, once per token order (--order with
// --grid: a curve applied before the segments are cut; "standard" is the sequence as given).
void run_analyze_dilated(const AnalyzeOptions& o) {
  if (!o.mask.mask.empty()) throw UsageError("give either MASK or --dilated, not both");
  if (o.backend != "cpu") throw UsageError("analyze --dilated runs on the CPU reference (drop --backend cuda)");
  if (o.sweep || !o.check.empty() || !o.check_grads.empty())
    throw UsageError("--dilated cannot be combined with --sweep or --check");
  if (o.score != "softmax") throw UsageError("--dilated merges branches by their softmax denominators: it needs --score softmax");
  const dilated::DilatedSpec spec = dilated::parse_dilated(o.dilated, o.mask.causal);
  const CurveOrderSelection sel = curve_order_selection(*o.curves);
  const BlockSizes blocks = resolve_block_sizes(o.mask.blocks, kDefaultBlockSize);
  std::vector<std::string> orders{"standard"};
  curves::SequenceLayout lay;
  if (!sel.orders.empty()) {
    if (sel.grid.empty()) throw UsageError("--order with --dilated needs --grid TxHxW (or HxW)");
    lay.grid = curves::parse_grid(sel.grid, "--grid");
    lay.text = sel.text.empty() ? 0 : parse_int(sel.text, "--text");
    if (lay.text < 0) throw UsageError("--text must be >= 0");
    lay.text_at_head = sel.text_position != "tail";
    orders = curves::split_order_list(sel.orders, "--order");
    for (auto& name : orders)  // every spec checked first; "standard" is the sequence as given
      if (name != "standard") curves::parse_order(name, lay.grid, blocks.q, "--order");
  }
  Qkv in = load_inputs(o.inputs, true, o.seed);
  if (!sel.orders.empty() && lay.length() != in.q.seq)
    throw UsageError("--grid: text + grid = " + std::to_string(lay.length()) + " tokens but Q has " + std::to_string(in.q.seq));
  AttentionProblem p = problem_for(in.q, in.k);
  dilated::DilatedOptions dopt;
  dopt.block_q = blocks.q;
  dopt.block_kv = blocks.kv;
  dopt.threads = o.threads;
  nlohmann::json result = {{"schema", "bsattn.analyze/v1"}, {"context", context_json(o, in)}, {"dilated", spec.to_json()}};
  if (!sel.orders.empty()) result["layout"] = lay.to_json();
  if (!o.quiet)
    std::printf("dilated %s%s: %lld of %lld pairs computed\n%-22s %9s %9s %9s %10s %9s %10s\n", spec.str().c_str(),
                spec.causal ? " causal" : "", (long long)dilated::dilated_pairs(p, spec),
                (long long)(p.batch * p.heads_q * (spec.causal ? p.q_len * (p.q_len + 1) / 2 : p.q_len * p.q_len)),
                "order", "coverage", "recall", "rec_min", "rel_l2", "cosine", "uncovered");
  nlohmann::json records = nlohmann::json::array();
  for (const std::string& name : orders) {
    Qkv x = in;
    if (name != "standard") reorder_tokens(x, curves::sequence_order(curves::parse_order(name, lay.grid, blocks.q, "--order"), lay));
    dilated::DilatedQuality q =
        o.sample_rows > 0
            ? dilated::evaluate_dilated_rows(p, spec, x.q.data.data(), x.k.data.data(), x.v.data.data(), o.sample_rows, o.threads)
            : dilated::evaluate_dilated(p, spec, x.q.data.data(), x.k.data.data(), x.v.data.data(), dopt);
    if (!o.quiet)
      std::printf("%-22s %9.4f %9.5f %9.5f %10.3e %9.6f %10lld\n", name.c_str(), q.coverage(), q.recall_mean,
                  q.recall_min, q.error.rel_l2, q.error.cosine, (long long)q.uncovered_rows);
    nlohmann::json rec = to_json(q);
    rec["order"] = name;
    records.push_back(rec);
  }
  result["orders"] = records;
  if (!o.json_out.empty()) write_text_file(o.json_out, result.dump(1) + "\n");
}

void run_analyze(const AnalyzeOptions& o) {
  if (!o.dilated.empty()) return run_analyze_dilated(o);
  if (o.sample_rows > 0) throw UsageError("--sample-rows goes with --dilated (allowed: analyze --dilated SPEC --sample-rows N)");
  const bool cuda = o.backend == "cuda";
  nsa_params(o.nsa);  // the spec and files checked first (and --nsa-* without --nsa refused)
  if (o.nsa.requested() && (cuda || o.sweep || !o.check.empty() || !o.check_grads.empty() || o.score != "softmax" ||
                            !o.mask.mask.empty()))
    throw UsageError("--nsa: analyze compares NSA with dense attention on the CPU, softmax, without MASK, --sweep, "
                     "--check or --backend cuda");
  const bool hstu = o.hstu.requested();
  if (hstu && (o.sweep || !o.check.empty() || !o.check_grads.empty() || o.score != "silu"))
    throw UsageError("--rab-pos/--rab-ts/--rab/--gate-u: analyze compares HSTU attention (--score silu) under MASK with "
                     "every block kept, without --sweep or --check");
  if (cuda && !hstu) {
    if (o.sweep) throw UsageError("--sweep runs on the CPU reference; drop --backend cuda");
    if (!o.check.empty() || !o.check_grads.empty())
      throw UsageError("--check/--check-grads compare against the float64 CPU reference; drop --backend cuda");
    if (o.score != "softmax")
      throw UsageError("--backend cuda: analyze computes recall from the softmax log-sum-exp; for --score silu use --backend cpu");
  } else if (!cuda && !o.kernel.empty()) {
    throw UsageError("--kernel selects a CUDA kernel variant; it needs --backend cuda");
  }
  InputCli inputs = o.inputs;
  const std::vector<int32_t> cu = resolve_varlen(o.varlen, inputs);
  if (!cu.empty() && ((cuda && !hstu) || o.sweep))
    throw UsageError(std::string(cuda ? "--backend cuda" : "--sweep") + " takes fixed-length inputs; with --seqlens/--cu-seqlens "
                     "analyze runs on the CPU reference without --sweep");
  Qkv in = load_inputs(inputs, true, o.seed);
  if (!cu.empty()) check_packed(in.q, cu, "the offsets (--seqlens/--cu-seqlens)"), check_packed(in.k, cu, "the offsets (--seqlens/--cu-seqlens)");
  AttentionProblem p = cu.empty() ? problem_for(in.q, in.k) : varlen_problem(in.q, in.k, cu);
  if (o.score == "silu") {
    p.score = ScoreFn::Silu;
    p.silu_n = o.silu_n > 0 ? o.silu_n : double(p.kv_len);
  }
  const float *q = in.q.data.data(), *k = in.k.data.data(), *v = in.v.data.data();
  nlohmann::json result = {{"schema", "bsattn.analyze/v1"}, {"context", context_json(o, in)}};
  if (o.nsa.requested()) return analyze_nsa(o, p, in, result);
  if (o.hstu.requested()) return analyze_hstu(o, p, in, cu, result);
  if (cuda) return run_analyze_cuda(o, in, p, result);

  if (o.sweep) {
    if (!o.check.empty() || !o.check_grads.empty()) throw UsageError("--sweep cannot be combined with --check");
    auto specs = split_list(o.patterns, "--patterns", "local;random;energy", ';');
    auto dens = parse_float_axis(o.densities, "--densities", "0.1,0.5");
    const BlockSizes blocks = resolve_block_sizes(o.mask.blocks, kDefaultBlockSize);
    PatternInputs pi = pattern_inputs(in);
    MaskMaker make = [&](const std::string& spec) {
      MaskRequest req;
      req.shape.block_q = blocks.q;
      req.shape.block_kv = blocks.kv;
      req.causal = o.mask.causal;
      req.seed = o.seed;
      req.pattern = parse_pattern(spec, "--patterns");
      return generate_mask(request_for_inputs(req, in, &pi));
    };
    if (!o.quiet) std::printf("%-34s %8s %8s %9s %9s %10s %9s\n", "spec", "target", "density", "recall", "rec_min", "rel_l2", "cosine");
    std::fflush(stdout);
    // The dense reference pass (row blocks), then one unit per record.
    const bool show = o.progress || (!o.quiet && stderr_is_terminal());
    ProgressMeter dense_meter("bsattn analyze --sweep: dense reference", show);
    ProgressMeter meter("bsattn analyze --sweep:", show);
    auto recs = run_frontier(p, q, k, v, specs, dens, make, o.threads, [&](const FrontierRecord& r) {
      if (!meter.started()) meter.add_work(int64_t(specs.size() * dens.size()));
      meter.clear();
      if (!o.quiet)
        std::printf("%-34s %8.3f %8.4f %9.5f %9.5f %10.3e %9.6f\n", r.spec.c_str(), r.target_density,
                    r.quality.mask.density, r.quality.recall_mean, r.quality.recall_min, r.quality.error.rel_l2,
                    r.quality.error.cosine);
      std::fflush(stdout);
      meter.step();
    }, &dense_meter);
    meter.finish();
    nlohmann::json ctx = context_json(o, in);
    ctx["block_q"] = blocks.q;
    ctx["block_kv"] = blocks.kv;
    ctx["patterns"] = specs;
    ctx["densities"] = dens;
    if (!o.json_out.empty()) write_text_file(o.json_out, frontier_json(ctx, recs).dump(1) + "\n");
    return;
  }

  BlockMask m = cu.empty() ? resolve_mask(parse_mask_cli(o.mask, o.seed), in)
                           : resolve_varlen_mask(parse_mask_cli(o.mask, o.seed), in, cu);
  result["mask"] = m.spec;
  QualityReport rep = evaluate_mask(p, m, q, k, v, nullptr, o.threads);
  if (!cu.empty()) {  // blocks and pairs counted within each sequence
    rep.mask = varlen_mask_stats(m, cu);
    for (auto& h : rep.heads) h.density = rep.mask.heads[size_t(h.head)].density;
    result["cu_seqlens"] = cu;
  }
  if (rep.mask.empty_rows > 0)
    std::fprintf(stderr, "bsattn analyze: warning: %lld mask rows keep no block (their output is 0, LSE = -inf)\n",
                 (long long)rep.mask.empty_rows);
  if (!o.quiet) print_quality(rep, m);
  result["quality"] = to_json(rep);

  bool pass = true;
  if (!o.check.empty() || !o.check_grads.empty()) {
    AttentionInputs ai{q, k, v, nullptr};
    p.dtype = ElemType::F32;
    auto ref = cpu_forward<double>(p, m, ai, CpuAttentionOptions{o.threads});
    std::vector<float> ref_out(ref.out.begin(), ref.out.end());
    double rtol = o.rtol > 0 ? o.rtol : default_rtol(in.q.dtype);
    nlohmann::json checks;
    auto load_like = [&](const std::string& path, const char* what, const Tensor& like,
                         const std::string& dtype = "auto") {
      Tensor t = load_tensor(path, what, in.layout, dtype);
      if (t.batch != like.batch || t.seq != like.seq || t.heads != like.heads || t.dim != like.dim)
        throw UsageError(std::string(what) + " " + path + ": shape does not match (expected B=" + std::to_string(like.batch) +
                         " S=" + std::to_string(like.seq) + " H=" + std::to_string(like.heads) + " D=" + std::to_string(like.dim) + ")");
      return t;
    };
    if (!o.check.empty()) {
      Tensor got = load_like(o.check, "--check", in.q);
      auto e = compare_tensors(got.data.data(), ref_out.data(), p.total_q(), p.heads_q, p.head_dim);
      pass &= check_line("O", e.overall, rtol, p.heads_q, p.head_dim, o.quiet, checks);
    }
    if (!o.check_grads.empty()) {
      auto files = split_list(o.check_grads, "--check-grads", "dq.npy,dk.npy,dv.npy");
      if (files.size() != 3) throw UsageError("--check-grads takes three files DQ,DK,DV");
      if (o.dout.empty()) throw UsageError("--check-grads needs --do (the output gradient the grads were computed from)");
      // dO is an input like Q/K/V: the same --dtype (as `run --do` reads it).
      Tensor d_o = load_like(o.dout, "--do", in.q, o.inputs.src.dtype);
      auto g = cpu_backward<double>(p, m, ai, ref, d_o.data.data(), CpuAttentionOptions{o.threads});
      const char* names[3] = {"dQ", "dK", "dV"};
      const std::vector<double>* want[3] = {&g.dq, &g.dk, &g.dv};
      const Tensor* like[3] = {&in.q, &in.k, &in.v};
      for (int t = 0; t < 3; ++t) {
        Tensor got = load_like(files[size_t(t)], names[t], *like[t]);
        std::vector<float> w(want[t]->begin(), want[t]->end());
        auto e = compare_tensors(got.data.data(), w.data(), like[t]->batch * like[t]->seq, like[t]->heads, like[t]->dim);
        pass &= check_line(names[t], e.overall, rtol, like[t]->heads, like[t]->dim, o.quiet, checks);
      }
    }
    checks["rtol"] = rtol;
    checks["pass"] = pass;
    result["check"] = checks;
  }
  if (!o.json_out.empty()) write_text_file(o.json_out, result.dump(1) + "\n");
  if (!pass) throw RuntimeFailure("check failed: the output differs from the CPU reference beyond the bound (see above)");
}

}  // namespace

void register_analyze(CLI::App& app) {
  auto o = std::make_shared<AnalyzeOptions>();
  auto* sub = app.add_subcommand(
      "analyze", "How much of dense attention a mask keeps (recall, output error); --check other kernels' outputs; "
                 "--sweep the density frontier; --curves: curve locality");
  sub->add_option("mask", o->mask.mask, "Mask file (.npy / .json / CSR prefix) or a pattern spec NAME[:k=v,...]")->group("Mask");
  add_mask_size_options(*sub, o->mask, "Mask");
  sub->add_option("--dilated", o->dilated, "Dilated attention (LongNet) instead of a mask: SEGMENT:RATE pairs, e.g. 512:1,1024:2,2048:4 (as run --dilated); with --grid and --order, once per token order applied before the segments are cut")->group("Mask");
  sub->add_option("--sample-rows", o->sample_rows, "--dilated: measure recall and error on N query rows per head, evenly spaced, in float64 from the definition (for sequences too long for the full dense pass; 0: every row)")->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str()->group("Mask");
  add_input_options(*sub, o->inputs, true, true, "Input");
  add_varlen_options(*sub, o->varlen, "Input");
  add_nsa_options(*sub, o->nsa, true, "Mask");
  add_hstu_options(*sub, o->hstu, "HSTU");
  sub->add_option("--seed", o->seed, "Seed for synthetic inputs and random patterns (recorded in the output)")->check(seed_check())->capture_default_str()->group("Input");
  sub->add_option("--score", o->score, "Score function")->check(CLI::IsMember({"softmax", "silu"}))->capture_default_str()->group("Input");
  sub->add_option("--silu-n", o->silu_n, "SiLU: the divisor n (0: kv_len)")->check(finite_range(0.0, 1e12))->capture_default_str()->group("Input");
  sub->add_option("--backend", o->backend, "cpu: the exact CPU reference (f32 on the input values); cuda: the fused kernel against the GPU dense reference in bf16/f16 (softmax; no --sweep/--check), or with HSTU's --rab-*/--gate-u both HSTU passes on the kernels")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str()->group("Device");
  sub->add_option("--kernel", o->kernel, "--backend cuda: the forward kernel variant of the sparse pass (default: the fastest for the problem)")->group("Device");
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096))->capture_default_str()->group("Device");
  sub->add_option("--check", o->check, "Output O (.npy, the layout of --q) of another kernel on the same inputs and mask: pass/fail")->group("Check");
  sub->add_option("--check-grads", o->check_grads, "DQ,DK,DV .npy files to check (needs --do)")->group("Check");
  sub->add_option("--do", o->dout, "Output gradient dO (.npy, shape of Q, read with --dtype like Q/K/V) the checked gradients come from")->group("Check");
  sub->add_option("--rtol", o->rtol, "Pass bound on relative L2 error (0: 1e-4 f32, 5e-3 f16, 2e-2 bf16 inputs)")->check(finite_range(0.0, 1.0))->capture_default_str()->group("Check");
  sub->add_flag("--sweep", o->sweep, "Sweep patterns over densities on the same inputs (frontier JSON with --json)")->group("Sweep");
  sub->add_option("--patterns", o->patterns, "Sweep: ';'-separated pattern specs (sweepable: local, random, streaming, energy, topk, xattn, vslash)")->capture_default_str()->group("Sweep");
  sub->add_option("--densities", o->densities, "Sweep: target densities, list or start:stop:step")->capture_default_str()->group("Sweep");
  sub->add_option("--json", o->json_out, "Write the results as JSON to FILE ('-' for stdout); with --sweep the frontier (bsattn.frontier/v1)")->group("Output");
  sub->add_flag("-q,--quiet", o->quiet, "Print no table (and no progress unless --progress)")->group("Output");
  sub->add_flag("--progress", o->progress, "--sweep: progress with ETA on stderr even when it is not a terminal (default: on a terminal)")->group("Output");
  o->curves = add_analyze_curves_options(*sub);
  sub->callback([o]() {
    if (analyze_curves_requested(*o->curves)) return run_analyze_curves(*o->curves);
    // Every output is checked before any work and written at the end (all or none).
    OutputSet outputs;
    outputs.add(o->json_out, "--json");
    run_analyze(*o);
    outputs.commit();
  });
}

}  // namespace bsattn::app
