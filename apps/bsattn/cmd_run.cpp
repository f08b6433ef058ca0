// bsattn run: block-sparse attention on given (or synthetic) Q/K/V and a mask (file or pattern spec): writes O, LSE
// and, with --do, the gradients (dQ, dK, dV), as .npy. CUDA when available, else the CPU reference.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "apps/bsattn/attention_inputs.h"
#include "apps/bsattn/nsa_cli.h"
#include "apps/bsattn/hstu_cli.h"
#include "lib/build_info.h"
#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "lib/atomic_file.h"
#include "lib/backend.h"
#include "lib/curves/order.h"
#include "lib/dilated/dilated_run.h"
#include "lib/error.h"
#include "lib/mask_stats.h"
#include "lib/ring/ring_plan.h"
#include "lib/ring/ring_run.h"
#include "lib/run/run.h"
#include "lib/tensor/tensor_io.h"
#include "lib/varlen/varlen.h"


namespace bsattn::app {

namespace {

using curves::SequenceLayout;
using curves::parse_grid;
using curves::parse_order;
using curves::sequence_order;

struct RunOptions {
  MaskCli mask;
  InputCli inputs;
  VarlenCli varlen;
  NsaCli nsa;
  HstuCli hstu;
  std::string dout;
  std::string out, lse, dq, dk, dv, json_out;
  std::string backend = "auto", score = "softmax", kernel, bwd_kernel;
  int max_ctas = 0;
  double scale = 0, silu_n = 0;
  bool f64 = false, quiet = false, time = false, deterministic = false, progress = false;
  int threads = 0;
  int repeat = 5;  // --time: timed forwards, each next to a ceiling round
  uint64_t seed = 0;
  std::string reorder, grid;
  int64_t text = 0;
  std::string dilated;
  // --ranks: ring attention over this many ranks (lib/ring); `ring` is set when --ranks is given,
  // `ring_options` when --ring-layout or --transport is.
  int ranks = 1;
  bool ring = false, ring_options = false;
  std::string ring_layout = "contiguous", transport = "loopback";
};

// run --nsa: NSA's three branches and their gated sum (lib/nsa/nsa.h) instead of one mask.
void run_nsa(const RunOptions& o, Qkv in, const std::vector<int32_t>& cu, Backend backend, OutputSet& outputs) {
  const NsaParams np = nsa_params(o.nsa);
  AttentionProblem p = cu.empty() ? problem_for(in.q, in.k) : varlen_problem(in.q, in.k, cu);
  p.scale = o.scale;
  if (!cu.empty()) check_packed(in.q, cu, "the offsets (--seqlens/--cu-seqlens)");
  const std::vector<float> gates = nsa_gates(o.nsa, p.total_q(), p.heads_q);
  NsaOptions opt;
  opt.backend.backend = backend;
  opt.backend.kernel = o.kernel;
  opt.threads = o.threads;
  if (backend == Backend::Cuda) opt.cuda_dtype = cuda_input_type(in);
  NsaBranches r = nsa_forward(p, in.q.data.data(), in.k.data.data(), in.v.data.data(), np,
                              gates.empty() ? nullptr : gates.data(), opt);
  const bool packed = p.varlen();
  save_tensor(o.out, r.out, packed ? 1 : p.batch, packed ? p.total_q() : p.q_len, p.heads_q, p.head_dim, in.layout, packed);
  const MaskStats ss = packed ? varlen_mask_stats(r.select_mask, cu) : mask_stats(r.select_mask);
  const MaskStats ws = packed ? varlen_mask_stats(r.window_mask, cu) : mask_stats(r.window_mask);
  const std::string bname = backend == Backend::Cuda ? std::string("cuda (") + elem_type_name(opt.cuda_dtype) + ")" : "cpu (float32)";
  if (!o.quiet)
    std::printf("run: nsa on %s (every step on %s), %lld sequence(s), %lld tokens, Hq=%lld Hkv=%lld D=%lld; "
                "%lld compressed blocks; selected: pair density %.4f, window: pair density %.4f; gates %s; wrote %s\n",
                bname.c_str(), backend == Backend::Cuda ? "the GPU" : "the CPU, compressed branch in float64", (long long)p.batch,
                (long long)p.total_q(), (long long)p.heads_q, (long long)p.heads_kv, (long long)p.head_dim,
                (long long)r.compressed_blocks, ss.pair_density(), ws.pair_density(),
                !o.nsa.gates.empty() ? o.nsa.gates.c_str() : !o.nsa.gate_logits.empty() ? "sigmoid(logits)" : "1/3 each",
                o.out.c_str());
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", bname}, {"inputs", in.spec}, {"nsa", np.to_json()},
                        {"select_mask_stats", to_json(ss)}, {"window_mask_stats", to_json(ws)},
                        {"compressed_blocks", r.compressed_blocks}, {"seed", o.seed}, {"cu_seqlens", cu},
                        {"out", o.out}, {"commit", bsattn::build_commit()}};
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

// run --score silu with HSTU's relative bias and/or u-gating (lib/hstu/hstu.h): the CPU reference, or the
// CUDA kernels (the bias computed per pair from the tables, u-gating by a kernel after the forward).
void run_hstu(const RunOptions& o, RunRequest req, const MaskStats& st, OutputSet& outputs) {
  Qkv& in = req.inputs;
  const AttentionProblem p = req.cu_seqlens.empty() ? problem_for(in.q, in.k) : varlen_problem(in.q, in.k, req.cu_seqlens);
  HstuBias bias = load_hstu_bias(o.hstu, p.total_q(), p.heads_q, p.q_len, p.kv_len);
  std::vector<float> u;
  if (!o.hstu.gate_u.empty()) {
    Tensor ut = load_tensor(o.hstu.gate_u, "--gate-u", in.layout, "auto");
    if (ut.batch != in.q.batch || ut.seq != in.q.seq || ut.heads != in.q.heads || ut.dim != in.q.dim)
      throw UsageError("--gate-u " + o.hstu.gate_u + ": U must have the shape of O (that of Q)");
    u = std::move(ut.data);
  }
  const Layout layout = in.layout;
  const nlohmann::json input_spec = in.spec;
  RunResult r;
  AttentionProblem ps = p;
  ps.score = ScoreFn::Silu;
  ps.scale = req.scale;
  ps.silu_n = req.silu_n > 0 ? req.silu_n : double(p.kv_len);
  r.problem = ps;
  if (req.backend == Backend::Cuda) {
    // The 16-bit values of the inputs (and U rounded to the same type), the bias computed in the kernel.
    const ElemType t = cuda_input_type(in);
    r.problem.dtype = t;
    const std::vector<uint16_t> q16 = to_16bit(in.q.data, t), k16 = to_16bit(in.k.data, t), v16 = to_16bit(in.v.data, t);
    const std::vector<uint16_t> u16 = u.empty() ? std::vector<uint16_t>{} : to_16bit(u, t);
    r.out = hstu_forward_cuda(r.problem, req.mask, q16.data(), k16.data(), v16.data(), bias,
                              u16.empty() ? nullptr : u16.data(), req.cuda);
    r.backend_name = std::string("cuda (") + elem_type_name(t) + (req.cuda.kernel.empty() ? "" : ", kernel " + req.cuda.kernel) + ")";
  } else {
    r.out = hstu_forward(ps, req.mask, in.q.data.data(), in.k.data.data(), in.v.data.data(), bias,
                         u.empty() ? nullptr : u.data(), req.f64, req.threads);
    r.backend_name = req.f64 ? "cpu (float64)" : "cpu (float32)";
  }
  const bool packed = r.problem.varlen();
  save_tensor(o.out, r.out, packed ? 1 : p.batch, packed ? p.total_q() : p.q_len, p.heads_q, p.head_dim, layout, packed);
  if (!o.quiet)
    std::printf("run: hstu (silu, n=%g%s%s%s%s) on %s, %lld sequence(s), %lld tokens, Hq=%lld Hkv=%lld D=%lld, pair density "
                "%.4f, wrote %s\n", r.problem.silu_n, bias.pos.empty() ? "" : ", rab-pos", bias.ts.empty() ? "" : ", rab-ts",
                bias.dense.empty() ? "" : ", rab", u.empty() ? "" : ", u-gating", r.backend_name.c_str(),
                (long long)p.batch, (long long)p.total_q(), (long long)p.heads_q, (long long)p.heads_kv,
                (long long)p.head_dim, st.pair_density(), o.out.c_str());
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", r.backend_name}, {"inputs", input_spec},
                        {"hstu", {{"rab_pos", o.hstu.rab_pos}, {"rab_ts", o.hstu.rab_ts}, {"timestamps", o.hstu.timestamps},
                                  {"rab", o.hstu.rab}, {"gate_u", o.hstu.gate_u}, {"silu_n", r.problem.silu_n}}},
                        {"mask_stats", to_json(st)}, {"seed", o.seed}, {"cu_seqlens", req.cu_seqlens}, {"out", o.out},
                        {"commit", bsattn::build_commit()}};
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

// --dilated: LongNet dilated attention instead of a mask (lib/dilated); the same inputs, orders and outputs.
void run_dilated_cmd(const RunOptions& o, Qkv in, std::vector<int64_t> perm, Backend backend, OutputSet& outputs) {
  dilated::DilatedRunRequest req;
  req.spec = dilated::parse_dilated(o.dilated, o.mask.causal);
  req.gradients = !o.dout.empty();
  if (req.gradients) req.d_o = load_tensor(o.dout, "--do", in.layout, o.inputs.src.dtype);
  const BlockSizes blocks = resolve_block_sizes(o.mask.blocks, kDefaultBlockSize);
  req.options.block_q = blocks.q;
  req.options.block_kv = blocks.kv;
  req.options.attention.backend = backend;
  req.options.attention.kernel = o.kernel;
  req.options.attention.max_ctas = o.max_ctas;
  req.options.attention.deterministic = o.deterministic;
  req.options.f64 = o.f64;
  req.options.threads = o.threads;
  req.scale = o.scale;
  req.token_order = std::move(perm);
  const nlohmann::json input_spec = in.spec;
  const Layout layout = in.layout;
  req.inputs = std::move(in);
  const nlohmann::json spec_json = req.spec.to_json();
  const bool grads = req.gradients;
  dilated::DilatedRunResult r = dilated::run_dilated(std::move(req));
  const AttentionProblem& p = r.problem;
  int64_t uncovered = 0;
  for (float l : r.lse) uncovered += std::isinf(l);
  if (uncovered > 0)
    std::fprintf(stderr, "bsattn run: warning: %lld (batch, head, token) rows are selected by no branch (head h takes "
                 "the tokens at position h mod rate; their output is 0, LSE = -inf)\n", (long long)uncovered);
  if (o.time)
    std::printf("time: %s dilated %s %.3f s (host clock: permutations, branches, merge), %.2f GFLOP/s (4*D*pairs, "
                "%lld pairs%s)\n",
                r.backend_name.c_str(), grads ? "forward+backward" : "forward", r.seconds,
                4.0 * double(p.head_dim) * double(r.computed_pairs) / r.seconds / 1e9 * (grads ? 3.5 : 1.0),
                (long long)r.computed_pairs, grads ? ", x3.5 with the backward" : "");
  if (!o.out.empty()) save_tensor(o.out, r.out, p.batch, p.q_len, p.heads_q, p.head_dim, layout);
  if (!o.lse.empty()) save_array(o.lse, r.lse, {p.batch, p.heads_q, p.q_len});
  if (grads) {
    save_tensor(o.dq, r.dq, p.batch, p.q_len, p.heads_q, p.head_dim, layout);
    save_tensor(o.dk, r.dk, p.batch, p.kv_len, p.heads_kv, p.head_dim, layout);
    save_tensor(o.dv, r.dv, p.batch, p.kv_len, p.heads_kv, p.head_dim, layout);
  }
  const double share = r.dense_pairs ? double(r.computed_pairs) / double(r.dense_pairs) : 0;
  if (!o.quiet)
    std::printf("run: backend %s, dilated %s%s, B=%lld S=%lld Hq=%lld Hkv=%lld D=%lld, %lld computed pairs (%.4f of "
                "dense), wrote %s%s%s\n",
                r.backend_name.c_str(), o.dilated.c_str(), o.mask.causal ? " causal" : "", (long long)p.batch,
                (long long)p.q_len, (long long)p.heads_q, (long long)p.heads_kv, (long long)p.head_dim,
                (long long)r.computed_pairs, share, o.out.c_str(), o.lse.empty() ? "" : (", " + o.lse).c_str(),
                grads ? ", dq/dk/dv" : "");
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", r.backend_name}, {"inputs", input_spec},
                        {"dilated", spec_json}, {"computed_pairs", r.computed_pairs}, {"dense_pairs", r.dense_pairs},
                        {"seed", o.seed}, {"out", o.out}, {"reorder", o.reorder}, {"commit", bsattn::build_commit()}};
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

// --ranks N: the same attention as one rank, computed by a ring of N ranks (lib/ring/ring_run.h).
void run_ring_cmd(const RunOptions& o, RunRequest req, const MaskStats& st, OutputSet& outputs) {
  ring::RingConfig cfg;
  cfg.ranks = o.ranks;
  cfg.layout = ring::parse_ring_layout(o.ring_layout);
  cfg.transport = ring::parse_transport(o.transport);
  const nlohmann::json mask_spec = req.mask.spec, input_spec = req.inputs.spec;
  const Layout layout = req.inputs.layout;
  const bool grads = req.gradients;
  ring::RingRunResult rr = ring::run_ring(std::move(req), cfg);
  const RunResult& r = rr.run;
  const AttentionProblem& p = r.problem;
  if (!o.out.empty()) save_tensor(o.out, r.out, p.batch, p.q_len, p.heads_q, p.head_dim, layout);
  if (!o.lse.empty()) save_array(o.lse, r.lse, {p.batch, p.heads_q, p.q_len});
  if (grads) {
    save_tensor(o.dq, r.dq, p.batch, p.q_len, p.heads_q, p.head_dim, layout);
    save_tensor(o.dk, r.dk, p.batch, p.kv_len, p.heads_kv, p.head_dim, layout);
    save_tensor(o.dv, r.dv, p.batch, p.kv_len, p.heads_kv, p.head_dim, layout);
  }
  int computed = 0, skipped = 0;
  int64_t bytes = 0;
  for (const ring::RankReport& k : rr.ring.ranks) computed += k.steps_computed, skipped += k.steps_skipped, bytes += k.bytes_sent;
  if (!o.quiet)
    std::printf("run: ring of %d ranks (%s layout, %s transport) on %s, B=%lld S=%lld Hq=%lld Hkv=%lld D=%lld, pair "
                "density %.4f; steps: %d computed, %d skipped (empty); %.3f MB sent; wrote %s%s%s\n",
                cfg.ranks, ring::ring_layout_name(cfg.layout), rr.ring.transport.c_str(), r.backend_name.c_str(),
                (long long)p.batch, (long long)p.q_len, (long long)p.heads_q, (long long)p.heads_kv, (long long)p.head_dim,
                st.pair_density(), computed, skipped, double(bytes) / 1e6, o.out.c_str(),
                o.lse.empty() ? "" : (", " + o.lse).c_str(), grads ? ", dq/dk/dv" : "");
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", r.backend_name}, {"inputs", input_spec}, {"mask", mask_spec},
                        {"mask_stats", to_json(st)}, {"seed", o.seed}, {"out", o.out}, {"reorder", o.reorder},
                        {"ring", ring::ring_report_json(cfg, rr.ring)}, {"commit", bsattn::build_commit()}};
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

void run_run(const RunOptions& o) {
  if (o.out.empty() && !o.time)
    throw UsageError("--out O.npy is required (or --time alone: time the CPU forward and write nothing)");
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
  if (backend != Backend::Cuda && !o.kernel.empty())
    throw UsageError("--kernel selects a CUDA kernel variant; it needs --backend cuda");
  if (backend != Backend::Cuda && o.max_ctas)
    throw UsageError("--max-ctas caps the CUDA kernel's CTAs; it needs --backend cuda");
  if (o.time && (backend == Backend::Cuda || o.f64))
    throw UsageError("--time times the CPU float32 forward: use it with --backend cpu and without --f64 (GPU timing: "
                     "bsattn bench)");
  if (o.deterministic && !grads) throw UsageError("--deterministic applies to the gradients; it needs --do");
  if (!o.bwd_kernel.empty() && !grads) throw UsageError("--bwd-kernel selects the backward kernel; it needs --do");
  if (backend != Backend::Cuda && !o.bwd_kernel.empty())
    throw UsageError("--bwd-kernel selects a CUDA backward kernel; it needs --backend cuda");
  if (backend != Backend::Cuda && o.deterministic)
    throw UsageError("--deterministic selects the CUDA backward's dQ pass (the CPU reference always is); it needs "
                     "--backend cuda");

  if (!o.ring && o.ring_options)
    throw UsageError("--ring-layout and --transport configure the ring: they need --ranks N");
  if (o.ring) {
    ring::parse_ring_layout(o.ring_layout);
    const ring::TransportKind t = ring::parse_transport(o.transport);
    if (t == ring::TransportKind::Nccl && backend != Backend::Cuda)
      throw UsageError("--transport nccl moves GPU memory between GPUs: it needs --backend cuda (the CPU reference runs "
                       "with --transport loopback)");
    if (!o.dilated.empty() || o.nsa.requested() || o.hstu.requested())
      throw UsageError("--ranks shards one block-sparse attention; --dilated, --nsa and HSTU's options run several: drop one");
    if (o.score != "softmax") throw UsageError("--ranks: ring attention merges its steps by their log-sum-exp; it needs --score softmax");
    if (o.f64) throw UsageError("--ranks runs each rank in float32 (cpu) or 16-bit (cuda): drop --f64");
    if (o.time) throw UsageError("--time times one single-rank CPU forward; time the ring with bench --ranks");
    if (!o.varlen.seqlens.empty() || !o.varlen.cu_seqlens.empty())
      throw UsageError("--ranks: ring attention takes fixed-length batches; drop --seqlens/--cu-seqlens");
  }
  const bool dilated = !o.dilated.empty();
  if (dilated) {
    if (!o.mask.mask.empty()) throw UsageError("give either MASK or --dilated, not both");
    if (o.nsa.requested()) throw UsageError("--nsa and --dilated: give one of them");
    if (o.hstu.requested()) throw UsageError("--rab-pos/--rab-ts/--rab/--gate-u are HSTU's (--score silu); --dilated takes softmax scores");
    dilated::parse_dilated(o.dilated, o.mask.causal);  // a bad spec is reported before any input is read
    if (o.score != "softmax") throw UsageError("--dilated merges branches by their softmax denominators: it needs --score softmax");
  }
  if (!dilated && !o.nsa.requested() && o.mask.mask.empty())
    throw UsageError("MASK missing: give a mask file (.npy/.json/CSR prefix) or a pattern spec, or --dilated "
                     "SEGMENT:RATE,... (dilated attention), or --nsa (native sparse attention)");
  if (o.nsa.requested()) {
    nsa_params(o.nsa);  // the spec and files checked before any input is read
    if (!o.mask.mask.empty()) throw UsageError("MASK and --nsa: NSA builds its own masks; give one of them");
    if (o.time) throw UsageError("--time times one block-sparse forward; NSA's is timed by bench --nsa");
    if (grads) throw UsageError("--do: NSA runs the forward pass only");
    if (!o.lse.empty()) throw UsageError("--lse: NSA's output is a gated sum of three attentions, with no single LSE");
    if (o.score != "softmax") throw UsageError("--score silu: NSA takes softmax scores");
    if (!o.reorder.empty()) throw UsageError("--order: NSA runs on the tokens as given");
  } else {
    nsa_params(o.nsa);  // refuses --nsa-* files without --nsa
  }
  if (o.hstu.requested()) {
    if (o.score != "silu") throw UsageError("--rab-pos/--rab-ts/--rab/--gate-u are HSTU's: they need --score silu");
    if (o.nsa.requested()) throw UsageError("--nsa takes softmax scores; HSTU's options need --score silu");
    if (grads) throw UsageError("--do: HSTU's bias and u-gating run the forward pass only");
    if (!o.lse.empty()) throw UsageError("--lse: SiLU attention has no log-sum-exp");
    if (!o.reorder.empty()) throw UsageError("--order: HSTU's bias is defined on the tokens as given");
    if (o.time) throw UsageError("--time times the forward without HSTU's bias and u-gating; drop --time");
  }
  const MaskSource mask = o.nsa.requested() || dilated ? MaskSource{} : parse_mask_cli(o.mask, o.seed);
  const int64_t order_block = dilated ? resolve_block_sizes(o.mask.blocks, kDefaultBlockSize).q : mask.request.shape.block_q;
  InputCli inputs = o.inputs;
  const std::vector<int32_t> cu = resolve_varlen(o.varlen, inputs);
  if (!cu.empty() && !o.reorder.empty()) throw UsageError("--order applies to one sequence; drop it with --seqlens/--cu-seqlens");
  if (dilated && !cu.empty()) throw UsageError("--dilated takes fixed-length batches; drop --seqlens/--cu-seqlens");
  Qkv in = load_inputs(inputs, true, o.seed);
  if (backend == Backend::Cuda) cuda_input_type(in);
  if (o.nsa.requested()) return run_nsa(o, std::move(in), cu, backend, outputs);
  RunRequest req;
  req.gradients = grads;
  // dO is an input like Q/K/V: read with the same --dtype (bf16 files as uint16 bits with --dtype bf16);
  // run_attention checks its shape.
  if (grads && !dilated) req.d_o = load_tensor(o.dout, "--do", in.layout, o.inputs.src.dtype);
  // Reordered sequences: attention runs on the reordered tokens; outputs are returned in the original order.
  std::vector<int64_t> perm;
  if (!o.reorder.empty()) {
    if (o.grid.empty()) throw UsageError("--order needs --grid TxHxW (or HxW)");
    SequenceLayout lay;
    lay.grid = parse_grid(o.grid, "--grid");
    lay.text = o.text;
    if (lay.length() != in.q.seq || in.q.seq != in.k.seq)
      throw UsageError("--order: text + grid = " + std::to_string(lay.length()) + " tokens but Q has " +
                       std::to_string(in.q.seq) + " and K " + std::to_string(in.k.seq));
    perm = sequence_order(parse_order(o.reorder, lay.grid, order_block, "--order"), lay);
    reorder_tokens(in, perm);
  } else if (!o.grid.empty() || o.text) {
    throw UsageError("--grid/--text only apply with --order");
  }
  if (dilated) return run_dilated_cmd(o, std::move(in), std::move(perm), backend, outputs);

  BlockMask m = cu.empty() ? resolve_mask(mask, in, perm.empty() ? nullptr : &perm) : resolve_varlen_mask(mask, in, cu);
  // The ring's sizes are checked before the warnings below: a refused --ranks is the only line.
  if (o.ring) ring::check_ring_shape(o.ranks, ring::parse_ring_layout(o.ring_layout), m.shape);
  MaskStats st = cu.empty() ? mask_stats(m) : varlen_mask_stats(m, cu);
  if (st.empty_rows > 0)
    std::fprintf(stderr, "bsattn run: warning: %lld mask rows keep no block (their output is 0, LSE = -inf)\n",
                 (long long)st.empty_rows);
  req.backend = backend;
  req.cuda.kernel = o.kernel;
  req.cuda.max_ctas = o.max_ctas;
  req.cuda.deterministic = o.deterministic;
  req.cuda.bwd_kernel = o.bwd_kernel;
  req.f64 = o.f64;
  req.time = o.time;
  req.time_repeats = o.repeat;
  req.threads = o.threads;
  req.score = o.score == "silu" ? ScoreFn::Silu : ScoreFn::Softmax;
  req.scale = o.scale;
  req.silu_n = o.silu_n;
  req.token_order = perm;
  req.cu_seqlens = cu;
  // Progress on stderr for the CPU reference (long at large S): on a terminal unless --quiet, or --progress.
  ProgressMeter meter("bsattn run: cpu attention",
                      backend == Backend::Cpu && (o.progress || (!o.quiet && stderr_is_terminal())));
  req.progress = &meter;
  const nlohmann::json mask_spec = m.spec;
  req.mask = std::move(m);
  const nlohmann::json input_spec = in.spec;
  const Layout layout = in.layout;
  req.inputs = std::move(in);
  if (o.hstu.requested()) return run_hstu(o, std::move(req), st, outputs);
  if (o.ring) return run_ring_cmd(o, std::move(req), st, outputs);
  RunResult r = run_attention(std::move(req));
  meter.finish();
  const AttentionProblem& p = r.problem;
  if (r.timing) {
    const RunTiming& t = *r.timing;
    std::printf("time: cpu float32 forward %.3f s (median of %d after a warm-up), %.2f GFLOP/s (4*D*pairs, %lld pairs, "
                "%d threads); ceiling: Eigen GEMM %lldx%lldx%lld on each thread, %.2f GFLOP/s total over %d threads "
                "(median of %d rounds, one after each forward; best %.2f); forward/ceiling %.2f (median of the %d "
                "side-by-side ratios, %.2f-%.2f)\n",
                t.seconds, int(t.seconds_each.size()), t.gflops, (long long)t.pairs, t.threads, (long long)t.gemm.m,
                (long long)t.gemm.k, (long long)t.gemm.n, t.ceiling_median, t.gemm.threads, t.gemm.rounds, t.gemm.gflops,
                t.ratio, int(t.ratios.size()), *std::min_element(t.ratios.begin(), t.ratios.end()),
                *std::max_element(t.ratios.begin(), t.ratios.end()));
  }
  // Varlen outputs are packed like the inputs: O [total,Hq,D], LSE [Hq,total].
  const bool packed = p.varlen();
  const int64_t ob = packed ? 1 : p.batch, oq = packed ? p.total_q() : p.q_len, ok = packed ? p.total_k() : p.kv_len;
  if (!o.out.empty()) save_tensor(o.out, r.out, ob, oq, p.heads_q, p.head_dim, layout, packed);
  if (!o.lse.empty())
    save_array(o.lse, r.lse, packed ? std::vector<int64_t>{p.heads_q, oq} : std::vector<int64_t>{p.batch, p.heads_q, p.q_len});
  if (grads) {
    save_tensor(o.dq, r.dq, ob, oq, p.heads_q, p.head_dim, layout, packed);
    save_tensor(o.dk, r.dk, ob, ok, p.heads_kv, p.head_dim, layout, packed);
    save_tensor(o.dv, r.dv, ob, ok, p.heads_kv, p.head_dim, layout, packed);
  }
  const std::string& bname = r.backend_name;
  if (!o.quiet && packed)
    std::printf("run: varlen, %lld sequences (%lld tokens, longest %lld)\n", (long long)p.batch, (long long)p.total_q(),
                (long long)p.q_len);
  if (!o.quiet)
    std::printf("run: backend %s, B=%lld Sq=%lld Sk=%lld Hq=%lld Hkv=%lld D=%lld, mask density %.4f, pair density %.4f (%lld computed pairs), "
                "wrote %s%s%s\n",
                bname.c_str(), (long long)p.batch, (long long)p.q_len, (long long)p.kv_len, (long long)p.heads_q,
                (long long)p.heads_kv, (long long)p.head_dim, st.density, st.pair_density(), (long long)st.computed_pairs,
                o.out.empty() ? "no O (--time)" : o.out.c_str(), o.lse.empty() ? "" : (", " + o.lse).c_str(),
                grads ? ", dq/dk/dv" : "");
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"schema", "bsattn.run/v1"}, {"backend", bname}, {"inputs", input_spec}, {"mask", mask_spec},
                        {"mask_stats", to_json(st)}, {"seed", o.seed}, {"cu_seqlens", cu}, {"out", o.out}, {"reorder", o.reorder},
                        {"commit", bsattn::build_commit()}};
    if (r.timing) {
      const RunTiming& t = *r.timing;
      j["time"] = {{"forward_seconds", t.seconds_each}, {"forward_seconds_median", t.seconds}, {"forward_gflops", t.gflops},
                   {"computed_pairs", t.pairs}, {"threads", t.threads},
                   {"ceiling", {{"what", "Eigen float32 GEMM m x k times k x n on each thread, GFLOP/s total over the threads"},
                                {"m", t.gemm.m}, {"k", t.gemm.k}, {"n", t.gemm.n}, {"round_gflops", t.gemm.round_gflops},
                                {"median_gflops", t.ceiling_median}, {"best_gflops", t.gemm.gflops}}},
                   {"ratios", t.ratios}, {"ratio_median", t.ratio}};
    }
    write_text_file(o.json_out, j.dump(1) + "\n");
  }
  outputs.commit();
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "Compute block-sparse attention on Q/K/V files or synthetic inputs: O, LSE and (with --do) the gradients as .npy");
  sub->add_option("mask", o->mask.mask, "Mask file (.npy / .json / CSR prefix) or a pattern spec NAME[:k=v,...] (required unless --nsa or --dilated)")->group("Mask");
  add_nsa_options(*sub, o->nsa, true, "Mask");
  add_hstu_options(*sub, o->hstu, "HSTU");
  sub->add_option("--dilated", o->dilated, "Dilated attention (LongNet) instead of a mask: SEGMENT:RATE pairs, e.g. 2048:1,4096:2,8192:4; head h takes the offset h mod rate; branches merged by their softmax denominators; --causal is causal within segments; --block sizes the branches' blocks")->group("Mask");
  add_mask_size_options(*sub, o->mask, "Mask");
  add_input_options(*sub, o->inputs, true, true, "Input");
  add_varlen_options(*sub, o->varlen, "Input");
  sub->add_option("--do", o->dout, "Output gradient dO (.npy, shape of Q, read with --dtype like Q/K/V): also compute dQ, dK, dV (cuda: dO rounded to the inputs' 16-bit type)")->group("Input");
  sub->add_option("--score", o->score, "Score function")->check(CLI::IsMember({"softmax", "silu"}))->capture_default_str()->group("Input");
  sub->add_option("--scale", o->scale, "Softmax/SiLU scale, finite and > 0 (0: 1/sqrt(D))")->check(scale_check())->capture_default_str()->group("Input");
  sub->add_option("--silu-n", o->silu_n, "SiLU: the divisor n (0: kv_len)")->check(finite_range(0.0, 1e12))->capture_default_str()->group("Input");
  sub->add_option("--seed", o->seed, "Seed for synthetic inputs and random patterns (recorded in --json)")->check(seed_check())->capture_default_str()->group("Input");
  sub->add_option("--order", o->reorder, "Token order applied before attention and undone after (raster, snake, morton, hilbert, gilbert, tiles, residue)")->group("Reorder");
  sub->add_option("--reorder", o->reorder)->group("");  // the older name of --order, out of --help
  sub->add_option("--grid", o->grid, "Grid of the reordered tokens, TxHxW or HxW")->group("Reorder");
  sub->add_option("--text", o->text, "Text tokens before the grid (kept in place)")->check(CLI::Range(int64_t(0), int64_t(1) << 40))->capture_default_str()->group("Reorder");
  sub->add_option("--backend", o->backend, "auto: cuda when a GPU is available, else cpu. cuda takes bf16/f16 inputs (--dtype)")->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str()->group("Device");
  sub->add_option("--kernel", o->kernel, "CUDA kernel variant (bsattn bench --list-kernels; default: the default kernel)")->group("Device");
  sub->add_option("--max-ctas", o->max_ctas, "CUDA: the most CTAs the persistent Hopper kernel starts (0: one per SM)")->check(CLI::NonNegativeNumber)->capture_default_str()->group("Device");
  sub->add_flag("--f64", o->f64, "CPU: compute in float64 (outputs are still float32)")->group("Device");
  sub->add_option("--bwd-kernel", o->bwd_kernel, "CUDA backward kernel: sm90 (Hopper, block_kv a multiple of 128) or sm80 (default: sm90 where it runs)")->check(CLI::IsMember({"sm90", "sm80"}))->group("Device");
  sub->add_flag("--deterministic", o->deterministic, "CUDA gradients: dQ by its own pass, bit-identical from run to run (instead of fp32 atomics)")->group("Device");
  sub->add_option("--threads", o->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096))->capture_default_str()->group("Device");
  auto* time_flag = sub->add_flag("--time", o->time, "CPU float32: time the forward (GFLOP/s) side by side with the ceiling, Eigen's GEMM of the block-pair shape on every thread (GFLOP/s total over the threads): after a warm-up, --repeat times a forward then a ceiling round as long; prints the medians and the median ratio")->group("Device");
  sub->add_option("--repeat", o->repeat, "--time: forwards timed, each followed by a ceiling round")->check(CLI::Range(1, 1000))->capture_default_str()->needs(time_flag)->group("Device");
  sub->add_option("-o,--out", o->out, "Output O .npy (layout of --q); required unless --time")->group("Output");
  sub->add_option("--lse", o->lse, "Output LSE .npy, float32 [B,Hq,Sq] (natural log; -inf for empty rows)")->group("Output");
  sub->add_option("--dq", o->dq, "Output dQ .npy (with --do)")->group("Output");
  sub->add_option("--dk", o->dk, "Output dK .npy (with --do)")->group("Output");
  sub->add_option("--dv", o->dv, "Output dV .npy (with --do)")->group("Output");
  sub->add_option("--json", o->json_out, "Write a summary (inputs, mask spec, seed, statistics) as JSON ('-' for stdout)")->group("Output");
  sub->add_flag("-q,--quiet", o->quiet, "Print nothing on success (and no progress unless --progress)")->group("Output");
  sub->add_flag("--progress", o->progress, "CPU backend: progress with ETA on stderr even when it is not a terminal (default: on a terminal)")->group("Output");
  auto* ranks = sub->add_option("--ranks", o->ranks, "Ring attention (context parallelism): shard the sequence over N ranks that pass K/V shards round a ring; the output equals the single-rank run (docs/ring.md)")->check(CLI::Range(1, 1024))->group("Ring");
  auto* layout = sub->add_option("--ring-layout", o->ring_layout, "How --ranks shards the sequence: contiguous (rank r: chunk r) or zigzag (chunks r and 2N-1-r, balanced under --causal)")->capture_default_str()->group("Ring");
  auto* transport = sub->add_option("--transport", o->transport, "How --ranks exchange shards: loopback (N virtual ranks in this process, on the CPU or one GPU) or nccl (one GPU per rank, --backend cuda)")->capture_default_str()->group("Ring");
  sub->callback([o, ranks, layout, transport]() {
    o->ring = ranks->count() > 0;
    o->ring_options = layout->count() + transport->count() > 0;
    run_run(*o);
  });
}

}  // namespace bsattn::app
