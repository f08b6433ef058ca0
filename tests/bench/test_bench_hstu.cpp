// bench --score silu / --rab / --gate-u (issue 21): what the harness hands a backend for HSTU
// configurations (the SiLU problem with n = seq, the seeded bias tables and U), what the records say, and
// the usage errors. A recording backend stands in for the GPU: it times nothing real.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "lib/bench/accounting.h"
#include "lib/bench/results.h"
#include "lib/bench/runner.h"
#include "lib/bench/sweep.h"
#include "lib/error.h"
#include "patterns/registry.h"

using namespace bsattn;
using namespace bsattn::bench;

namespace {

struct Seen {
  AttentionProblem p;
  RelativeBiasTables rab;  // copied (the pointers stay valid while the run lasts)
  bool has_rab = false, has_u = false;
  std::vector<double> timestamps;
};

// Records what prepare() receives; each "timing" is a fixed 1 ms.
class RecordingBackend : public BenchBackend {
 public:
  std::vector<Seen> seen;
  std::string name() const override { return "cuda"; }
  std::string kernel() const override { return ""; }
  BackendCaps caps() const override { return {}; }
  nlohmann::json device_context() override { return {{"device", "test"}}; }
  Ceilings ceilings(const TimingOptions&) override { return {}; }
  std::unique_ptr<PreparedCase> prepare(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in,
                                        Pass) override {
    p.validate(m);
    Seen s;
    s.p = p;
    s.has_rab = in.rab != nullptr;
    s.has_u = in.gate_u != nullptr;
    if (in.rab) {
      s.rab = *in.rab;
      if (in.rab->timestamps) s.timestamps.assign(in.rab->timestamps, in.rab->timestamps + p.total_q());
    }
    seen.push_back(s);
    struct Case : PreparedCase {
      TimingStats time(const TimingOptions&) override {
        TimingStats t;
        t.median_ms = t.mean_ms = t.min_ms = t.max_ms = 1.0;
        t.samples = 2;
        t.noise_met = true;
        return t;
      }
    };
    return std::make_unique<Case>();
  }
};

SweepAxes hstu_axes() {
  SweepAxes a;
  a.seq = {256};
  a.head_dim = {64};
  a.heads = {2};
  a.block = {64};
  a.density = {1.0};
  a.pattern = {"causal"};
  return a;
}

BlockMask make(const BenchConfig& c, uint64_t seed) { return generate_mask(c.mask_shape(), c.causal, seed, c.spec); }

}  // namespace

TEST_CASE("bench --score softmax,silu --rab pos+ts --gate-u: the SiLU problem, the seeded tables and U, the records") {
  SweepAxes a = hstu_axes();
  a.set("score", "softmax,silu");
  a.set("rab", "pos+ts");
  a.gate_u = true;
  RecordingBackend backend;
  SweepPlan plan = expand_sweep(a, backend.caps());
  REQUIRE(plan.configs.size() == 2);
  BenchRunOptions ro;
  ro.seed = 5;
  BenchDoc doc = run_bench(plan, backend, make, ro, {});
  REQUIRE(doc.records.size() == 2);
  REQUIRE(backend.seen.size() == 2);  // each configuration is its own dense (causal) baseline
  int silu = 0;
  for (const Seen& s : backend.seen) {
    if (s.p.score == ScoreFn::Softmax) {
      CHECK_FALSE(s.has_rab);
      CHECK_FALSE(s.has_u);
      continue;
    }
    ++silu;
    CHECK(s.p.silu_n == 256);  // HSTU's n: the sequence length
    REQUIRE(s.has_rab);
    CHECK(s.has_u);
    CHECK(s.rab.pos != nullptr);
    CHECK(s.rab.pos_len == 256);
    CHECK(s.rab.ts != nullptr);
    CHECK(s.rab.ts_buckets == 129);
    CHECK(s.rab.dense == nullptr);
    REQUIRE(s.timestamps.size() == 256);
    std::set<double> distinct(s.timestamps.begin(), s.timestamps.end());
    for (size_t i = 1; i < s.timestamps.size(); ++i) CHECK(s.timestamps[i] >= s.timestamps[i - 1]);
    CHECK(distinct.size() > 128);  // gaps, not one repeated value
  }
  CHECK(silu == 1);
  for (auto& r : doc.records) {
    const bool is_silu = r["score"] == "silu";
    CHECK(r["rab"] == (is_silu ? "pos+ts" : "none"));
    CHECK(r["gate_u"] == is_silu);
    // FLOPs as softmax: 4 * D * pairs (causal 256 x 256 in blocks of 64: 4 diagonal blocks of 64*65/2 pairs
    // and 6 full ones), per head.
    const double pairs = 2.0 * (4 * 64 * 65 / 2 + 6 * 64 * 64);
    CHECK(r["flops_computed"].get<double>() == doctest::Approx(4.0 * 64 * pairs));
  }
  CHECK(to_markdown(doc).find("causal silu+pos+ts+u") != std::string::npos);
  // The CSV carries the new columns and reads back.
  auto back = records_from_csv(to_csv(doc), "test");
  REQUIRE(back.size() == 2);
  CHECK(back[0]["score"] == doc.records[0]["score"]);
  CHECK(back[1]["rab"] == doc.records[1]["rab"]);
}

