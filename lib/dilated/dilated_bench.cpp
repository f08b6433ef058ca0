#include "lib/dilated/dilated_bench.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "lib/bench/results.h"
#include "lib/dilated/dilated_gpu.h"
#include "lib/error.h"
#include "lib/npy.h"
#include "lib/quality/quality.h"
#include "lib/rng.h"
#include "lib/spec.h"

namespace bsattn::dilated {

std::vector<DilatedSpec> parse_dilated_list(const std::string& text, bool causal, const std::string& what) {
  std::vector<DilatedSpec> out;
  for (const std::string& item : split_list(text, what, "2048:1,4096:2;1024:1", ';'))
    out.push_back(parse_dilated(item, causal, what));
  return out;
}

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

ElemType dtype_of(const std::string& s) {
  if (s == "f32") return ElemType::F32;
  if (s == "f16") return ElemType::F16;
  if (s == "bf16") return ElemType::BF16;
  throw UsageError("--dtype: '" + s + "' (allowed: bf16, f16, f32)");
}

// Seeded uniform values in [-1, 1) in the element type (never zeros: zeros can run faster).
std::vector<uint8_t> random_elems(int64_t n, ElemType t, uint64_t seed) {
  std::vector<uint8_t> buf(size_t(n) * elem_size(t));
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float x = float(rng.uniform() * 2.0 - 1.0);
    if (t == ElemType::F32) reinterpret_cast<float*>(buf.data())[i] = x;
    else if (t == ElemType::F16) reinterpret_cast<uint16_t*>(buf.data())[i] = float_to_half(x);
    else reinterpret_cast<uint16_t*>(buf.data())[i] = float_to_bf16(x);
  }
  return buf;
}

std::vector<uint8_t> permute_rows(const std::vector<uint8_t>& src, size_t row_bytes, int64_t batch,
                                  const curves::Perm& perm) {
  return permute_token_rows(src.data(), row_bytes, batch, perm);
}

}  // namespace

