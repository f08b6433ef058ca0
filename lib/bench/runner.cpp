#include "lib/bench/runner.h"

#include "lib/varlen/varlen.h"
#include "lib/build_info.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "lib/backend.h"
#include "lib/bench/accounting.h"
#include "lib/error.h"
#include "lib/mask_io.h"
#include "lib/mask_stats.h"
#include "lib/npy.h"
#include "lib/rng.h"

namespace bsattn::bench {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class CpuCase : public PreparedCase {
 public:
  CpuCase(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in) : p_(p), m_(m), in_(in) {}
  TimingStats time(const TimingOptions& opt) override {
    auto sample = [&]() {
      double t0 = now_s();
      // The CPU backend's entry itself (attention_forward dispatches to it): bsattn_reference follows
      // bsattn_bench on the link line, bsattn_core's dispatcher does not.
      AttentionResult r = cpu_attention_forward(p_, m_, in_);
      double t1 = now_s();
      if (r.out.empty()) throw RuntimeFailure("CPU attention returned no output");
      return (t1 - t0) * 1e3;
    };
    return measure(sample, opt);
  }

 private:
  AttentionProblem p_;
  const BlockMask& m_;
  AttentionInputs in_;
};

class CpuBackend : public BenchBackend {
 public:
  std::string name() const override { return "cpu"; }
  std::string kernel() const override { return "reference"; }
  BackendCaps caps() const override {
    BackendCaps c;
    c.max_computed_flops = 2e11;  // about a second or more per sample in the reference
    return c;
  }
  nlohmann::json device_context() override {
    return {{"device", "cpu"}, {"cpu_threads", std::thread::hardware_concurrency()}};
  }
  Ceilings ceilings(const TimingOptions&) override { return {}; }
  std::unique_ptr<PreparedCase> prepare(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in,
                                        Pass pass) override {
    if (pass != Pass::Fwd) throw UsageError(std::string("pass ") + pass_name(pass) + " is timed on the cuda backend only");
    if (in.rab || in.gate_u) throw UsageError("HSTU's bias (--rab) and u-gating (--gate-u) are timed on the cuda backend only");
    p.validate(m);
    return std::make_unique<CpuCase>(p, m, in);
  }
};

// Seeded uniform inputs in [-1, 1) in the problem's element type (never zeros: zeros can run faster).
struct InputSet {
  std::string key;
  std::vector<uint8_t> q, k, v;
};

void fill_random(std::vector<uint8_t>& buf, int64_t n, ElemType t, uint64_t seed) {
  buf.resize(size_t(n) * elem_size(t));
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    float x = float(rng.uniform() * 2.0 - 1.0);
    if (t == ElemType::F32) reinterpret_cast<float*>(buf.data())[i] = x;
    else if (t == ElemType::F16) reinterpret_cast<uint16_t*>(buf.data())[i] = float_to_half(x);
    else reinterpret_cast<uint16_t*>(buf.data())[i] = float_to_bf16(x);
  }
}

void make_inputs(InputSet& s, const AttentionProblem& p, uint64_t seed) {
  std::string key = std::to_string(p.batch) + "/" + std::to_string(p.q_len) + "/" + std::to_string(p.kv_len) + "/" +
                    std::to_string(p.heads_q) + "/" + std::to_string(p.heads_kv) + "/" + std::to_string(p.head_dim) +
                    "/" + elem_type_name(p.dtype) + "/" + std::to_string(p.total_q());
  if (s.key == key) return;  // same shape: reuse (drawn once per shape; the mask changes, not the data)
  s.key = key;
  int64_t nq = p.total_q() * p.heads_q * p.head_dim, nk = p.total_k() * p.heads_kv * p.head_dim;
  std::thread tq([&] { fill_random(s.q, nq, p.dtype, mix_seed(seed, 1)); });
  std::thread tk([&] { fill_random(s.k, nk, p.dtype, mix_seed(seed, 2)); });
  fill_random(s.v, nk, p.dtype, mix_seed(seed, 3));
  tq.join();
  tk.join();
}

