#include "patterns/adaptive/gpu_select.h"

#include <algorithm>

#include "lib/error.h"
#include "patterns/mask_source.h"

namespace bsattn::adaptive {

GpuAdaptiveConfig gpu_energy_config(const MaskRequest& req) {
  if (!req.head_map.empty())
    throw UsageError("--backend cuda selects one pattern for every head: give --pattern energy:..., not --head-map");
  if (!req.pattern.def || req.pattern.def->name != "energy")
    throw UsageError("--backend cuda builds the 'energy' pattern on the GPU (got '" +
                     (req.pattern.def ? req.pattern.def->name : std::string("none")) +
                     "'; allowed: energy; other patterns use --backend cpu)");
  const Params& p = req.pattern.params;
  if (p.get_int("max_blocks") != 0)
    throw UsageError("pattern 'energy' parameter 'max_blocks' = " + std::to_string(p.get_int("max_blocks")) +
                     " is not implemented by --backend cuda (allowed: 0, no cap)");
  GpuAdaptiveConfig c;
  c.block_q = req.shape.block_q;
  c.block_kv = req.shape.block_kv;
  c.level = int(p.get_int("pool"));
  c.levels = {c.level};
  // min_blocks counts blocks; the GPU keeps whole units (as the CPU selector: ceil(min_blocks / pool)),
  // and always at least one.
  c.top_k = int(std::max<int64_t>(1, (p.get_int("min_blocks") + c.level - 1) / c.level));
  c.mass = p.get_float("tau");
  if (!(c.mass > 0)) throw UsageError("pattern 'energy' parameter 'tau' must be > 0 with --backend cuda");
  c.causal = req.causal;
  c.keep_diagonal = false;
  return c;
}

BlockMask generate_mask_gpu(const MaskRequest& req, const Qkv& in, ElemType dtype, GpuAdaptiveTiming* timing) {
  GpuAdaptiveConfig c = gpu_energy_config(req);
  if (dtype == ElemType::F32) throw UsageError("--backend cuda selects from bf16 or f16 Q/K (allowed: --dtype bf16, f16)");
  AttentionProblem p = problem_for(in.q, in.k);
  p.dtype = dtype;
  if (p.q_len != req.shape.q_len || p.kv_len != req.shape.kv_len || p.heads_q != req.shape.heads)
    throw UsageError("--backend cuda: Q/K do not match the mask's sizes (" + req.shape.str() + ")");
  if (p.batch != req.shape.batch)
    throw UsageError("--backend cuda selects per batch entry of Q/K: give --batch " + std::to_string(p.batch));
  check_gpu_adaptive(p, c);
  std::vector<uint16_t> q16 = to_16bit(in.q.data, dtype), k16 = to_16bit(in.k.data, dtype);
  BlockMask m = gpu_adaptive_mask(p, AttentionInputs{q16.data(), k16.data(), k16.data(), nullptr}, c, timing);
  m.normalize_head_types();
  nlohmann::json spec = nlohmann::json::object();
  spec["seed"] = req.seed;
  spec["causal"] = req.causal;
  spec["pattern"] = req.pattern.spec();
  spec["groups"] = {{{"heads", {0, req.shape.heads - 1}},
                     {"pattern", req.pattern.def->name},
                     {"params", req.pattern.params.to_json()},
                     {"spec", req.pattern.spec()}}};
  spec["backend"] = "cuda";
  spec["gpu_selection"] = m.spec;
  m.spec = spec;
  return m;
}

BlockMask bench_mask(const bench::BenchConfig& c, uint64_t seed, const std::string& synthetic, bool gpu) {
  MaskRequest req;
  req.shape = c.mask_shape();
  req.causal = c.causal;
  req.seed = seed;
  req.pattern = parse_pattern(c.spec, "--pattern");
  if (!req.pattern.def->needs_inputs || synthetic.empty()) return generate_mask(req);
  QkvSource src;
  src.synthetic = synthetic;
  src.sizes = SyntheticSizes{c.shape.batch, c.seq(), c.shape.heads_q, c.shape.heads_kv, c.shape.head_dim};
  src.seed = seed;
  Qkv in = load_qkv(src, false);
  if (!gpu) {
    PatternInputs pi = pattern_inputs(in);
    return generate_mask(request_for_inputs(req, in, &pi));
  }
  req.shape.batch = c.shape.batch;
  GpuAdaptiveTiming t;
  BlockMask m = generate_mask_gpu(req, in, c.dtype, &t);  // the warm-up
  std::vector<GpuAdaptiveTiming> runs;
  for (int r = 0; r < 5; ++r) {
    generate_mask_gpu(req, in, c.dtype, &t);
    runs.push_back(t);
  }
  std::sort(runs.begin(), runs.end(), [](auto& a, auto& b) { return a.total_ms < b.total_ms; });
  const GpuAdaptiveTiming& med = runs[runs.size() / 2];
  m.spec["mask_build"] = {{"kind", "gpu_adaptive_select"}, {"ms", med.total_ms}, {"pool_ms", med.pool_ms},
                          {"score_ms", med.score_ms}, {"select_ms", med.select_ms}, {"csr_ms", med.csr_ms}};
  return m;
}

}  // namespace bsattn::adaptive