bench::BenchDoc run_dilated_bench(const DilatedBenchPlan& plan, bench::BenchBackend& backend,
                                  const DilatedBenchOptions& opt, nlohmann::json context) {
  opt.timing.validate();
  bench::BenchDoc doc;
  nlohmann::json device = backend.device_context();
  for (auto& [k, v] : device.items()) context[k] = v;
  context["backend"] = backend.name();
  context["kernel"] = backend.kernel();
  context["timing"] = opt.timing.to_json();
  context["seed"] = opt.seed;
  bench::Ceilings ceil = backend.ceilings(opt.timing);
  context["ceilings"] = ceil.measured ? nlohmann::json{{"gemm_bf16_tflops", ceil.gemm_tflops}, {"d2d_copy_gbs", ceil.copy_gbs}}
                                      : nlohmann::json();
  nlohmann::json specs = nlohmann::json::array();
  for (auto& s : plan.specs) specs.push_back(s.to_json());
  context["dilated"] = {{"specs", specs}, {"orders", plan.orders}, {"grid", plan.grid}, {"text", plan.text}};
  const bool cpu = backend.name() == "cpu";
  const std::vector<std::string> orders = plan.orders.empty() ? std::vector<std::string>{"standard"} : plan.orders;
  curves::Grid grid;
  if (!plan.grid.empty()) grid = curves::parse_grid(plan.grid, "--grid");

  const bench::SweepAxes& a = plan.axes;
  size_t total = a.seq.size() * a.head_dim.size() * a.heads.size() * a.batch.size() * a.block.size() * a.dtype.size() *
                 a.pass.size() * plan.specs.size() * orders.size(), index = 0;
  std::map<std::string, double> dense_ms;  // dense baseline per shape
  std::string inputs_key;                   // the shape qi, ki, vi were drawn for
  std::vector<uint8_t> qi, ki, vi;
  for (int64_t S : a.seq)
    for (int64_t D : a.head_dim)
      for (int64_t H : a.heads)
        for (int64_t B : a.batch)
          for (int64_t block : a.block)
            for (const std::string& dt : a.dtype)
              for (const std::string& pass_s : a.pass)
                for (const DilatedSpec& spec : plan.specs)
                  for (const std::string& order : orders) {
                    ++index;
                    AttentionProblem p;
                    p.batch = B, p.q_len = p.kv_len = S, p.heads_q = H, p.heads_kv = a.kv_heads ? a.kv_heads : H;
                    p.head_dim = D;
                    p.dtype = dtype_of(dt);
                    const bench::Pass pass = bench::parse_pass(pass_s);
                    const std::string spec_s = spec.str() + ";order=" + order;
                    nlohmann::json r = {{"impl", "bsattn"}, {"backend", backend.name()}, {"pattern", "dilated-attn " + spec_s},
                                        {"spec", spec_s}, {"causal", spec.causal}, {"batch", B}, {"heads", H},
                                        {"heads_kv", p.heads_kv}, {"seq", S}, {"head_dim", D}, {"block", block},
                                        {"dtype", dt}, {"pass", bench::pass_name(pass)}, {"seed", opt.seed}};
                    auto skip = [&](const std::string& why) {
                      nlohmann::json j = r;
                      j["reason"] = why;
                      doc.skipped.push_back(j);
                    };
                    if (opt.progress)
                      opt.progress("[" + std::to_string(index) + "/" + std::to_string(total) + "] dilated " + spec_s +
                                   (spec.causal ? " causal" : "") + " S=" + std::to_string(S) + " H=" + std::to_string(H) +
                                   " D=" + std::to_string(D) + " B=" + std::to_string(B) + " " + dt + " " + pass_s);
                    curves::Perm perm;
                    try {
                      check_problem(p, spec);
                      if (p.heads_q % p.heads_kv) throw UsageError("heads must be a multiple of kv_heads");
                      if (cpu && pass != bench::Pass::Fwd) throw UsageError("the cpu backend times the forward only");
                      if (order != "standard") {
                        if (plan.grid.empty()) throw UsageError("--order needs --grid");
                        curves::SequenceLayout lay;
                        lay.grid = grid;
                        lay.text = plan.text;
                        if (lay.length() != S)
                          throw UsageError("text + grid = " + std::to_string(lay.length()) + " tokens, not seq " + std::to_string(S));
                        perm = curves::sequence_order(curves::parse_order(order, grid, block, "--order"), lay);
                      }
                    } catch (const UsageError& e) {
                      skip(e.what());
                      continue;
                    }
                    const size_t es = elem_size(p.dtype), qrow = size_t(H * D) * es, krow = size_t(p.heads_kv * D) * es;
                    // The same seeded inputs for every configuration of a shape, drawn once (seconds at S = 131072).
                    const std::string ikey = std::to_string(B) + "/" + std::to_string(S) + "/" + std::to_string(H) + "/" +
                                             std::to_string(p.heads_kv) + "/" + std::to_string(D) + "/" + dt;
                    if (inputs_key != ikey) {
                      inputs_key = ikey;
                      qi = random_elems(B * S * H * D, p.dtype, mix_seed(opt.seed, 1));
                      ki = random_elems(B * S * p.heads_kv * D, p.dtype, mix_seed(opt.seed, 2));
                      vi = random_elems(B * S * p.heads_kv * D, p.dtype, mix_seed(opt.seed, 3));
                    }
                    const std::vector<uint8_t>& q = qi;
                    const std::vector<uint8_t>& k = ki;
                    const std::vector<uint8_t>& v = vi;
                    const int64_t pairs = dilated_pairs(p, spec);
                    const int64_t dense_pairs = B * H * (spec.causal ? S * (S + 1) / 2 : S * S);
                    const double mult = pass == bench::Pass::Fwd ? 1.0 : pass == bench::Pass::Bwd ? 2.5 : 3.5;
                    bench::TimingStats st;
                    std::string kernel;
                    double clock = 0;
                    nlohmann::json parts;
                    try {
                      if (cpu) {
                        // End to end on the host: the order, the branches (permutation, forward), the merge, back.
                        DilatedOptions dopt;
                        dopt.block_q = dopt.block_kv = block;
                        st = bench::measure(
                            [&]() {
                              double t0 = now_s();
                              std::vector<uint8_t> qo, ko, vo;
                              AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
                              if (!perm.empty()) {
                                qo = permute_rows(q, qrow, B, perm), ko = permute_rows(k, krow, B, perm),
                                vo = permute_rows(v, krow, B, perm);
                                in = AttentionInputs{qo.data(), ko.data(), vo.data(), nullptr};
                              }
                              DilatedResult res = dilated_attention(p, spec, in, nullptr, dopt);
                              if (!perm.empty()) res.out = curves::unapply_token_order(res.out, B, S, H * D, perm);
                              return (now_s() - t0) * 1e3;
                            },
                            opt.timing);
                        kernel = "reference (end to end)";
                      } else {
                        std::vector<uint8_t> qo = q, ko = k, vo = v;
                        if (!perm.empty())
                          qo = permute_rows(q, qrow, B, perm), ko = permute_rows(k, krow, B, perm), vo = permute_rows(v, krow, B, perm);
                        std::vector<BranchPlan> plans;
                        for (const Branch& br : spec.branches) plans.push_back(plan_branch(p, br, spec.causal, block, block));
                        if (pass == bench::Pass::Fwd) {
                          // Everything on the GPU from the inputs in the order to the merged output
                          // (lib/dilated/dilated_gpu.h): the gathers into the residue-form branches' orders
                          // (none when the rates divide S), the branches, the merge; each part also alone.
                          if (!dilated_gpu()) throw UsageError("this build has no GPU dilated pipeline");
                          AttentionOptions aopt;
                          aopt.backend = Backend::Cuda;
                          aopt.kernel = backend.kernel();
                          DilatedGpuTiming t =
                              dilated_gpu()->time(p, plans, {qo.data(), ko.data(), vo.data(), nullptr}, aopt, opt.timing);
                          st = t.total;
                          parts = {{"gather_ms", t.gather.median_ms}, {"branches_ms", t.branches.median_ms},
                                   {"merge_ms", t.merge.median_ms}};
                          clock = t.sm_clock_mhz;
                          const auto gathered = std::count_if(plans.begin(), plans.end(),
                                                              [](const BranchPlan& b) { return !b.strided; });
                          kernel = t.kernel + " x " + std::to_string(spec.branches.size()) + " branches + " +
                                   (gathered ? std::to_string(gathered) + " gathered" : std::string("no gathers")) +
                                   " + LSE merge (all on the GPU)";
                        } else {
                          // Backward: each branch's pass on the device, summed (the merge has no backward kernel).
                          double noise = 0;
                          int64_t samples = -1;
                          bool met = true;
                          for (const BranchPlan& bp : plans) {
                            // Strided branches read the inputs as they are; the residue form, permuted.
                            std::vector<uint8_t> qb = qo, kb = ko, vb = vo;
                            if (!bp.strided)
                              qb = permute_rows(qo, qrow, B, bp.perm), kb = permute_rows(ko, krow, B, bp.perm),
                              vb = permute_rows(vo, krow, B, bp.perm);
                            auto prepared = backend.prepare(bp.problem, bp.mask, {qb.data(), kb.data(), vb.data(), nullptr}, pass);
                            bench::TimingStats s = prepared->time(opt.timing);
                            st.median_ms += s.median_ms, st.mean_ms += s.mean_ms, st.min_ms += s.min_ms, st.max_ms += s.max_ms;
                            noise = std::max(noise, s.rel_noise);
                            samples = samples < 0 ? s.samples : std::min(samples, s.samples);
                            met = met && s.noise_met;
                            clock = prepared->sm_clock_mhz();
                            kernel = prepared->kernel();
                          }
                          st.rel_noise = noise, st.samples = samples, st.noise_met = met;
                          kernel += " x " + std::to_string(spec.branches.size()) + " branches (summed; host permutation not timed)";
                        }
                      }
                    } catch (const UsageError& e) {
                      skip(std::string(backend.name()) + " backend: " + e.what());
                      continue;
                    }
                    // Dense baseline of the same shape, timed once per shape.
                    const std::string dkey = std::to_string(B) + "/" + std::to_string(S) + "/" + std::to_string(H) + "/" +
                                             std::to_string(p.heads_kv) + "/" + std::to_string(D) + "/" + dt + "/" +
                                             pass_s + "/" + std::to_string(spec.causal) + "/" + std::to_string(block);
                    if (!dense_ms.count(dkey)) {
                      try {
                        MaskShape ms;
                        ms.heads = H, ms.q_len = ms.kv_len = S, ms.block_q = ms.block_kv = block;
                        BlockMask dm = dense_mask_like(ms, spec.causal);
                        auto prepared = backend.prepare(p, dm, {q.data(), k.data(), v.data(), nullptr}, pass);
                        dense_ms[dkey] = prepared->time(opt.timing).median_ms;
                      } catch (const UsageError&) {
                        dense_ms[dkey] = 0;
                      }
                    }
                    const double flops = 4.0 * double(D) * double(pairs) * mult;
                    const double dflops = 4.0 * double(D) * double(dense_pairs) * mult;
                    r["kernel"] = kernel;
                    r["density"] = double(pairs) / double(dense_pairs);
                    r["pair_density"] = double(pairs) / double(dense_pairs);
                    r["flops_computed"] = flops;
                    r["flops_dense_equiv"] = dflops;
                    r["median_ms"] = st.median_ms;
                    r["mean_ms"] = st.mean_ms;
                    r["min_ms"] = st.min_ms;
                    r["max_ms"] = st.max_ms;
                    r["rel_noise"] = st.rel_noise;
                    r["samples"] = st.samples;
                    r["noise_met"] = st.noise_met;
                    r["tflops_effective"] = bench::tflops(flops, st.median_ms);
                    r["tflops_dense_equiv"] = bench::tflops(dflops, st.median_ms);
                    r["mask_build_kind"] = "none";
                    r["mask_build_ms"] = 0.0;
                    if (clock > 0) r["sm_clock_mhz"] = clock;
                    for (auto& [name, ms] : parts.items()) r[name] = ms;
                    if (ceil.measured && ceil.gemm_tflops > 0) r["gemm_fraction"] = bench::tflops(flops, st.median_ms) / ceil.gemm_tflops;
                    if (dense_ms[dkey] > 0) {
                      r["dense_median_ms"] = dense_ms[dkey];
                      r["speedup_vs_dense"] = st.median_ms > 0 ? dense_ms[dkey] / st.median_ms : 0.0;
                    }
                    doc.records.push_back(bench::make_record(r));
                  }
  doc.context = context;
  return doc;
}

}  // namespace bsattn::dilated