// HSTU's bias tables and U for a silu configuration (SweepAxes::rab, gate_u), seeded, drawn once per shape:
// per-head tables uniform in [-1, 1), the position table as long as the sequence, 129 timestamp buckets
// (HSTU's 128 + 1), timestamps increasing by gaps of 0 to ~2 years (many buckets), U as the inputs.
struct HstuInputs {
  std::string key;
  std::vector<float> pos, ts;
  std::vector<double> timestamps;
  std::vector<uint8_t> u;
  RelativeBiasTables tables;
};

void make_hstu_inputs(HstuInputs& h, const BenchConfig& c, const AttentionProblem& p, uint64_t seed) {
  const std::string key = std::to_string(p.heads_q) + "/" + std::to_string(p.q_len) + "/" + std::to_string(p.total_q()) +
                          "/" + std::to_string(p.head_dim) + "/" + elem_type_name(p.dtype);
  if (h.key != key) {
    h.key = key;
    Rng rng(mix_seed(seed, 0x68737475));
    h.pos.resize(size_t(p.heads_q * p.q_len));
    h.ts.resize(size_t(p.heads_q * 129));
    for (float& x : h.pos) x = float(rng.uniform() * 2 - 1);
    for (float& x : h.ts) x = float(rng.uniform() * 2 - 1);
    h.timestamps.resize(size_t(p.total_q()));
    double t = 1.7e9;
    for (double& x : h.timestamps) x = t, t += std::floor(std::exp(rng.uniform() * 17.9));
    fill_random(h.u, p.total_q() * p.heads_q * p.head_dim, p.dtype, mix_seed(seed, 4));
  }
  h.tables = RelativeBiasTables{};
  if (c.rab == "pos" || c.rab == "pos+ts") h.tables.pos = h.pos.data(), h.tables.pos_len = p.q_len;
  if (c.rab == "ts" || c.rab == "pos+ts")
    h.tables.ts = h.ts.data(), h.tables.ts_buckets = 129, h.tables.timestamps = h.timestamps.data();
}

