#include "lib/quality/frontier.h"

#include <cmath>

#include "lib/error.h"
#include "lib/spec.h"

namespace bsattn {

namespace {
const std::vector<SweepKnob>& knobs() {
  static const std::vector<SweepKnob> k = {
      {"local", "window", 0, 4096, true},   {"random", "density", 0, 1, false},
      {"streaming", "local", 1, 4096, true}, {"energy", "tau", 0, 1, false},
      {"topk", "k", 0, 4096, true},         {"xattn", "tau", 0, 1, false},
      {"vslash", "vertical", 0, 1 << 22, true},
  };
  return k;
}
}  // namespace

std::vector<std::string> sweepable_patterns() {
  std::vector<std::string> n;
  for (const auto& k : knobs()) n.push_back(k.pattern);
  return n;
}

const SweepKnob& sweep_knob(const std::string& pattern) {
  for (const auto& k : knobs())
    if (k.pattern == pattern) return k;
  std::string all;
  for (const auto& n : sweepable_patterns()) all += (all.empty() ? "" : ", ") + n;
  throw UsageError("--sweep: pattern '" + pattern + "' has no density knob (sweepable: " + all + ")");
}

std::vector<FrontierRecord> run_frontier(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                         const std::vector<std::string>& specs, const std::vector<double>& densities,
                                         const MaskMaker& make, int threads,
                                         const std::function<void(const FrontierRecord&)>& progress,
                                         ProgressMeter* dense_progress) {
  for (double d : densities)
    if (!(d > 0 && d <= 1)) throw UsageError("--densities: each density must be in (0, 1], got " + std::to_string(d));
  std::vector<FrontierRecord> out;
  std::vector<float> dense;
  for (const std::string& text : specs) {
    Spec base = parse_spec(text, "--sweep");
    const SweepKnob& knob = sweep_knob(base.name);
    std::vector<std::pair<std::string, std::string>> args;
    for (auto& a : base.args)
      if (a.first == knob.param)
        throw UsageError("--sweep: '" + text + "' sets " + knob.param + ", which the sweep turns itself");
      else
        args.push_back(a);
    auto spec_at = [&](double x) {
      Spec s{base.name, args};
      std::string val = knob.integer ? std::to_string(int64_t(std::llround(x))) : std::to_string(x);
      s.args.push_back({knob.param, val});
      return s.str();
    };
    auto density_at = [&](double x, BlockMask* keep) {
      BlockMask m = make(spec_at(x));
      double d = mask_stats(m).density;
      if (keep) *keep = std::move(m);
      return d;
    };
    for (double target : densities) {
      // Bisection on the knob (density is non-decreasing in it); keep the closest value seen.
      double lo = knob.lo, hi = knob.hi, best = lo, best_gap = 1e300;
      auto consider = [&](double x) {
        double gap = std::fabs(density_at(x, nullptr) - target);
        if (gap < best_gap) {
          best_gap = gap;
          best = x;
        }
        return gap;
      };
      for (int it = 0; it < (knob.integer ? 40 : 18) && (knob.integer ? hi - lo > 1 : hi - lo > 1e-6); ++it) {
        double mid = knob.integer ? std::floor((lo + hi) / 2) : (lo + hi) / 2;
        BlockMask m = make(spec_at(mid));
        double d = mask_stats(m).density;
        if (std::fabs(d - target) < best_gap) {
          best_gap = std::fabs(d - target);
          best = mid;
        }
        (d < target ? lo : hi) = mid;
      }
      consider(lo);
      consider(hi);
      FrontierRecord r;
      r.pattern = base.name;
      r.spec = spec_at(best);
      r.target_density = target;
      r.knob = knob.integer ? double(std::llround(best)) : best;
      BlockMask m = make(r.spec);
      r.params = m.spec.is_null() ? nlohmann::json() : m.spec;
      if (dense.empty()) {
        dense = dense_output(p, m.shape, m.causal, q, k, v, threads, dense_progress);
        if (dense_progress) dense_progress->finish();
      }
      r.quality = evaluate_mask(p, m, q, k, v, &dense, threads);
      if (progress) progress(r);
      out.push_back(std::move(r));
    }
  }
  return out;
}

nlohmann::json frontier_json(const nlohmann::json& context, const std::vector<FrontierRecord>& records) {
  nlohmann::json recs = nlohmann::json::array();
  for (const auto& r : records) {
    const auto& q = r.quality;
    recs.push_back({{"pattern", r.pattern},
                    {"spec", r.spec},
                    {"params", r.params},
                    {"knob", r.knob},
                    {"target_density", r.target_density},
                    {"density", q.mask.density},
                    {"pair_density", q.mask.pair_density()},
                    {"recall_mean", q.recall_mean},
                    {"recall_min", q.recall_min},
                    {"rel_l2", q.error.rel_l2},
                    {"rel_l1", q.error.rel_l1},
                    {"rmse", q.error.rmse},
                    {"max_abs", q.error.max_abs},
                    {"cosine", q.error.cosine},
                    {"empty_rows", q.mask.empty_rows}});
  }
  return {{"schema", "bsattn.frontier/v1"}, {"context", context}, {"records", recs}};
}

}  // namespace bsattn
