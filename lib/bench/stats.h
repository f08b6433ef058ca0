// Timing statistics and the measurement loop every bsattn timing goes through (nvbench's discipline):
// warm-up, then samples until the relative noise is under a target or a time limit is reached, with a
// minimum sample count. The sample function does the backend-specific part (GPU: L2 flush + CUDA
// events on the launch stream, kernels/timing.h; CPU: a monotonic clock around the call).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

namespace bsattn::bench {

struct TimingStats {
  int64_t samples = 0;
  double median_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  double stddev_ms = 0;   // sample standard deviation (n - 1); 0 for one sample
  double rel_noise = 0;   // stddev / mean (nvbench's "noise"); 0 for one sample
  bool noise_met = false; // rel_noise <= the target when the loop stopped
  double elapsed_s = 0;   // wall time the loop took, warm-up included
};

// Statistics of a set of samples (ms). Throws std::invalid_argument when empty or a sample is not finite.
TimingStats summarize(std::vector<double> samples_ms, double noise_target = 0);

struct TimingOptions {
  int64_t warmup = 2;          // samples discarded first (module load, handle creation, caches)
  int64_t min_samples = 10;    // never stop before this many
  int64_t max_samples = 10000; // never take more than this many
  double noise_target = 0.01;  // stop once stddev/mean <= this (after min_samples)
  double max_time_s = 1.0;     // stop after this much time of timed samples (after min_samples)
  double hard_limit_s = 0;     // if > 0: stop once the loop exceeded this, even before min_samples
  void validate() const;       // UsageError naming the option
  nlohmann::json to_json() const;
};

// Runs the loop. `sample_ms` performs one timed sample and returns its duration in ms; `now_s` is
// a monotonic clock in seconds (injectable for tests).
TimingStats measure(const std::function<double()>& sample_ms, const TimingOptions& opt,
                    const std::function<double()>& now_s = {});

nlohmann::json to_json(const TimingStats& s);

}  // namespace bsattn::bench
