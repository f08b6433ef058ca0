// Sweep expansion and skipping, the bsattn.bench/v1 round trips (JSON and CSV), the CPU backend run,
// and `bsattn bench` spawned as a user would run it on a machine without a GPU.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "lib/atomic_file.h"
#include "lib/bench/accounting.h"
#include "lib/bench/results.h"
#include "lib/bench/runner.h"
#include "lib/bench/sweep.h"
#include "lib/error.h"
#include "lib/mask_stats.h"
#include "patterns/registry.h"

using namespace bsattn;
using namespace bsattn::bench;

TEST_CASE("sweep axes: parsing lists and ranges") {
  SweepAxes a;
  a.set("density", "0.05:0.5:0.05");
  REQUIRE(a.density.size() == 10);
  CHECK(a.density.front() == doctest::Approx(0.05));
  CHECK(a.density.back() == doctest::Approx(0.5));
  a.set("seq", "4096,8192");
  CHECK(a.seq == std::vector<int64_t>{4096, 8192});
  a.set("pattern", "random,local,causal");
  CHECK(a.pattern.size() == 3);
  a.set("pattern", "local:window=4");  // one spec with parameters
  CHECK(a.pattern == std::vector<std::string>{"local:window=4"});
  a.set("pattern", "streaming:sink=1,local=4;random");
  CHECK(a.pattern == std::vector<std::string>{"streaming:sink=1,local=4", "random"});
  CHECK_THROWS_AS(a.set("density", "0"), UsageError);
  CHECK_THROWS_AS(a.set("density", "0.5,1.5"), UsageError);
  CHECK_THROWS_AS(a.set("seq", "0"), UsageError);
  CHECK_THROWS_AS(a.set("dtype", "int8"), UsageError);
  CHECK_THROWS_AS(a.set("pass", "sideways"), UsageError);
  CHECK_THROWS_AS(a.set("colour", "red"), UsageError);
}

TEST_CASE("sweep config file: arrays, strings, unknown keys") {
  SweepAxes a;
  a.merge_json(nlohmann::json::parse(R"({"seq": [256, 512], "density": "0.25:0.75:0.25", "pattern": ["random", "local:window=1"], "dim": 32})"),
               "cfg.json");
  CHECK(a.seq == std::vector<int64_t>{256, 512});
  CHECK(a.density.size() == 3);
  CHECK(a.pattern == std::vector<std::string>{"random", "local:window=1"});
  CHECK(a.head_dim == std::vector<int64_t>{32});
  // The keys to_json writes read back; dim and heads_kv are older names of head_dim and kv_heads.
  a.merge_json(nlohmann::json::parse(R"({"head_dim": [64, 128], "kv_heads": 2})"), "cfg.json");
  CHECK(a.head_dim == std::vector<int64_t>{64, 128});
  CHECK(a.kv_heads == 2);
  a.merge_json(nlohmann::json::parse(R"({"heads_kv": 1})"), "cfg.json");
  CHECK(a.kv_heads == 1);
  SweepAxes back;
  back.merge_json(a.to_json(), "to_json");
  CHECK(back.to_json() == a.to_json());
  a.set("kv-heads", "4");
  CHECK(a.kv_heads == 4);
  a.set("head-dim", "16");
  CHECK(a.head_dim == std::vector<int64_t>{16});
  CHECK_THROWS_AS(a.merge_json(nlohmann::json::parse(R"({"sequence": [1]})"), "cfg.json"), UsageError);
  CHECK_THROWS_AS(a.merge_json(nlohmann::json::parse(R"([1,2])"), "cfg.json"), UsageError);
}

TEST_CASE("mask_spec_for: density to pattern parameters") {
  std::string spec, why;
  bool causal = true;
  REQUIRE(mask_spec_for("random", 0.25, 64, spec, causal, why));
  CHECK(spec == "random:density=0.25");
  CHECK_FALSE(causal);
  REQUIRE(mask_spec_for("causal", 0.3, 64, spec, causal, why));
  CHECK(spec == "random:density=0.3");
  CHECK(causal);
  REQUIRE(mask_spec_for("causal", 1.0, 64, spec, causal, why));
  CHECK(spec == "causal");
  // local: (2w+1)/Mk closest to d: Mk = 64, d = 0.1 -> w = round(5.4/2) = 3 (7 blocks).
  REQUIRE(mask_spec_for("local", 0.1, 64, spec, causal, why));
  CHECK(spec == "local:window=3");
  REQUIRE(mask_spec_for("local", 0.01, 64, spec, causal, why));
  CHECK(spec == "local:window=0");
  REQUIRE(mask_spec_for("local", 1.0, 8, spec, causal, why));
  CHECK(spec == "dense");
  REQUIRE(mask_spec_for("streaming:sink=1,local=2", 0.5, 64, spec, causal, why));
  CHECK(spec == "streaming:sink=1,local=2");
  CHECK_FALSE(mask_spec_for("random", 0.0, 64, spec, causal, why));
  CHECK(why.find("outside (0, 1]") != std::string::npos);
}

