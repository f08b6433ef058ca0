#include "lib/run/run.h"

#include <utility>

#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/reference/cpu_attention.h"
#include "lib/reference/parallel.h"
#include "lib/tensor/tensor_io.h"
#include "lib/varlen/varlen.h"

namespace bsattn {

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

namespace {

// The CUDA backend on the inputs' 16-bit values: these bit patterns are the files' own, or the
// nearest-even rounding of float32 values. attention_forward checks the problem and what the kernel
// supports (usage errors, on any machine) before it looks for a GPU.
void run_cuda(RunRequest& req, AttentionProblem& p, RunResult& r) {
  const ElemType t = cuda_input_type(req.inputs);
  p.dtype = t;
  Qkv& in = req.inputs;
  std::vector<uint16_t> q16 = to_16bit(in.q.data, t), k16 = to_16bit(in.k.data, t), v16 = to_16bit(in.v.data, t);
  in.q.data = {}, in.k.data = {}, in.v.data = {};
  AttentionOptions opt = req.cuda;
  opt.backend = Backend::Cuda;
  const AttentionInputs in16{q16.data(), k16.data(), v16.data(), nullptr};
  AttentionResult f = attention_forward(p, req.mask, in16, opt);
  if (req.gradients) {
    // The GPU backward on this forward's O and LSE; dO is rounded to the same 16-bit type.
    AttentionGradients g = attention_backward(p, req.mask, in16, f, req.d_o.data.data(), opt);
    r.dq = std::move(g.dq), r.dk = std::move(g.dk), r.dv = std::move(g.dv);
  }
  r.out = std::move(f.out);
  r.lse = std::move(f.lse);
  r.backend_name = std::string("cuda (") + elem_type_name(t) + (opt.kernel.empty() ? "" : ", kernel " + opt.kernel) + ")";
}

void run_cpu_f64(const RunRequest& req, const AttentionProblem& p, RunResult& r) {
  const AttentionInputs ai{req.inputs.q.data.data(), req.inputs.k.data.data(), req.inputs.v.data.data(), nullptr};
  const CpuAttentionOptions copt{req.threads, req.progress};
  auto f = cpu_forward<double>(p, req.mask, ai, copt);
  r.out = narrow_to_float32(f.out, "O");
  r.lse = narrow_to_float32(f.lse, "LSE");
  if (req.gradients) {
    auto g = cpu_backward<double>(p, req.mask, ai, f, req.d_o.data.data(), copt);
    r.dq = narrow_to_float32(g.dq, "dQ"), r.dk = narrow_to_float32(g.dk, "dK"), r.dv = narrow_to_float32(g.dv, "dV");
  }
  r.backend_name = "cpu (float64)";
}

void run_cpu_f32(const RunRequest& req, const AttentionProblem& p, RunResult& r) {
  const AttentionInputs ai{req.inputs.q.data.data(), req.inputs.k.data.data(), req.inputs.v.data.data(), nullptr};
  const CpuAttentionOptions copt{req.threads, req.progress};
  CpuForward<float> f;
  auto forward = [&] { f = cpu_forward<float>(p, req.mask, ai, copt); };
  if (!req.time) {
    forward();
  } else {
    if (req.time_repeats < 1) throw UsageError("--repeat must be at least 1");
    RunTiming t;
    t.pairs = p.varlen() ? varlen_mask_stats(req.mask, p.cu_seqlens_q).computed_pairs
                         : mask_stats(req.mask).computed_pairs * (req.mask.shape.batch == 1 ? p.batch : 1);
    const double flops = forward_flops(t.pairs, p.head_dim);
    CeilingComparison c = compare_with_ceiling(forward, flops, req.time_repeats, req.mask.shape.block_q,
                                               req.mask.shape.block_kv, p.head_dim, req.threads);
    t.seconds = c.median_seconds;
    t.gflops = flops / t.seconds / 1e9;
    t.threads = c.ceiling.threads;
    t.gemm = c.ceiling;
    t.seconds_each = c.seconds;
    t.ratios = c.ratios;
    t.ceiling_median = c.median_ceiling_gflops;
    t.ratio = c.median_ratio;
    r.timing = t;
  }
  if (req.gradients) {
    auto g = cpu_backward<float>(p, req.mask, ai, f, req.d_o.data.data(), copt);
    r.dq = std::move(g.dq), r.dk = std::move(g.dk), r.dv = std::move(g.dv);
  }
  r.out = std::move(f.out);
  r.lse = std::move(f.lse);
  r.backend_name = "cpu (float32)";
}

}  // namespace

RunResult run_attention(RunRequest req) {
  if (req.backend == Backend::Cuda && req.f64) throw UsageError("--f64 is computed by the CPU reference: add --backend cpu");
  const Tensor& q = req.inputs.q;
  if (req.gradients && (req.d_o.batch != q.batch || req.d_o.seq != q.seq || req.d_o.heads != q.heads || req.d_o.dim != q.dim))
    throw UsageError(req.d_o.name + ": must have the shape of Q");
  const std::vector<int64_t>& perm = req.token_order;
  if (req.gradients && !perm.empty())
    req.d_o.data = curves::apply_token_order(req.d_o.data, req.d_o.batch, req.d_o.seq, req.d_o.heads * req.d_o.dim, perm);

  RunResult r;
  if (!req.cu_seqlens.empty() && !perm.empty()) throw UsageError("--order applies to one sequence; drop it with varlen offsets");
  AttentionProblem p = req.cu_seqlens.empty() ? problem_for(req.inputs.q, req.inputs.k)
                                              : varlen_problem(req.inputs.q, req.inputs.k, req.cu_seqlens);
  p.scale = req.scale;
  if (req.score == ScoreFn::Silu) {
    p.score = ScoreFn::Silu;
    p.silu_n = req.silu_n > 0 ? req.silu_n : double(p.kv_len);
  }
  if (req.backend == Backend::Cuda)
    run_cuda(req, p, r);
  else if (req.f64)
    run_cpu_f64(req, p, r);
  else
    run_cpu_f32(req, p, r);
  r.problem = p;

  curves::unapply_token_order_outputs(r, p, perm, req.gradients);
  return r;
}

}  // namespace bsattn
