#include "lib/reference/cpu_ceiling.h"

#include <algorithm>
#include <chrono>

#include <Eigen/Core>

#include "lib/reference/parallel.h"

namespace bsattn {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Wall time of `reps` m x k times k x n GEMMs on each of `threads` threads at once.
double gemm_round(int64_t m, int64_t n, int64_t k, int threads, int64_t reps) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  auto t0 = std::chrono::steady_clock::now();
  parallel_for(
      threads,
      [&](int64_t w) {
        Mat a = Mat::Random(m, k), b = Mat::Random(k, n), out = Mat::Zero(m, n);
        for (int64_t r = 0; r < reps; ++r) out.noalias() += a * b;
        volatile float sink = out(0, 0) + float(w);
        (void)sink;
      },
      threads);
  return seconds_since(t0);
}

// Repetitions per round: doubled until one round takes `seconds`.
int64_t calibrate(int64_t m, int64_t n, int64_t k, int threads, double seconds) {
  int64_t reps = 1;
  while (gemm_round(m, n, k, threads, reps) < seconds && reps <= (int64_t(1) << 30)) reps *= 2;
  return reps;
}

double round_gflops(int64_t m, int64_t n, int64_t k, int threads, int64_t reps, double seconds) {
  return 2.0 * double(m * n * k) * double(reps) * threads / seconds / 1e9;
}

}  // namespace

double median_of(std::vector<double> x) {
  if (x.empty()) return 0;
  std::sort(x.begin(), x.end());
  const size_t h = x.size() / 2;
  return x.size() % 2 ? x[h] : 0.5 * (x[h - 1] + x[h]);
}

GemmCeiling eigen_gemm_ceiling(int64_t m, int64_t n, int64_t k, int threads, double min_seconds, int rounds) {
  GemmCeiling c;
  c.threads = resolve_threads(threads);
  c.m = m, c.n = n, c.k = k;
  c.rounds = rounds < 1 ? 1 : rounds;
  const int64_t reps = calibrate(m, n, k, c.threads, min_seconds / c.rounds);
  for (int r = 0; r < c.rounds; ++r) {
    const double s = gemm_round(m, n, k, c.threads, reps);
    const double gflops = round_gflops(m, n, k, c.threads, reps, s);
    c.round_gflops.push_back(gflops);
    if (gflops > c.gflops) c.gflops = gflops, c.seconds = s;
  }
  return c;
}

CeilingComparison compare_with_ceiling(const std::function<void()>& work, double flops, int repeats, int64_t m,
                                       int64_t n, int64_t k, int threads) {
  CeilingComparison cmp;
  GemmCeiling& c = cmp.ceiling;
  c.threads = resolve_threads(threads);
  c.m = m, c.n = n, c.k = k;
  c.rounds = repeats < 1 ? 1 : repeats;
  auto t0 = std::chrono::steady_clock::now();
  work();
  const int64_t reps = calibrate(m, n, k, c.threads, std::max(0.01, seconds_since(t0)));
  for (int r = 0; r < c.rounds; ++r) {
    t0 = std::chrono::steady_clock::now();
    work();
    const double ws = seconds_since(t0);
    const double cs = gemm_round(m, n, k, c.threads, reps);
    const double cg = round_gflops(m, n, k, c.threads, reps, cs);
    cmp.seconds.push_back(ws);
    c.round_gflops.push_back(cg);
    cmp.ratios.push_back(flops / ws / 1e9 / cg);
    if (cg > c.gflops) c.gflops = cg, c.seconds = cs;
  }
  cmp.median_seconds = median_of(cmp.seconds);
  cmp.median_ceiling_gflops = median_of(c.round_gflops);
  cmp.median_ratio = median_of(cmp.ratios);
  return cmp;
}

}  // namespace bsattn