TEST_CASE("expand_sweep: the product, with invalid combinations skipped with a reason") {
  SweepAxes a;
  a.seq = {256, 512};
  a.head_dim = {64, 128};
  a.heads = {4};
  a.block = {64, 96};
  a.density = {0.25, 0.5};
  a.pattern = {"random", "dense"};
  a.dtype = {"bf16", "f32"};
  a.pass = {"fwd", "bwd"};
  BackendCaps caps;
  caps.dtypes = {ElemType::BF16};
  caps.blocks = {64, 128};
  SweepPlan plan = expand_sweep(a, caps);
  // Runnable: fwd, bf16, block 64: 2 seq x 2 dim x (2 random densities + 1 dense) = 12.
  CHECK(plan.configs.size() == 12);
  // Product: 2 pass x 2 dtype x 2 seq x 2 dim x 2 block x 3 pattern/density = 96.
  CHECK(plan.configs.size() + plan.skipped.size() == 96);
  int bwd = 0, f32 = 0, block = 0;
  for (auto& s : plan.skipped) {
    bwd += s.reason.find("pass bwd") != std::string::npos;
    f32 += s.reason.find("dtype f32") != std::string::npos;
    block += s.reason.find("block 96") != std::string::npos;
  }
  CHECK(bwd == 48);             // pass is the outermost axis
  CHECK(f32 == 24);             // fwd, f32
  CHECK(block == 12);           // fwd, bf16, block 96: 2 seq x 2 dim x 3
  for (auto& c : plan.configs) {
    CHECK(c.block == 64);
    CHECK(c.dtype == ElemType::BF16);
    if (c.pattern == "dense") CHECK(c.density_target < 0);
  }

  // GQA that does not divide; local densities that give the same window are measured once.
  SweepAxes g;
  g.heads = {6};
  g.kv_heads = 4;
  SweepPlan gp = expand_sweep(g, BackendCaps{});
  CHECK(gp.configs.empty());
  REQUIRE_FALSE(gp.skipped.empty());
  CHECK(gp.skipped[0].reason.find("not a multiple") != std::string::npos);

  SweepAxes l;
  l.seq = {1024};
  l.block = {64};  // Mk = 16: d = 0.2 and 0.22 both give window 1 (3 blocks)
  l.pattern = {"local"};
  l.density = {0.2, 0.22};
  SweepPlan lp = expand_sweep(l, BackendCaps{});
  CHECK(lp.configs.size() == 1);
  REQUIRE(lp.skipped.size() == 1);
  CHECK(lp.skipped[0].reason.find("same mask") != std::string::npos);

  // The CPU work limit.
  SweepAxes big;
  big.seq = {65536};
  BackendCaps cpu;
  cpu.max_computed_flops = 1e9;
  SweepPlan bp = expand_sweep(big, cpu);
  CHECK(bp.configs.empty());
  CHECK(bp.skipped.size() == big.pattern.size() * big.density.size());
}

