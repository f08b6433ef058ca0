// Adaptive selectors: each selector's defining property on its own scores, and the frontier
// orderings a user expects on the structured synthetic inputs.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "lib/error.h"
#include "lib/quality/frontier.h"
#include "lib/tensor/qkv_source.h"
#include "patterns/adaptive/selectors.h"
#include "patterns/mask_source.h"

using namespace bsattn;

namespace {

Qkv synthetic(const std::string& kind, int64_t seq, uint64_t seed) {
  QkvSource s;
  s.synthetic = kind;
  s.sizes = {1, seq, 2, 1, 32};
  s.seed = seed;
  return load_qkv(s, true);
}

BlockMask make(const PatternInputs& pi, const std::string& spec, bool causal, int64_t block) {
  MaskRequest req;
  req.shape = MaskShape{pi.batch, pi.heads_q, pi.q_len, pi.kv_len, block, block};
  req.causal = causal;
  req.seed = 7;
  req.pattern = parse_pattern(spec, "--pattern");
  req.inputs = &pi;
  return generate_mask(req);
}

}  // namespace

TEST_CASE("energy: each row keeps mass >= tau and dropping its smallest kept block falls below tau") {
  Qkv in = synthetic("clustered:run=100", 640, 3);
  PatternInputs pi = pattern_inputs(in);
  for (double tau : {0.5, 0.8, 0.95}) {
    BlockMask m = make(pi, "energy:tau=" + std::to_string(tau) + ",min_blocks=0", false, 32);
    for (int64_t h = 0; h < 2; ++h) {
      PatternContext ctx;
      ctx.shape = m.shape;
      ctx.head = h;
      ctx.inputs = &pi;
      int64_t mu, nu;
      auto mass = adaptive::pooled_mass(ctx, 0, 1, mu, nu);
      for (int64_t i = 0; i < mu; ++i) {
        double kept = 0, smallest = 2, total = 0;
        for (int64_t j = 0; j < nu; ++j) {
          total += mass[size_t(i * nu + j)];
          if (m.at(0, h, i, j)) {
            kept += mass[size_t(i * nu + j)];
            smallest = std::min(smallest, mass[size_t(i * nu + j)]);
          }
        }
        CHECK(total == doctest::Approx(1.0));
        CHECK(kept >= tau - 1e-12);
        CHECK(kept - smallest < tau);
      }
    }
  }
}

TEST_CASE("energy: pooling levels keep whole pooled units; min/max blocks bound each row") {
  Qkv in = synthetic("decay", 512, 4);
  PatternInputs pi = pattern_inputs(in);
  BlockMask m = make(pi, "energy:tau=0.9,pool=4", false, 16);  // 32 x 32 blocks, 8 x 8 units
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t j = 0; j < 32; ++j) CHECK(m.at(0, 0, i, j) == m.at(0, 0, i / 4 * 4, j / 4 * 4));
  BlockMask c = make(pi, "energy:tau=1,min_blocks=3,max_blocks=5", false, 16);
  for (int64_t i = 0; i < 32; ++i) {
    int64_t n = 0;
    for (int64_t j = 0; j < 32; ++j) n += c.at(0, 1, i, j);
    CHECK(n == 5);  // tau = 1 wants every block; the cap stops at 5
  }
}

TEST_CASE("topk keeps the forced sink and local blocks plus the k best-scored others") {
  Qkv in = synthetic("sinks", 512, 5);
  PatternInputs pi = pattern_inputs(in);
  BlockMask m = make(pi, "topk:k=3,sink=1,local=2", true, 32);
  PatternContext ctx;
  ctx.shape = m.shape;
  ctx.causal = true;
  ctx.inputs = &pi;
  int64_t mu, nu;
  auto mass = adaptive::pooled_mass(ctx, 0, 1, mu, nu);
  auto g = m.geometry();
  for (int64_t i = 0; i < mu; ++i) {
    int64_t d = g.diag_block(i), forced = 0, chosen = 0;
    double min_chosen = 2, max_left = -1;
    for (int64_t j = 0; j <= d; ++j) {
      bool f = j < 1 || j > d - 2;
      if (f) {
        CHECK(m.at(0, 0, i, j));
        ++forced;
      } else if (m.at(0, 0, i, j)) {
        ++chosen;
        min_chosen = std::min(min_chosen, mass[size_t(i * nu + j)]);
      } else {
        max_left = std::max(max_left, mass[size_t(i * nu + j)]);
      }
    }
    CHECK(chosen == std::min<int64_t>(3, d + 1 - forced));
    CHECK(max_left <= min_chosen);
  }
}

