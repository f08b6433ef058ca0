// The mask-build share of bench records: a backend that builds part of the mask itself (the CUDA
// backend: bitmap -> row CSR on the GPU) reports that build, timed by the harness loop, as
// mask_build_ms / kind / share; the CPU pattern generation is kept in mask_generate_ms. A backend
// without one reports the CPU generation (cpu_generate_mask). A fake backend with fixed sample times
// stands in for the GPU here.
#include <doctest/doctest.h>

#include "lib/bench/results.h"
#include "lib/bench/runner.h"
#include "lib/bench/sweep.h"
#include "lib/error.h"
#include "patterns/registry.h"

using namespace bsattn;
using namespace bsattn::bench;

namespace {

bool has_sparse_head(const BlockMask& m) {
  for (auto& h : m.heads)
    if (h.type == HeadType::Sparse) return true;
  return false;
}

// Attention samples take 2 ms; the mask build 0.05 ms for sparse masks, nothing for dense heads.
class FakeCase : public PreparedCase {
 public:
  explicit FakeCase(bool sparse) : sparse_(sparse) {}
  TimingStats time(const TimingOptions& opt) override {
    return measure([] { return 2.0; }, opt);
  }
  std::unique_ptr<MaskBuildTiming> time_mask_build(const TimingOptions& opt) override {
    auto r = std::make_unique<MaskBuildTiming>();
    if (!sparse_) {
      r->kind = "none";
      return r;
    }
    r->kind = "gpu_row_csr";
    r->stats = measure([] { return 0.05; }, opt);
    ++builds;
    return r;
  }
  static inline int builds = 0;

 private:
  bool sparse_;
};

class FakeGpuBackend : public BenchBackend {
 public:
  std::string name() const override { return "fake"; }
  std::string kernel() const override { return "k"; }
  BackendCaps caps() const override { return {}; }
  nlohmann::json device_context() override { return {{"device", "fake"}}; }
  Ceilings ceilings(const TimingOptions&) override { return {}; }
  std::unique_ptr<PreparedCase> prepare(const AttentionProblem& p, const BlockMask& m, const AttentionInputs&,
                                        Pass) override {
    p.validate(m);
    return std::make_unique<FakeCase>(has_sparse_head(m));
  }
};

BlockMask make_mask(const BenchConfig& c, uint64_t seed) { return generate_mask(c.mask_shape(), c.causal, seed, c.spec); }

SweepPlan small_plan(const BackendCaps& caps) {
  SweepAxes a;
  a.seq = {256};
  a.head_dim = {32};
  a.heads = {2};
  a.block = {64};
  a.density = {0.5, 1.0};
  a.pattern = {"random"};
  return expand_sweep(a, caps);
}

BenchRunOptions quick() {
  BenchRunOptions ro;
  ro.timing.warmup = 0;
  ro.timing.min_samples = 2;
  ro.timing.max_time_s = 0.05;
  return ro;
}

}  // namespace

TEST_CASE("bench: a backend's own mask build is the reported mask-build share; CPU generation kept apart") {
  FakeGpuBackend backend;
  SweepPlan plan = small_plan(backend.caps());
  REQUIRE(plan.configs.size() == 2);
  FakeCase::builds = 0;
  BenchDoc doc = run_bench(plan, backend, make_mask, quick(), {{"argv", {"test"}}});
  REQUIRE(doc.records.size() == 2);
  int sparse = 0, dense = 0;
  for (auto& r0 : doc.records) {
    auto r = make_record(r0);  // every key is a known column
    CHECK(r["median_ms"].get<double>() == doctest::Approx(2.0));
    CHECK(r["mask_generate_ms"].get<double>() > 0);  // the CPU generation time, measured
    if (r["density_target"].get<double>() < 1.0) {
      ++sparse;
      CHECK(r["mask_build_kind"] == "gpu_row_csr");
      CHECK(r["mask_build_ms"].get<double>() == doctest::Approx(0.05));
      CHECK(r["mask_build_share"].get<double>() == doctest::Approx(0.025));
    } else {
      ++dense;  // density 1: the dense pattern, dense heads: nothing to build
      CHECK(r["mask_build_kind"] == "none");
      CHECK(r["mask_build_ms"].get<double>() == 0.0);
      CHECK(r["mask_build_share"].get<double>() == 0.0);
    }
  }
  CHECK(sparse == 1);
  CHECK(dense == 1);
  CHECK(FakeCase::builds == 1);  // the dense baseline's build is not timed; one sparse mask, one build
  // The column survives the JSON and CSV round trips.
  auto back = bench_doc_from_json(to_json(doc), "doc");
  CHECK(back.records[0]["mask_generate_ms"] == doc.records[0]["mask_generate_ms"]);
  auto csv = records_from_csv(to_csv(doc), "doc.csv");
  CHECK(csv[0]["mask_generate_ms"].get<double>() == doctest::Approx(doc.records[0]["mask_generate_ms"].get<double>()));
}

TEST_CASE("bench: the CPU backend reports its pattern generation as the mask build") {
  auto backend = make_cpu_backend();
  SweepPlan plan = small_plan(backend->caps());
  BenchDoc doc = run_bench(plan, *backend, make_mask, quick(), {{"argv", {"test"}}});
  REQUIRE(!doc.records.empty());
  for (auto& r : doc.records) {
    CHECK(r["mask_build_kind"] == "cpu_generate_mask");
    CHECK(r["mask_build_ms"] == r["mask_generate_ms"]);
    CHECK(r["mask_build_share"].get<double>() ==
          doctest::Approx(r["mask_build_ms"].get<double>() / r["median_ms"].get<double>()));
  }
}
