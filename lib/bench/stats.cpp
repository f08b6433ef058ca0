#include "lib/bench/stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "lib/error.h"

namespace bsattn::bench {

TimingStats summarize(std::vector<double> v, double noise_target) {
  if (v.empty()) throw std::invalid_argument("summarize: no samples");
  for (double x : v)
    if (!std::isfinite(x)) throw std::invalid_argument("summarize: a sample is not finite");
  TimingStats s;
  s.samples = int64_t(v.size());
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median_ms = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min_ms = v.front();
  s.max_ms = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean_ms = sum / double(n);
  if (n > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean_ms) * (x - s.mean_ms);
    s.stddev_ms = std::sqrt(ss / double(n - 1));
    s.rel_noise = s.mean_ms > 0 ? s.stddev_ms / s.mean_ms : 0;
  }
  s.noise_met = s.rel_noise <= noise_target;
  return s;
}

void TimingOptions::validate() const {
  if (warmup < 0) throw UsageError("--warmup must be >= 0");
  if (min_samples < 1) throw UsageError("--min-samples must be >= 1");
  if (max_samples < min_samples) throw UsageError("--max-samples must be >= --min-samples");
  if (!(noise_target >= 0 && noise_target < 1)) throw UsageError("--noise must be in [0, 1)");
  if (!(max_time_s > 0)) throw UsageError("--max-time must be > 0 seconds");
  if (!(hard_limit_s >= 0)) throw UsageError("the hard time limit must be >= 0 seconds");
}

nlohmann::json TimingOptions::to_json() const {
  return {{"warmup", warmup},           {"min_samples", min_samples}, {"max_samples", max_samples},
          {"noise_target", noise_target}, {"max_time_s", max_time_s}, {"hard_limit_s", hard_limit_s}};
}

TimingStats measure(const std::function<double()>& sample_ms, const TimingOptions& opt,
                    const std::function<double()>& now_fn) {
  opt.validate();
  auto now = now_fn ? now_fn : []() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  double start = now();
  for (int64_t i = 0; i < opt.warmup; ++i) sample_ms();
  double timed_start = now();
  std::vector<double> v;
  v.reserve(size_t(std::min<int64_t>(opt.max_samples, 4096)));
  // Running sums for the noise test; the final statistics are recomputed exactly by summarize().
  double sum = 0, sumsq = 0;
  while (int64_t(v.size()) < opt.max_samples) {
    double x = sample_ms();
    if (!std::isfinite(x) || x < 0) throw RuntimeFailure("a timing sample was not a finite duration");
    v.push_back(x);
    sum += x;
    sumsq += x * x;
    double t = now();
    if (opt.hard_limit_s > 0 && t - start >= opt.hard_limit_s) break;
    int64_t n = int64_t(v.size());
    if (n < opt.min_samples) continue;
    double mean = sum / double(n);
    double var = n > 1 ? std::max(0.0, (sumsq - double(n) * mean * mean) / double(n - 1)) : 0.0;
    double noise = mean > 0 ? std::sqrt(var) / mean : 0.0;
    if (noise <= opt.noise_target) break;
    if (t - timed_start >= opt.max_time_s) break;
  }
  TimingStats s = summarize(v, opt.noise_target);
  s.elapsed_s = now() - start;
  return s;
}

nlohmann::json to_json(const TimingStats& s) {
  return {{"samples", s.samples},     {"median_ms", s.median_ms}, {"mean_ms", s.mean_ms},
          {"min_ms", s.min_ms},       {"max_ms", s.max_ms},       {"stddev_ms", s.stddev_ms},
          {"rel_noise", s.rel_noise}, {"noise_met", s.noise_met}, {"elapsed_s", s.elapsed_s}};
}

}  // namespace bsattn::bench