TEST_CASE("bsattn.bench/v1: JSON and CSV read back to the same records") {
  BenchDoc d;
  d.context = {{"gpu", "Test GPU"}, {"argv", {"bsattn", "bench"}}, {"seed", 7}};
  d.records.push_back(make_record({{"impl", "bsattn"},
                                   {"pattern", "random"},
                                   {"spec", "streaming:sink=1,local=4"},  // a comma inside a cell
                                   {"causal", true},
                                   {"seq", 8192},
                                   {"density", 0.1234567890123},
                                   {"median_ms", 1.0 / 3.0},
                                   {"noise_met", false},
                                   {"mask_file", "say \"hi\""}}));
  d.records.push_back(make_record({{"impl", "sdpa_cudnn"}, {"seq", 32768}, {"tflops_effective", 612.5}}));
  d.skipped.push_back({{"pattern", "local"}, {"reason", "same mask"}});

  nlohmann::json j = to_json(d);
  CHECK(j["schema"] == "bsattn.bench/v1");
  BenchDoc back = bench_doc_from_json(nlohmann::json::parse(j.dump()), "doc");
  REQUIRE(back.records.size() == 2);
  CHECK(back.records == d.records);
  CHECK(back.context == d.context);
  CHECK(back.skipped.size() == 1);

  std::string csv = to_csv(d);
  CHECK(csv.substr(0, 12) == "impl,backend");
  auto rows = records_from_csv(csv, "doc.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == d.records[0]);
  CHECK(rows[1] == d.records[1]);

  std::string md = to_markdown(d);
  CHECK(md.find("| sdpa_cudnn |") != std::string::npos);
  CHECK(md.find("0.123") != std::string::npos);

  // The saved file's form: the run's context above the same table.
  BenchDoc dc = d;
  dc.context["commit"] = "abc1234";
  dc.context["dirty"] = true;
  dc.context["nvidia_smi"] = "Test GPU, 580.1, 1980 MHz";
  dc.context["sms"] = 132;
  dc.context["command"] = "bsattn bench --seq 8192";
  dc.context["ceilings"] = {{"gemm_bf16_tflops", 803.6}, {"d2d_copy_gbs", 4252.2}};
  std::string rep = to_markdown_report(dc);
  CHECK(rep.rfind("# bsattn bench: Test GPU, commit abc1234 (dirty)\n", 0) == 0);
  CHECK(rep.find("132 SMs; nvidia-smi: Test GPU, 580.1, 1980 MHz") != std::string::npos);
  CHECK(rep.find("ceilings: bf16 GEMM 804 TFLOP/s, device copy 4252 GB/s") != std::string::npos);
  CHECK(rep.find("Command: `bsattn bench --seq 8192`") != std::string::npos);
  CHECK(rep.size() > md.size());
  CHECK(rep.compare(rep.size() - md.size(), md.size(), md) == 0);
  // A document as saved by a run: null where a value was unknown.
  dc.context["dirty"] = nullptr;
  dc.context["ceilings"] = {{"gemm_bf16_tflops", nullptr}, {"d2d_copy_gbs", 4252.2}};
  rep = to_markdown_report(dc);
  CHECK(rep.rfind("# bsattn bench: Test GPU, commit abc1234\n", 0) == 0);
  CHECK(rep.find("ceilings: bf16 GEMM - TFLOP/s, device copy 4252 GB/s") != std::string::npos);

  CHECK_THROWS_AS(bench_doc_from_json(nlohmann::json{{"schema", "bsattn.mask/v1"}, {"records", nlohmann::json::array()}}, "x"),
                  UsageError);
  CHECK_THROWS_AS(bench_doc_from_json(nlohmann::json{{"schema", kBenchSchema}, {"records", {{{"colour", 1}}}}}, "x"),
                  UsageError);
  CHECK_THROWS_AS(make_record({{"colour", 1}}), std::invalid_argument);
  CHECK_THROWS_AS(records_from_csv("impl,seq\nbsattn\n", "bad.csv"), UsageError);
}

namespace {

// A small sweep for run_bench (S=256, D=32, 2 heads, block 64) and quick timing.
SweepAxes small_axes(std::vector<double> density, std::vector<std::string> pattern) {
  SweepAxes a;
  a.seq = {256};
  a.head_dim = {32};
  a.heads = {2};
  a.block = {64};
  a.density = std::move(density);
  a.pattern = std::move(pattern);
  return a;
}
BenchRunOptions quick_options() {
  BenchRunOptions ro;
  ro.timing.warmup = 0;
  ro.timing.min_samples = 2;
  ro.timing.max_time_s = 0.05;
  return ro;
}
BlockMask pattern_mask(const BenchConfig& c, uint64_t seed) { return generate_mask(c.mask_shape(), c.causal, seed, c.spec); }

}  // namespace

TEST_CASE("run_bench on the CPU backend: records carry the accounting and the dense baseline") {
  auto backend = make_cpu_backend();
  SweepPlan plan = expand_sweep(small_axes({0.5, 1.0}, {"random", "causal"}), backend->caps());
  REQUIRE(plan.configs.size() == 4);
  BenchRunOptions ro = quick_options();
  ro.seed = 11;
  BenchDoc doc = run_bench(plan, *backend, pattern_mask, ro, {{"argv", {"test"}}});
  REQUIRE(doc.records.size() == 4);
  CHECK(doc.context["backend"] == "cpu");
  CHECK(doc.context["seed"] == 11);
  for (auto& r : doc.records) {
    BenchConfig c;
    for (auto& pc : plan.configs)
      if (pc.pattern == r["pattern"] && pc.density_target == r["density_target"].get<double>()) c = pc;
    BlockMask m = pattern_mask(c, 0);
    // The FLOPs in the record are the accounting function's, on the same mask shape and density.
    WorkCount w = attention_work(c.problem(), m, Pass::Fwd);
    CHECK(r["flops_dense_equiv"].get<double>() == doctest::Approx(w.flops_dense_equiv));
    CHECK(r["median_ms"].get<double>() > 0);
    CHECK(r["samples"].get<int64_t>() >= 2);
    CHECK(r["dense_median_ms"].get<double>() > 0);
    CHECK(r["tflops_effective"].get<double>() ==
          doctest::Approx(r["flops_computed"].get<double>() / (r["median_ms"].get<double>() * 1e-3) / 1e12));
    CHECK(r["mask_build_kind"] == "cpu_generate_mask");
    CHECK(r["gemm_fraction"].is_null());  // no ceiling on the CPU backend: not invented
    if (r["density_target"].get<double>() == 1.0) {
      CHECK(r["flops_computed"].get<double>() == doctest::Approx(r["flops_dense_equiv"].get<double>()));
      CHECK(r["speedup_vs_dense"].get<double>() == doctest::Approx(1.0));  // the same measurement
    }
  }
}

namespace {

// A backend that times like the CPU one and reports, as its measured SM clock, a figure that names the
// mask it ran (1000 + kept blocks), so a record's clocks can be traced to the runs they came from.
class ClockedBackend : public BenchBackend {
 public:
  std::unique_ptr<BenchBackend> cpu = make_cpu_backend();
  std::string name() const override { return "cpu"; }
  std::string kernel() const override { return ""; }
  BackendCaps caps() const override { return cpu->caps(); }
  nlohmann::json device_context() override { return cpu->device_context(); }
  Ceilings ceilings(const TimingOptions& o) override { return cpu->ceilings(o); }
  std::unique_ptr<PreparedCase> prepare(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in,
                                        Pass pass) override {
    struct Case : PreparedCase {
      std::unique_ptr<PreparedCase> inner;
      double clock = 0;
      TimingStats time(const TimingOptions& o) override { return inner->time(o); }
      double sm_clock_mhz() override { return clock; }
    };
    auto c = std::make_unique<Case>();
    c->inner = cpu->prepare(p, m, in, pass);
    c->clock = 1000.0 + double(mask_stats(m).kept_blocks);
    return c;
  }
};

}  // namespace

TEST_CASE("run_bench: every record carries the clock of its own run and of its dense baseline's") {
  ClockedBackend backend;
  // the dense mask is first timed as 0.5's baseline, then reused as a record
  SweepPlan plan = expand_sweep(small_axes({0.5, 1.0, 0.25}, {"random"}), backend.caps());
  REQUIRE(plan.configs.size() == 3);
  BenchDoc doc = run_bench(plan, backend, pattern_mask, quick_options(), {{"argv", {"test"}}});
  REQUIRE(doc.records.size() == 3);
  const double dense_clock = 1000.0 + 2 * 4 * 4;  // 2 heads x 4 x 4 blocks
  for (auto& r : doc.records) {
    CAPTURE(r.dump());
    REQUIRE(r["sm_clock_mhz"].is_number());
    CHECK(r["sm_clock_mhz"].get<double>() == 1000.0 + r["kept_blocks"].get<double>());
    REQUIRE(r["dense_sm_clock_mhz"].is_number());
    CHECK(r["dense_sm_clock_mhz"].get<double>() == dense_clock);
  }
  REQUIRE(doc.records[1]["density_target"].get<double>() == 1.0);
  CHECK(doc.records[1]["sm_clock_mhz"].get<double>() == dense_clock);
  // the column survives the CSV round trip
  auto back = records_from_csv(to_csv(doc), "doc.csv");
  REQUIRE(back.size() == 3);
  CHECK(back[2]["dense_sm_clock_mhz"].get<double>() == dense_clock);
}

namespace {

struct Spawned {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Spawned spawn(const std::string& args, const std::string& tag) {
  std::string out = std::string(BSATTN_TEST_DATA_DIR) + "/bench_" + tag + ".out";
  std::string err = std::string(BSATTN_TEST_DATA_DIR) + "/bench_" + tag + ".err";
  // No GPU in CI; CUDA_VISIBLE_DEVICES= hides one where a GPU exists, so the CPU path is what is tested.
  std::string cmd = "CUDA_VISIBLE_DEVICES= " + std::string(BSATTN_BINARY) + " bench " + args + " >" + out + " 2>" + err;
  Spawned s;
  int rc = std::system(cmd.c_str());
  s.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  s.out = slurp(out);
  s.err = slurp(err);
  return s;
}

}  // namespace

TEST_CASE("bsattn bench with no arguments works without a GPU (CPU backend, one-line notice)") {
  Spawned s = spawn("", "noargs");
  INFO("stderr: " << s.err);
  REQUIRE(s.status == 0);
  CHECK(s.err.find("no usable GPU") != std::string::npos);
  CHECK(std::count(s.err.begin(), s.err.end(), '\n') == 1);  // the notice is one line (no terminal: no progress)
  CHECK(s.out.find("backend cpu") != std::string::npos);
  CHECK(s.out.find("| impl | pattern |") != std::string::npos);
  // The default sweep: 3 patterns x 4 densities, every row of the table one configuration.
  CHECK(std::count(s.out.begin(), s.out.end(), '\n') > 12);
}

TEST_CASE("bsattn bench --json: a valid document; bad usage exits 2") {
  std::string json = std::string(BSATTN_TEST_DATA_DIR) + "/bench_small.json";
  std::string csv = std::string(BSATTN_TEST_DATA_DIR) + "/bench_small.csv";
  Spawned s = spawn("--backend cpu --seq 128 --head-dim 16 --heads 2 --block 32 --density 0.5,1 --pattern random,local "
                    "--min-samples 2 --max-time 0.02 --seed 5 --json " + json + " --csv " + csv + " -q",
                    "small");
  INFO("stderr: " << s.err);
  REQUIRE(s.status == 0);
  CHECK(s.out.empty());
  BenchDoc d = bench_doc_from_json(nlohmann::json::parse(read_text_file(json)), json);
  CHECK(d.records.size() == 4);
  CHECK(d.context["seed"] == 5);
  CHECK(d.context["backend"] == "cpu");
  CHECK(d.context["config"]["seq"] == nlohmann::json::array({128}));
  CHECK(d.context.contains("commit"));
  CHECK(d.context["argv"].size() > 2);
  CHECK(records_from_csv(read_text_file(csv), csv) == d.records);

  CHECK(spawn("--density 0", "bad1").status == 2);
  CHECK(spawn("--backend tpu", "bad2").status == 2);
  CHECK(spawn("--seq 128 --block 32 --dim 16 --pattern nosuch", "bad3").status == 2);  // --dim: --head-dim
  Spawned k = spawn("--backend cpu --kernel fast", "bad4");
  CHECK(k.status == 2);
  CHECK(k.err.find("--kernel") != std::string::npos);
  Spawned c = spawn("--backend cpu --max-ctas 8", "bad5");
  CHECK(c.status == 2);
  CHECK(c.err.find("--max-ctas") != std::string::npos);
  // --heads-kv (hidden) is the older name of --kv-heads: 3 query heads on 2 KV heads is skipped.
  Spawned g = spawn("--backend cpu --seq 128 --head-dim 16 --heads 3 --heads-kv 2 --block 32", "bad6");
  CHECK(g.status == 2);
  CHECK(g.err.find("--kv-heads") != std::string::npos);
}

// Every key the Records table of docs/bench-json.md names is a column make_record accepts (a documented key
// a writer sets but the schema lacks fails only when that writer runs, e.g. on a GPU), and the other way
// round: every column is documented.
TEST_CASE("bsattn.bench/v1: the documented record keys and record_columns() are the same set") {
  std::ifstream f(std::string(BSATTN_SOURCE_DIR) + "/docs/bench-json.md");
  REQUIRE(f.good());
  std::string line;
  bool in_records = false;
  std::set<std::string> documented;
  while (std::getline(f, line)) {
    if (line.rfind("## ", 0) == 0) in_records = line == "## Records";
    if (!in_records || line.rfind("| `", 0) != 0) continue;
    const std::string first = line.substr(1, line.find('|', 1) - 1);  // the first cell: `a`, `b`
    for (size_t a = first.find('`'); a != std::string::npos; a = first.find('`', a)) {
      const size_t b = first.find('`', a + 1);
      if (b == std::string::npos) break;
      documented.insert(first.substr(a + 1, b - a - 1));
      a = b + 1;
    }
  }
  REQUIRE(documented.size() > 20);
  nlohmann::json fields = nlohmann::json::object();
  for (const std::string& k : documented) fields[k] = 1.5;
  nlohmann::json r;
  CHECK_NOTHROW(r = make_record(fields));
  std::set<std::string> columns(record_columns().begin(), record_columns().end());
  for (const std::string& c : columns) CHECK_MESSAGE(documented.count(c), "column not documented: " << c);
  for (const std::string& k : documented) CHECK_MESSAGE(columns.count(k), "documented, not a column: " << k);
}
