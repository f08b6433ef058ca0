#include "lib/ring/ring_run.h"

#include <utility>

#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/tensor/tensor_io.h"

namespace bsattn::ring {

RingRunResult run_ring(RunRequest req, const RingConfig& cfg) {
  if (!req.cu_seqlens.empty()) throw UsageError("--ranks: ring attention takes fixed-length batches; drop --seqlens/--cu-seqlens");
  if (req.score != ScoreFn::Softmax)
    throw UsageError("--ranks: ring attention merges its steps by their log-sum-exp; it needs --score softmax");
  if (req.f64) throw UsageError("--ranks runs each rank in float32 (cpu) or 16-bit (cuda): drop --f64");
  if (req.time) throw UsageError("--time times one single-rank CPU forward; the ring is timed by bench --ranks");
  Qkv& in = req.inputs;
  const Tensor& q = in.q;
  if (req.gradients && (req.d_o.batch != q.batch || req.d_o.seq != q.seq || req.d_o.heads != q.heads || req.d_o.dim != q.dim))
    throw UsageError(req.d_o.name + ": must have the shape of Q");
  const std::vector<int64_t>& perm = req.token_order;
  if (req.gradients && !perm.empty())
    req.d_o.data = curves::apply_token_order(req.d_o.data, req.d_o.batch, req.d_o.seq, req.d_o.heads * req.d_o.dim, perm);
  AttentionProblem p = problem_for(in.q, in.k);
  p.scale = req.scale;
  RingConfig c = cfg;
  c.attention.backend = req.backend;
  if (req.backend == Backend::Cuda) {
    p.dtype = cuda_input_type(in);
    const AttentionOptions& o = req.cuda;
    c.attention.kernel = o.kernel, c.attention.max_ctas = o.max_ctas;
    c.attention.deterministic = o.deterministic, c.attention.bwd_kernel = o.bwd_kernel;
  }
  c.threads = req.threads;
  RingRunResult r;
  r.ring = ring_attention(p, req.mask, in.q.data.data(), in.k.data.data(), in.v.data.data(),
                          req.gradients ? req.d_o.data.data() : nullptr, c);
  RunResult& out = r.run;
  out.problem = p;
  out.out = std::move(r.ring.out), out.lse = std::move(r.ring.lse);
  out.dq = std::move(r.ring.dq), out.dk = std::move(r.ring.dk), out.dv = std::move(r.ring.dv);
  out.backend_name = r.ring.engine;
  curves::unapply_token_order_outputs(out, p, perm, req.gradients);
  return r;
}

nlohmann::json ring_report_json(const RingConfig& cfg, const RingResult& r) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const RankReport& k : r.ranks)
    ranks.push_back({{"rank", k.rank}, {"shard_tokens", k.shard_tokens}, {"steps_computed", k.steps_computed},
                     {"steps_skipped", k.steps_skipped}, {"computed_pairs", k.computed_pairs},
                     {"bytes_sent", k.bytes_sent}, {"memory_bytes", k.memory_bytes}});
  return {{"ranks", cfg.ranks}, {"layout", ring_layout_name(cfg.layout)}, {"transport", r.transport},
          {"engine", r.engine}, {"overlapped", r.overlapped}, {"per_rank", ranks}};
}

}  // namespace bsattn::ring