TEST_CASE("bench --score silu without --rab: no tables; each bias choice is its own configuration key") {
  SweepAxes a = hstu_axes();
  a.set("score", "silu");
  RecordingBackend backend;
  BenchDoc doc = run_bench(expand_sweep(a, backend.caps()), backend, make, {}, {});
  REQUIRE(backend.seen.size() == 1);
  CHECK(backend.seen[0].p.score == ScoreFn::Silu);
  CHECK_FALSE(backend.seen[0].has_rab);
  CHECK_FALSE(backend.seen[0].has_u);
  BenchConfig c = expand_sweep(a, backend.caps()).configs.at(0);
  BenchConfig d = c;
  d.rab = "pos";
  CHECK(c.dense_key() != d.dense_key());
  c.score = ScoreFn::Softmax, c.rab = "none";
  CHECK(c.dense_key() != d.dense_key());
}

TEST_CASE("bench --rab none,pos,ts,pos+ts: one silu configuration per bias choice, softmax once") {
  SweepAxes a = hstu_axes();
  a.set("score", "softmax,silu");
  a.set("rab", "none,pos,ts,pos+ts");
  RecordingBackend backend;
  SweepPlan plan = expand_sweep(a, backend.caps());
  REQUIRE(plan.configs.size() == 5);
  std::vector<std::string> silu_rabs;
  int softmax = 0;
  for (const BenchConfig& c : plan.configs) {
    if (c.score == ScoreFn::Softmax) {
      ++softmax;
      CHECK(c.rab == "none");
    } else {
      silu_rabs.push_back(c.rab);
    }
  }
  CHECK(softmax == 1);
  CHECK(silu_rabs == std::vector<std::string>{"none", "pos", "ts", "pos+ts"});
  BenchDoc doc = run_bench(plan, backend, make, {}, {});
  REQUIRE(backend.seen.size() == 5);
  int with_pos = 0, with_ts = 0;
  for (const Seen& s : backend.seen) {
    with_pos += s.has_rab && s.rab.pos != nullptr;
    with_ts += s.has_rab && s.rab.ts != nullptr;
  }
  CHECK(with_pos == 2);  // pos, pos+ts
  CHECK(with_ts == 2);   // ts, pos+ts
  CHECK(a.to_json()["rab"] == nlohmann::json::array({"none", "pos", "ts", "pos+ts"}));
}

TEST_CASE("bench HSTU options: bad values and --rab / --gate-u without silu are usage errors") {
  SweepAxes a = hstu_axes();
  CHECK_THROWS_AS(a.set("score", "relu"), UsageError);
  CHECK_THROWS_AS(a.set("rab", "dense"), UsageError);
  CHECK_THROWS_AS(a.set("rab", "pos,dense"), UsageError);
  CHECK_THROWS_AS(a.set("rab", "pos,"), UsageError);
  a.set("rab", "ts");
  CHECK_THROWS_AS(expand_sweep(a, BackendCaps{}), UsageError);
  a.set("rab", "none,ts");
  CHECK_THROWS_AS(expand_sweep(a, BackendCaps{}), UsageError);  // a bias among the values still needs silu
  a.rab = {"none"}, a.gate_u = true;
  CHECK_THROWS_AS(expand_sweep(a, BackendCaps{}), UsageError);
  a.merge_json({{"score", "silu"}, {"rab", "pos"}, {"gate_u", true}}, "cfg");
  CHECK(a.score == std::vector<std::string>{"silu"});
  CHECK(a.rab == std::vector<std::string>{"pos"});
  CHECK(a.to_json()["gate_u"] == true);
  CHECK_THROWS_AS(a.merge_json({{"gate_u", "yes"}}, "cfg"), UsageError);
}