std::string mask_file_name(const BenchConfig& c, size_t index) {
  std::string s = std::to_string(index) + "_" + c.spec + "_S" + std::to_string(c.seq()) + "_H" +
                  std::to_string(c.shape.heads_q) + "_b" + std::to_string(c.block) + (c.causal ? "_causal" : "");
  for (auto& ch : s)
    if (!(isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-')) ch = '-';
  return s;
}

}  // namespace

std::unique_ptr<BenchBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

std::unique_ptr<BenchBackend> make_cuda_backend(const CudaBenchOptions& opt) {
  return require_gpu_backend().make_bench_backend(opt);
}

BenchDoc run_bench(const SweepPlan& plan, BenchBackend& backend, const MaskFactory& make_mask,
                   const BenchRunOptions& opt, nlohmann::json context) {
  opt.timing.validate();
  BenchDoc doc;
  nlohmann::json device = backend.device_context();  // named: items() of a temporary would dangle
  for (auto& [k, v] : device.items()) context[k] = v;
  context["backend"] = backend.name();
  context["kernel"] = backend.kernel();
  context["timing"] = opt.timing.to_json();
  context["seed"] = opt.seed;
  Ceilings ceil = backend.ceilings(opt.timing);
  context["ceilings"] = ceil.measured ? nlohmann::json{{"gemm_bf16_tflops", ceil.gemm_tflops},
                                                       {"d2d_copy_gbs", ceil.copy_gbs},
                                                       {"detail", ceil.detail}}
                                      : nlohmann::json();
  for (auto& s : plan.skipped) {
    auto j = s.config.to_json();
    j["reason"] = s.reason;
    doc.skipped.push_back(j);
  }
  if (!opt.save_masks_dir.empty()) ::mkdir(opt.save_masks_dir.c_str(), 0755);

  InputSet inputs;
  HstuInputs hstu;
  struct Measured {
    TimingStats attention;
    std::shared_ptr<MaskBuildTiming> mask_build;  // the backend's own mask build (null: none)
    std::string kernel;                           // the variant that ran ("": the backend's)
    double sm_clock_mhz = 0;                      // measured right after the samples (0: unknown)
  };
  std::map<std::string, Measured> measured;  // dense_key|spec -> stats (a mask measured once)
  size_t index = 0;
  if (opt.meter) opt.meter->add_work(int64_t(plan.configs.size()));
  struct StepWhenDone {  // a configuration counts as done however its iteration ends
    ProgressMeter* meter;
    ~StepWhenDone() {
      if (meter) meter->step();
    }
  };
  for (const auto& c : plan.configs) {
    StepWhenDone step_when_done{opt.meter};
    ++index;
    if (opt.progress) opt.progress("[" + std::to_string(index) + "/" + std::to_string(plan.configs.size()) + "] " + c.label());
    uint64_t seed = mix_seed(opt.seed, 0x62656e6368);  // one mask seed for the run: comparable masks
    double t0 = now_s();
    BlockMask mask;
    try {
      mask = make_mask(c, seed);
    } catch (const UsageError& e) {
      auto j = c.to_json();
      j["reason"] = std::string("mask: ") + e.what();
      doc.skipped.push_back(j);
      continue;
    }
    double mask_ms = (now_s() - t0) * 1e3;
    AttentionProblem p = c.problem();
    make_inputs(inputs, p, opt.seed);
    AttentionInputs in;
    in.q = inputs.q.data();
    in.k = inputs.k.data();
    in.v = inputs.v.data();
    if (c.score == ScoreFn::Silu && (c.rab != "none" || c.gate_u)) {
      make_hstu_inputs(hstu, c, p, opt.seed);
      if (hstu.tables.any()) in.rab = &hstu.tables;
      if (c.gate_u) in.gate_u = hstu.u.data();
    }

    auto time_mask = [&](const BenchConfig& cfg, const BlockMask& m) -> Measured {
      std::string key = cfg.dense_key() + "|" + cfg.spec;
      auto it = measured.find(key);
      if (it != measured.end()) return it->second;
      auto prepared = backend.prepare(p, m, in, cfg.pass);
      Measured s;
      s.attention = prepared->time(opt.timing);
      s.sm_clock_mhz = prepared->sm_clock_mhz();
      s.mask_build = prepared->time_mask_build(opt.timing);
      s.kernel = prepared->kernel();
      measured[key] = s;
      return s;
    };

    TimingStats st;
    std::shared_ptr<MaskBuildTiming> device_build;
    std::string kernel = backend.kernel();
    double clock = 0;
    try {
      Measured mm = time_mask(c, mask);
      clock = mm.sm_clock_mhz;
      st = mm.attention;
      device_build = mm.mask_build;
      if (!mm.kernel.empty()) kernel = mm.kernel;
    } catch (const UsageError& e) {
      auto j = c.to_json();
      j["reason"] = std::string(backend.name()) + " backend: " + e.what();
      doc.skipped.push_back(j);
      continue;
    }
    // Dense baseline: the same shape with every (causally visible) block kept.
    BenchConfig dc = c.dense_baseline();
    TimingStats dense;
    double dense_clock = 0;
    bool have_dense = false;
    try {
      BlockMask dm = make_mask(dc, seed);
      Measured dmm = time_mask(dc, dm);
      dense = dmm.attention;
      dense_clock = dmm.sm_clock_mhz;
      have_dense = true;
    } catch (const UsageError&) {
    }

    WorkCount w = attention_work(p, mask, c.pass);
    MaskStats ms = p.varlen() ? varlen_mask_stats(mask, p.cu_seqlens_q) : mask_stats(mask);
    nlohmann::json r = {{"impl", "bsattn"},
                        {"backend", backend.name()},
                        {"kernel", kernel},
                        {"pattern", c.pattern},
                        {"spec", c.spec},
                        {"causal", c.causal},
                        {"batch", c.shape.batch},
                        {"heads", c.shape.heads_q},
                        {"heads_kv", c.shape.heads_kv},
                        {"seq", c.seq()},
                        {"head_dim", c.shape.head_dim},
                        {"block", c.block},
                        {"dtype", elem_type_name(c.dtype)},
                        {"pass", pass_name(c.pass)},
                        {"density_target", c.density_target > 0 ? nlohmann::json(c.density_target) : nlohmann::json()},
                        {"density", ms.density},
                        {"pair_density", w.pair_density()},
                        {"kept_blocks", ms.kept_blocks},
                        {"flops_computed", w.flops_computed},
                        {"flops_dense_equiv", w.flops_dense_equiv},
                        {"bytes_min", w.bytes_min},
                        {"median_ms", st.median_ms},
                        {"mean_ms", st.mean_ms},
                        {"min_ms", st.min_ms},
                        {"max_ms", st.max_ms},
                        {"rel_noise", st.rel_noise},
                        {"samples", st.samples},
                        {"noise_met", st.noise_met},
                        {"tflops_effective", tflops(w.flops_computed, st.median_ms)},
                        {"tflops_dense_equiv", tflops(w.flops_dense_equiv, st.median_ms)},
                        {"gbytes_per_s", gbytes_per_s(w.bytes_min, st.median_ms)},
                        {"mask_generate_ms", mask_ms},
                        {"seed", opt.seed},
                        {"score", c.score == ScoreFn::Silu ? "silu" : "softmax"},
                        {"rab", c.rab},
                        {"gate_u", c.gate_u}};
    // The mask build share: the backend's own build when it has one (GPU: the row CSR the kernel reads,
    // timed like the attention), else the CPU pattern generation.
    // A mask the factory built on the device and timed itself (bench --synthetic: adaptive selection
    // from Q/K with CUDA events, the row CSR included) reports that build instead.
    const nlohmann::json* own = mask.spec.is_object() && mask.spec.contains("mask_build") ? &mask.spec["mask_build"] : nullptr;
    double build_ms = own ? (*own)["ms"].get<double>() : device_build ? device_build->stats.median_ms : mask_ms;
    r["mask_build_ms"] = build_ms;
    r["mask_build_kind"] = own ? (*own)["kind"].get<std::string>()
                               : device_build ? device_build->kind : std::string("cpu_generate_mask");
    if (own) r["mask_build_detail"] = *own;
    r["mask_build_share"] = st.median_ms > 0 ? build_ms / st.median_ms : 0.0;
    if (clock > 0) r["sm_clock_mhz"] = clock;
    if (ceil.measured && ceil.gemm_tflops > 0) r["gemm_fraction"] = tflops(w.flops_computed, st.median_ms) / ceil.gemm_tflops;
    if (have_dense) {
      r["dense_median_ms"] = dense.median_ms;
      r["speedup_vs_dense"] = st.median_ms > 0 ? dense.median_ms / st.median_ms : 0.0;
      if (dense_clock > 0) r["dense_sm_clock_mhz"] = dense_clock;
    }
    if (!opt.save_masks_dir.empty()) {
      std::string name = mask_file_name(c, index);
      save_mask_npy(opt.save_masks_dir + "/" + name + ".npy", mask);
      save_mask_csr(opt.save_masks_dir + "/" + name, mask);
      r["mask_file"] = name;
    }
    if (!st.noise_met && opt.progress) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "  warning: noise %.1f%% over the target %.1f%% after %lld samples",
                    st.rel_noise * 100, opt.timing.noise_target * 100, (long long)st.samples);
      opt.progress(buf);
    }
    doc.records.push_back(make_record(r));
  }
  doc.context = context;
  return doc;
}

