// bsattn run: block-sparse attention on given Q/K/V and a mask (file or pattern spec): writes O, LSE
// and, with --do, the gradients (dQ, dK, dV), as .npy. CUDA when available, else the CPU reference.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "apps/bsattn/attention_inputs.h"
#include "lib/build_info.h"
#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "lib/atomic_file.h"
#include "lib/backend.h"
#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/mask_stats.h"
#include "lib/reference/cpu_attention.h"
#include "lib/reference/cpu_ceiling.h"
#include "lib/reference/parallel.h"


namespace bsattn::app {

namespace {

using curves::SequenceLayout;
using curves::parse_grid;
using curves::parse_order;
using curves::sequence_order;
using curves::apply_token_order;
using curves::unapply_token_order;

struct RunOptions {
  MaskCli mask;
  InputCli inputs;
  std::string dout;
  std::string out, lse, dq, dk, dv, json_out;
  std::string backend = "auto", score = "softmax", kernel;
  int max_ctas = 0;
  double scale = 0, silu_n = 0;
  bool f64 = false, quiet = false, time = false, deterministic = false;
  int threads = 0;
  uint64_t seed = 0;
  std::string reorder, grid;
  int64_t text = 0;
};

// The element type the CUDA backend gets: Q, K and V must share one 16-bit type (bf16 / f16 files,
// or float32 files rounded by --dtype bf16 / f16).
ElemType cuda_input_type(const Qkv& in) {
  ElemType t = in.q.dtype;
  if (t == ElemType::F32)
    throw UsageError(in.q.name + " holds float32: the CUDA backend takes bf16 or f16 inputs (allowed: --dtype bf16 or "
                     "--dtype f16, which round float32 files to nearest even, or --backend cpu)");
  for (const Tensor* x : {&in.k, &in.v})
    if (x->dtype != t)
      throw UsageError(std::string("the CUDA backend takes Q, K and V of one element type, but ") + in.q.name + " is " +
                       elem_type_name(t) + " and " + x->name + " is " + elem_type_name(x->dtype) +
                       " (give --dtype bf16 or f16 for all, or --backend cpu)");
  return t;
}

void run_run(const RunOptions& o) {
  if (o.out.empty()) throw UsageError("--out O.npy is required");
  bool grads = !o.dout.empty();
  if (grads && (o.dq.empty() || o.dk.empty() || o.dv.empty()))
    throw UsageError("--do needs --dq, --dk and --dv output files");
  if (!grads && (!o.dq.empty() || !o.dk.empty() || !o.dv.empty())) throw UsageError("--dq/--dk/--dv need --do");
  // Every output is checked before any work, and they are written together at the end (all or none).
  OutputSet outputs;
  outputs.add(o.out, "--out");
  outputs.add(o.lse, "--lse");
  outputs.add(o.dq, "--dq");
  outputs.add(o.dk, "--dk");
  outputs.add(o.dv, "--dv");
  outputs.add(o.json_out, "--json");
  Backend backend = Backend::Cpu;
  if (o.backend == "cuda" || (o.backend == "auto" && gpu_available())) backend = Backend::Cuda;
  // Usage errors first (inputs, element types, mask, sizes); whether a GPU is there is checked last,
  // right before computing.
  if (backend == Backend::Cuda && o.f64)
    throw UsageError("--f64 is computed by the CPU reference: add --backend cpu");
  if (backend == Backend::Cuda && o.inputs.src.dtype == "f32")
    throw UsageError("--dtype f32: the CUDA backend takes bf16 or f16 inputs (allowed: --dtype bf16, f16, or auto with "
                     "16-bit files; float32 files are rounded to the --dtype); for float32 use --backend cpu");
  if (!o.inputs.src.synthetic.empty()) throw UsageError("run takes Q/K/V files (--q, --k, --v); --synthetic is for analyze");
  if (backend != Backend::Cuda && !o.kernel.empty())
    throw UsageError("--kernel selects a CUDA kernel variant; it needs --backend cuda");
  if (backend != Backend::Cuda && o.max_ctas)
    throw UsageError("--max-ctas caps the CUDA kernel's CTAs; it needs --backend cuda");
  if (o.deterministic && !grads) throw UsageError("--deterministic applies to the gradients; it needs --do");
  if (backend != Backend::Cuda && o.deterministic)
    throw UsageError("--deterministic selects the CUDA backward's dQ pass (the CPU reference always is); it needs "
                     "--backend cuda");

  const MaskSource mask = parse_mask_cli(o.mask, o.seed);
  Qkv in = load_inputs(o.inputs, true, o.seed);
  ElemType cuda_dtype = ElemType::BF16;
  if (backend == Backend::Cuda) cuda_dtype = cuda_input_type(in);
  Tensor d_o;
  if (grads) {
    d_o = load_tensor(o.dout, "--do", in.layout, "auto");
    if (d_o.batch != in.q.batch || d_o.seq != in.q.seq || d_o.heads != in.q.heads || d_o.dim != in.q.dim)
      throw UsageError("--do " + o.dout + ": must have the shape of Q");
  }
  // Reordered sequences: attention runs on the reordered tokens; outputs are returned in the original order.
  std::vector<int64_t> perm;
  if (!o.reorder.empty()) {
    if (o.grid.empty()) throw UsageError("--reorder needs --grid TxHxW (or HxW)");
    SequenceLayout lay;
    lay.grid = parse_grid(o.grid, "--grid");
    lay.text = o.text;
    if (lay.length() != in.q.seq || in.q.seq != in.k.seq)
      throw UsageError("--reorder: text + grid = " + std::to_string(lay.length()) + " tokens but Q has " +
                       std::to_string(in.q.seq) + " and K " + std::to_string(in.k.seq));
    perm = sequence_order(parse_order(o.reorder, lay.grid, mask.request.shape.block_q, "--reorder"), lay);
    reorder_tokens(in, perm);
    if (grads) d_o.data = apply_token_order(d_o.data, d_o.batch, d_o.seq, d_o.heads * d_o.dim, perm);
  } else if (!o.grid.empty() || o.text) {
    throw UsageError("--grid/--text only apply with --reorder");
  }

  BlockMask m = resolve_mask(mask, in, perm.empty() ? nullptr : &perm);
  MaskStats st = mask_stats(m);
  if (st.empty_rows > 0)
    std::fprintf(stderr, "bsattn run: warning: %lld mask rows keep no block (their output is 0, LSE = -inf)\n",
                 (long long)st.empty_rows);
  AttentionProblem p = problem_for(in.q, in.k);
  p.scale = o.scale;
  if (o.score == "silu") {
    p.score = ScoreFn::Silu;
    p.silu_n = o.silu_n > 0 ? o.silu_n : double(in.k.seq);
  }
  AttentionInputs ai{in.q.data.data(), in.k.data.data(), in.v.data.data(), nullptr};
  CpuAttentionOptions copt{o.threads};
  std::vector<float> out, lse, dq, dk, dv;
  if (backend == Backend::Cuda) {
    // The loaded values are exact in cuda_dtype (16-bit files, or float32 files rounded by --dtype):
    // these bit patterns are the files' own, or the nearest-even rounding of the float32 values.
    // attention_forward checks the problem and what the kernel supports (usage errors, on any
    // machine) before it looks for a GPU.
    p.dtype = cuda_dtype;
    std::vector<uint16_t> q16 = to_16bit(in.q.data, cuda_dtype), k16 = to_16bit(in.k.data, cuda_dtype),
                          v16 = to_16bit(in.v.data, cuda_dtype);
    in.q.data = {}, in.k.data = {}, in.v.data = {};
    AttentionOptions run;
    run.backend = Backend::Cuda;
    run.kernel = o.kernel;
    run.max_ctas = o.max_ctas;
    run.deterministic = o.deterministic;
    const AttentionInputs in16{q16.data(), k16.data(), v16.data(), nullptr};
    AttentionResult r = attention_forward(p, m, in16, run);
    if (grads) {
      // The GPU backward on this forward's O and LSE; dO is rounded to the same 16-bit type.
      AttentionGradients g = attention_backward(p, m, in16, r, d_o.data.data(), run);
      dq = std::move(g.dq), dk = std::move(g.dk), dv = std::move(g.dv);
    }
    out = std::move(r.out);
    lse = std::move(r.lse);
  } else if (o.f64) {
    auto f = cpu_forward<double>(p, m, ai, copt);
    out = narrow_to_float32(f.out, "O");
    lse = narrow_to_float32(f.lse, "LSE");
    if (grads) {
      auto g = cpu_backward<double>(p, m, ai, f, d_o.data.data(), copt);
      dq = narrow_to_float32(g.dq, "dQ"), dk = narrow_to_float32(g.dk, "dK"), dv = narrow_to_float32(g.dv, "dV");
    }
  } else {
    auto t0 = std::chrono::steady_clock::now();
    auto f = cpu_forward<float>(p, m, ai, copt);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.time) {
      // One timed forward (conversion of the inputs included); FLOPs = 4 * D * computed pairs.
      int64_t pairs = st.computed_pairs * (m.shape.batch == 1 ? p.batch : 1);
      auto gemm = eigen_gemm_ceiling(m.shape.block_q, m.shape.block_kv, p.head_dim, o.threads);
      std::printf("time: cpu float32 forward %.3f s, %.2f GFLOP/s (4*D*pairs, %lld pairs, %d threads); Eigen GEMM "
                  "%lldx%lldx%lld per thread: %.2f GFLOP/s\n",
                  sec, forward_flops(pairs, p.head_dim) / sec / 1e9, (long long)pairs, resolve_threads(o.threads),
                  (long long)gemm.m, (long long)gemm.k, (long long)gemm.n, gemm.gflops);
    }
    if (grads) {
      auto g = cpu_backward<float>(p, m, ai, f, d_o.data.data(), copt);
      dq = std::move(g.dq), dk = std::move(g.dk), dv = std::move(g.dv);
    }
    out = std::move(f.out);
    lse = std::move(f.lse);
  }
  if (!perm.empty()) {
    auto back = [&](std::vector<float>& x, int64_t batch, int64_t seq, int64_t inner) {
      x = unapply_token_order(x, batch, seq, inner, perm);
    };
    back(out, p.batch, p.q_len, p.heads_q * p.head_dim);
    back(lse, p.batch * p.heads_q, p.q_len, 1);
    if (grads) {
      back(dq, p.batch, p.q_len, p.heads_q * p.head_dim);
      back(dk, p.batch, p.kv_len, p.heads_kv * p.head_dim);
      back(dv, p.batch, p.kv_len, p.heads_kv * p.head_dim);
    }
  }
  save_tensor(o.out, out, p.batch, p.q_len, p.heads_q, p.head_dim, in.layout);
  if (!o.lse.empty()) save_array(o.lse, lse, {p.batch, p.heads_q, p.q_len});
  if (grads) {
    save_tensor(o.dq, dq, p.batch, p.q_len, p.heads_q, p.head_dim, in.layout);
    save_tensor(o.dk, dk, p.batch, p.kv_len, p.heads_kv, p.head_dim, in.layout);
    save_tensor(o.dv, dv, p.batch, p.kv_len, p.heads_kv, p.head_dim, in.layout);
  }
  std::string bname = backend == Backend::Cuda ? std::string("cuda (") + elem_type_name(cuda_dtype) +
                                                      (o.kernel.empty() ? "" : ", kernel " + o.kernel) + ")"
                                                : (o.f64 ? "cpu (float64)" : "cpu (float32)");
  if (!o.quiet)
    std::printf("run: backend %s, B=%lld Sq=%lld Sk=%lld Hq=%lld Hkv=%lld D=%lld, mask density %.4f (%lld computed pairs), "
                "wrote %s%s%s\n",
                bname.c_str(), (long long)p.batch, (long long)p.q_len, (long long)p.kv_len, (long long)p.heads_q,
                (long long)p.heads_kv, (long long)p.head_dim, st.causal_density, (long long)st.computed_pairs,
                o.out.c_str(), o.lse.empty() ? "" : (", " + o.lse).c_str(), grads ? ", dq/dk/dv" : "");
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", bname}, {"inputs", in.spec}, {"mask", m.spec},
                        {"mask_stats", to_json(st)}, {"seed", o.seed}, {"out", o.out}, {"reorder", o.reorder},
                        {"commit", bsattn::build_commit()}};
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "Compute block-sparse attention on Q/K/V files: O, LSE and (with --do) the gradients as .npy");
  sub->add_option("mask", o->mask.mask, "Mask file (.npy / .json / CSR prefix) or a pattern spec NAME[:k=v,...]")->required()->group("Mask");
  add_mask_size_options(*sub, o->mask, "Mask");
  add_input_options(*sub, o->inputs, true, false, "Input");
  sub->add_option("--do", o->dout, "Output gradient dO (.npy, shape of Q): also compute dQ, dK, dV (cuda: dO rounded to the inputs' 16-bit type)")->group("Input");
  sub->add_option("--score", o->score, "Score function")->check(CLI::IsMember({"softmax", "silu"}))->capture_default_str()->group("Input");
  sub->add_option("--scale", o->scale, "Softmax/SiLU scale, finite and > 0 (0: 1/sqrt(D))")->check(scale_check())->capture_default_str()->group("Input");
  sub->add_option("--silu-n", o->silu_n, "SiLU: the divisor n (0: kv_len)")->check(CLI::Range(0.0, 1e12))->capture_default_str()->group("Input");
  sub->add_option("--seed", o->seed, "Seed for random patterns (recorded in --json)")->check(seed_check())->capture_default_str()->group("Input");
  sub->add_option("--reorder", o->reorder, "Token order applied before attention and undone after (raster, snake, morton, hilbert, gilbert, tiles, residue)")->group("Reorder");
  sub->add_option("--grid", o->grid, "Grid of the reordered tokens, TxHxW or HxW")->group("Reorder");
  sub->add_option("--text", o->text, "Text tokens before the grid (kept in place)")->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str()->group("Reorder");
  sub->add_option("--backend", o->backend, "auto: cuda when a GPU is available, else cpu. cuda takes bf16/f16 inputs (--dtype)")->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str()->group("Device");
  sub->add_option("--kernel", o->kernel, "CUDA kernel variant (bsattn bench --list-kernels; default: the default kernel)")->group("Device");
  sub->add_option("--max-ctas", o->max_ctas, "CUDA: the most CTAs the persistent Hopper kernel starts (0: one per SM)")->check(CLI::NonNegativeNumber)->capture_default_str()->group("Device");
  sub->add_flag("--f64", o->f64, "CPU: compute in float64 (outputs are still float32)")->group("Device");
  sub->add_flag("--deterministic", o->deterministic, "CUDA gradients: dQ by its own pass, bit-identical from run to run (instead of fp32 atomics)")->group("Device");
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096))->capture_default_str()->group("Device");
  sub->add_flag("--time", o->time, "CPU float32: print the forward time, its GFLOP/s and Eigen's GEMM GFLOP/s on this machine")->group("Device");
  sub->add_option("-o,--out", o->out, "Output O .npy (layout of --q)")->group("Output");
  sub->add_option("--lse", o->lse, "Output LSE .npy, float32 [B,Hq,Sq] (natural log; -inf for empty rows)")->group("Output");
  sub->add_option("--dq", o->dq, "Output dQ .npy (with --do)")->group("Output");
  sub->add_option("--dk", o->dk, "Output dK .npy (with --do)")->group("Output");
  sub->add_option("--dv", o->dv, "Output dV .npy (with --do)")->group("Output");
  sub->add_option("--json", o->json_out, "Write a summary (inputs, mask spec, seed, statistics) as JSON ('-' for stdout)")->group("Output");
  sub->add_flag("-q,--quiet", o->quiet, "Print nothing on success")->group("Output");
  sub->callback([o]() { run_run(*o); });
}

}  // namespace bsattn::app
