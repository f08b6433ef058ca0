#include "lib/nsa/nsa_bench.h"

#include <algorithm>
#include <chrono>

#include "lib/bench/accounting.h"
#include "lib/error.h"
#include "lib/nsa/nsa_gpu.h"
#include "lib/tensor/tensor_io.h"
#include "lib/quality/quality.h"
#include "lib/rng.h"

namespace bsattn::bench {

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<float> uniform(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& e : x) e = float(rng.uniform() * 2.0 - 1.0);
  return x;
}

}  // namespace

BenchDoc run_nsa_bench(const SweepAxes& axes, const NsaParams& np, const std::string& spec, const TimingOptions& timing,
                       uint64_t seed, nlohmann::json context, ProgressMeter* meter, BenchBackend* gpu) {
  timing.validate();
  if (!axes.cu_seqlens.empty()) throw UsageError("bench --nsa takes fixed lengths (--seq, --batch); drop --seqlens/--cu-seqlens");
  const bool cuda = gpu != nullptr;
  if (cuda && !nsa_gpu()) throw RuntimeFailure("this bsattn was built without CUDA; use --backend cpu");
  BenchDoc doc;
  if (cuda) {
    context.update(gpu->device_context());
    Ceilings ceil = gpu->ceilings(timing);
    if (ceil.measured) context["ceilings"] = {{"gemm_bf16_tflops", ceil.gemm_tflops}, {"d2d_copy_gbs", ceil.copy_gbs}};
  }
  context["backend"] = cuda ? "cuda" : "cpu";
  context["kernel"] = "nsa";
  context["timing"] = timing.to_json();
  context["seed"] = seed;
  context["nsa"] = np.to_json();
  if (cuda)
    context["nsa_timed"] = "everything on the GPU from Q/K/V to the gated output (lib/nsa/nsa_gpu.h); the window mask, "
                           "fixed by the shape, built beforehand; selection_ms, branches_ms, gate_ms: each part alone";
  doc.context = context;
  const std::vector<std::string> dtypes = cuda ? axes.dtype : std::vector<std::string>{"f32"};
  int64_t total = int64_t(axes.batch.size() * axes.heads.size() * axes.seq.size() * axes.head_dim.size() * dtypes.size());
  if (meter) meter->add_work(total);
  for (int64_t B : axes.batch)
    for (int64_t H : axes.heads)
      for (int64_t S : axes.seq)
        for (int64_t D : axes.head_dim)
          for (const std::string& dt : dtypes) {
            AttentionProblem p;
            p.batch = B, p.heads_q = H, p.heads_kv = axes.kv_heads ? axes.kv_heads : H, p.head_dim = D;
            p.q_len = p.kv_len = S;
            p.dtype = dt == "bf16" ? ElemType::BF16 : dt == "f16" ? ElemType::F16 : ElemType::F32;
            nlohmann::json cfg = {{"pattern", "nsa"}, {"spec", spec}, {"batch", B}, {"heads", H}, {"heads_kv", p.heads_kv},
                                  {"seq", S}, {"head_dim", D}, {"causal", true}, {"pass", "fwd"}, {"dtype", dt}};
            auto skip = [&](const std::string& why) {
              cfg["reason"] = why;
              doc.skipped.push_back(cfg);
              if (meter) meter->step();
            };
            if (H % p.heads_kv) {
              skip("heads " + std::to_string(H) + " is not a multiple of --kv-heads " + std::to_string(p.heads_kv));
              continue;
            }
            if (cuda) {
              try {
                if (p.dtype == ElemType::F32) throw UsageError("the cuda backend takes --dtype bf16 or f16");
                nsa_gpu()->check(p, np, AttentionOptions{});
              } catch (const UsageError& e) {
                skip(std::string("cuda backend: ") + e.what());
                continue;
              }
            }
            const std::vector<float> q = uniform(B * S * H * D, seed * 3 + 1), k = uniform(B * S * p.heads_kv * D, seed * 3 + 2),
                                     v = uniform(B * S * p.heads_kv * D, seed * 3 + 3);
            NsaBranches last;
            TimingStats st, ds;
            nlohmann::json extra;
            BlockMask dense = dense_mask_like(MaskShape{1, H, S, S, 128, 128}, true);
            if (cuda) {
              const std::vector<uint16_t> q16 = to_16bit(q, p.dtype), k16 = to_16bit(k, p.dtype), v16 = to_16bit(v, p.dtype);
              const AttentionInputs in{q16.data(), k16.data(), v16.data(), nullptr};
              AttentionOptions aopt;
              aopt.backend = Backend::Cuda;
              aopt.kernel = gpu->kernel();
              last = nsa_gpu()->forward(p, np, in, nullptr, aopt);  // the masks, for the pair counts
              NsaGpuTiming t = nsa_gpu()->time(p, np, in, nullptr, aopt, timing);
              st = t.total;
              extra = {{"kernel", "nsa-gpu (branches: " + t.kernel + ")"}, {"selection_ms", t.selection.median_ms},
                       {"branches_ms", t.branches.median_ms}, {"gate_ms", t.gate.median_ms}};
              if (t.sm_clock_mhz > 0) extra["sm_clock_mhz"] = t.sm_clock_mhz;
              ds = gpu->prepare(p, dense, in, Pass::Fwd)->time(timing);
            } else {
              st = measure(
                  [&] {
                    double t0 = now_ms();
                    last = nsa_forward(p, q.data(), k.data(), v.data(), np, nullptr);
                    return now_ms() - t0;
                  },
                  timing);
              ds = measure(
                  [&] {
                    double t0 = now_ms();
                    attention_forward(p, dense, AttentionInputs{q.data(), k.data(), v.data(), nullptr});
                    return now_ms() - t0;
                  },
                  timing);
              extra = {{"kernel", "nsa"}};
            }
            const MaskStats ss = mask_stats(last.select_mask), ws = mask_stats(last.window_mask), dsm = mask_stats(dense);
            // Compressed pairs: query t sees min(Nc, (t+1-block)/stride + 1) blocks once t+1 >= block.
            int64_t cmp_pairs = 0;
            for (int64_t t = np.block - 1; t < S; ++t)
              cmp_pairs += std::min(last.compressed_blocks, (t + 1 - np.block) / np.stride + 1);
            cmp_pairs *= B * H;
            const int64_t pairs = ss.computed_pairs + ws.computed_pairs + cmp_pairs, dense_pairs = dsm.computed_pairs * B;
            const double flops = 4.0 * double(D) * double(pairs), dflops = 4.0 * double(D) * double(dense_pairs);
            nlohmann::json r = cfg;
            r.update({{"impl", "bsattn"}, {"backend", cuda ? "cuda" : "cpu"}, {"block", np.select},
                      {"density", ss.density}, {"pair_density", double(pairs) / double(dense_pairs)},
                      {"kept_blocks", ss.kept_blocks}, {"flops_computed", flops}, {"flops_dense_equiv", dflops},
                      {"median_ms", st.median_ms}, {"mean_ms", st.mean_ms}, {"min_ms", st.min_ms}, {"max_ms", st.max_ms},
                      {"rel_noise", st.rel_noise}, {"samples", st.samples}, {"noise_met", st.noise_met},
                      {"tflops_effective", tflops(flops, st.median_ms)}, {"tflops_dense_equiv", tflops(dflops, st.median_ms)},
                      {"speedup_vs_dense", st.median_ms > 0 ? ds.median_ms / st.median_ms : 0.0},
                      {"dense_median_ms", ds.median_ms}, {"seed", seed}});
            r.update(extra);
            doc.records.push_back(r);
            if (meter) meter->step();
          }
  return doc;
}

}  // namespace bsattn::bench