TEST_CASE("xattn and vslash: threshold and forced structure") {
  Qkv in = synthetic("sinks", 512, 6);
  PatternInputs pi = pattern_inputs(in);
  BlockMask x = make(pi, "xattn:stride=8,tau=0.7", true, 32);
  BlockMask v = make(pi, "vslash:vertical=8,slash=8,sink=4,recent=32", true, 32);
  auto g = x.geometry();
  for (int64_t i = 0; i < 16; ++i) {
    CHECK(x.at(0, 0, i, g.diag_block(i)));  // diagonal forced
    CHECK(v.at(0, 0, i, 0));                // sink column forced
    CHECK(v.at(0, 0, i, g.diag_block(i)));  // recent diagonals forced
  }
  // xattn keeps at least tau of its own estimated mass per row.
  PatternContext ctx;
  ctx.shape = x.shape;
  ctx.causal = true;
  ctx.inputs = &pi;
  auto mass = adaptive::antidiagonal_mass(ctx, 0, 8);
  for (int64_t i = 0; i < 16; ++i) {
    double kept = 0;
    for (int64_t j = 0; j < 16; ++j) kept += x.at(0, 0, i, j) ? mass[size_t(i * 16 + j)] : 0;
    CHECK(kept >= 0.7 - 1e-9);
  }
  // Selectors without inputs are usage errors.
  MaskRequest req;
  req.shape = MaskShape{1, 2, 512, 512, 32, 32};
  req.pattern = parse_pattern("energy", "--pattern");
  CHECK_THROWS_AS(generate_mask(req), UsageError);
}

TEST_CASE("frontier orderings on the structured synthetic inputs") {
  auto frontier = [](const std::string& kind, const std::string& patterns) {
    Qkv in = synthetic(kind, 1024, 11);
    PatternInputs pi = pattern_inputs(in);
    AttentionProblem p = problem_for(in.q, in.k);
    MaskMaker mk = [&](const std::string& spec) { return make(pi, spec, false, 32); };
    std::vector<std::string> specs;
    for (size_t a = 0, b; a < patterns.size(); a = b + 1) {
      b = patterns.find(';', a);
      if (b == std::string::npos) b = patterns.size();
      specs.push_back(patterns.substr(a, b - a));
    }
    return run_frontier(p, in.q.data.data(), in.k.data.data(), in.v.data.data(), specs, {0.1, 0.2}, mk, 2);
  };
  // Positional decay: local beats random at equal density.
  auto d = frontier("decay", "local;random");
  REQUIRE(d.size() == 4);
  for (int t = 0; t < 2; ++t) {
    CHECK(std::fabs(d[t].quality.mask.density - d[2 + t].quality.mask.density) < 0.03);
    CHECK(d[t].quality.recall_mean > d[2 + t].quality.recall_mean);
    CHECK(d[t].quality.error.rel_l2 < d[2 + t].quality.error.rel_l2);
  }
  // Clustered content (clusters scattered along the sequence): the energy selector beats local.
  auto c = frontier("clustered:run=256", "local;energy");
  REQUIRE(c.size() == 4);
  for (int t = 0; t < 2; ++t) {
    CHECK(c[2 + t].quality.mask.density <= c[t].quality.mask.density + 0.03);
    CHECK(c[2 + t].quality.recall_mean > c[t].quality.recall_mean);
  }
}

TEST_CASE("bad input exits with status 2 and one line") {
  std::string b = BSATTN_BINARY;
  auto rc = [](const std::string& cmd) {
    int r = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WEXITSTATUS(r);
  };
  CHECK(rc(b + " analyze local") == 2);                                      // no inputs
  CHECK(rc(b + " analyze local --synthetic nosuchkind --seq 64") == 2);      // unknown kind
  CHECK(rc(b + " analyze local --synthetic decay --seq 64 --heads 3 --kv-heads 2") == 2);  // GQA
  CHECK(rc(b + " analyze local --synthetic spatial:grid=4x4 --seq 100") == 2);             // seq != grid
  CHECK(rc(b + " analyze local --q /nonexistent.npy --k x --v y") == 2);
  CHECK(rc(b + " run local --q /nonexistent.npy --k x --v y -o o.npy --backend cpu") == 2);
  CHECK(rc(b + " analyze --sweep --synthetic decay --seq 64 --block 16 --patterns dense") == 2);  // no knob
}
