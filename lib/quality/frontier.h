// The recall / error vs density frontier: several patterns, each driven to a range of target
// densities through one parameter (its "knob"), evaluated on the same Q/K/V. JSON schema
// "bsattn.frontier/v1" (docs/frontier-json.md).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/quality/quality.h"

namespace bsattn {

// The parameter a sweep turns to reach a density: density grows with it.
struct SweepKnob {
  std::string pattern, param;
  double lo = 0, hi = 1;
  bool integer = false;
};
// UsageError listing the sweepable patterns when `pattern` has no knob.
const SweepKnob& sweep_knob(const std::string& pattern);
std::vector<std::string> sweepable_patterns();

struct FrontierRecord {
  std::string pattern;
  std::string spec;  // the full spec generated (knob included)
  nlohmann::json params;
  double target_density = 0;
  double knob = 0;
  QualityReport quality;
};

// Makes a mask from a spec (the app passes generate_mask with its sizes, seed and inputs).
using MaskMaker = std::function<BlockMask(const std::string& spec)>;

// For every base spec ("energy", "energy:pool=2", ...) and target density, searches the knob for the
// mask whose density (kept / causally visible blocks) is closest to the target, then evaluates it.
// `progress` (optional) is called after each record; `dense_progress` (optional) counts the row blocks of
// the dense reference pass, which runs once before the first record is evaluated.
std::vector<FrontierRecord> run_frontier(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                         const std::vector<std::string>& specs, const std::vector<double>& densities,
                                         const MaskMaker& make, int threads = 0,
                                         const std::function<void(const FrontierRecord&)>& progress = nullptr,
                                         ProgressMeter* dense_progress = nullptr);

nlohmann::json frontier_json(const nlohmann::json& context, const std::vector<FrontierRecord>& records);

}  // namespace bsattn
