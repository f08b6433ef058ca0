#include "lib/dilated/dilated_run.h"

#include <chrono>
#include <utility>

#include "lib/curves/order.h"
#include "lib/error.h"

namespace bsattn::dilated {

DilatedRunResult run_dilated(DilatedRunRequest req) {
  Qkv& in = req.inputs;
  const Tensor& q = in.q;
  if (req.gradients && (req.d_o.batch != q.batch || req.d_o.seq != q.seq || req.d_o.heads != q.heads || req.d_o.dim != q.dim))
    throw UsageError(req.d_o.name + ": must have the shape of Q");
  const std::vector<int64_t>& perm = req.token_order;
  if (req.gradients && !perm.empty())
    req.d_o.data = curves::apply_token_order(req.d_o.data, req.d_o.batch, req.d_o.seq, req.d_o.heads * req.d_o.dim, perm);

  DilatedRunResult r;
  AttentionProblem p = problem_for(in.q, in.k);
  p.scale = req.scale;
  const bool cuda = req.options.attention.backend == Backend::Cuda;
  std::vector<uint16_t> q16, k16, v16;
  AttentionInputs ai{in.q.data.data(), in.k.data.data(), in.v.data.data(), nullptr};
  if (cuda) {
    // The inputs' 16-bit values (the files' own bits, or float32 rounded by --dtype); one type for all.
    const ElemType t = in.q.dtype;
    if (t == ElemType::F32)
      throw UsageError(in.q.name + " holds float32: the CUDA backend takes bf16 or f16 inputs (allowed: --dtype bf16 or "
                       "--dtype f16, or --backend cpu)");
    for (const Tensor* x : {&in.k, &in.v})
      if (x->dtype != t)
        throw UsageError(std::string("the CUDA backend takes Q, K and V of one element type, but ") + in.q.name + " is " +
                         elem_type_name(t) + " and " + x->name + " is " + elem_type_name(x->dtype));
    p.dtype = t;
    q16 = to_16bit(in.q.data, t), k16 = to_16bit(in.k.data, t), v16 = to_16bit(in.v.data, t);
    ai = AttentionInputs{q16.data(), k16.data(), v16.data(), nullptr};
  }
  check_problem(p, req.spec);
  auto t0 = std::chrono::steady_clock::now();
  DilatedResult f = dilated_attention(p, req.spec, ai, req.gradients ? req.d_o.data.data() : nullptr, req.options);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.out = std::move(f.out), r.lse = std::move(f.lse);
  r.dq = std::move(f.dq), r.dk = std::move(f.dk), r.dv = std::move(f.dv);
  r.problem = p;
  r.computed_pairs = dilated_pairs(p, req.spec);
  r.dense_pairs = p.batch * p.heads_q * (req.spec.causal ? p.q_len * (p.q_len + 1) / 2 : p.q_len * p.kv_len);
  r.backend_name = cuda ? std::string("cuda (") + elem_type_name(p.dtype) +
                              (req.options.attention.kernel.empty() ? "" : ", kernel " + req.options.attention.kernel) + ")"
                        : req.options.f64 ? "cpu (float64)" : "cpu (float32)";

  curves::unapply_token_order_outputs(r, p, perm, req.gradients);
  return r;
}

}  // namespace bsattn::dilated