nlohmann::json host_context() {
  nlohmann::json j;
  auto run = [](const char* cmd) -> std::string {
    std::string out;
    FILE* f = ::popen(cmd, "r");
    if (!f) return out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    if (::pclose(f) != 0) return "";
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  };
  const char* ec = std::getenv("BSATTN_COMMIT");
  const char* ed = std::getenv("BSATTN_DIRTY");
  std::string commit = ec && *ec ? ec : run("git rev-parse --short=12 HEAD 2>/dev/null");
  if (commit.empty()) commit = bsattn::build_commit();
  j["commit"] = commit;
  j["build_commit"] = bsattn::build_commit();
  if (ed && *ed) j["dirty"] = std::string(ed) == "1" || std::string(ed) == "true";
  else if (!(ec && *ec) && commit != "unknown")
    j["dirty"] = !run("git status --porcelain --untracked-files=no 2>/dev/null").empty();
  else j["dirty"] = nullptr;
  j["bsattn_version"] = BSATTN_VERSION;
#if defined(__clang__)
  j["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  j["compiler"] = std::string("gcc ") + __VERSION__;
#else
  j["compiler"] = "unknown";
#endif
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) j["host"] = host;
  std::time_t t = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  j["date_utc"] = date;
  return j;
}

}  // namespace bsattn::bench
