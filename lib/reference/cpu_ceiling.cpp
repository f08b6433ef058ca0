#include "lib/reference/cpu_ceiling.h"

#include <chrono>

#include <Eigen/Core>

#include "lib/reference/parallel.h"

namespace bsattn {

GemmCeiling eigen_gemm_ceiling(int64_t m, int64_t n, int64_t k, int threads, double min_seconds, int rounds) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  GemmCeiling c;
  c.threads = resolve_threads(threads);
  c.m = m, c.n = n, c.k = k;
  c.rounds = rounds < 1 ? 1 : rounds;
  auto timed = [&](int64_t reps) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_for(
        c.threads,
        [&](int64_t w) {
          Mat a = Mat::Random(m, k), b = Mat::Random(k, n), out = Mat::Zero(m, n);
          for (int64_t r = 0; r < reps; ++r) out.noalias() += a * b;
          volatile float sink = out(0, 0) + float(w);
          (void)sink;
        },
        c.threads);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  // Calibration: double the repetitions until one round takes its share of min_seconds.
  const double round_seconds = min_seconds / c.rounds;
  int64_t reps = 1;
  while (timed(reps) < round_seconds && reps <= (int64_t(1) << 30)) reps *= 2;
  for (int r = 0; r < c.rounds; ++r) {
    const double s = timed(reps);
    const double gflops = 2.0 * double(m * n * k) * double(reps) * c.threads / s / 1e9;
    c.round_gflops.push_back(gflops);
    if (gflops > c.gflops) c.gflops = gflops, c.seconds = s;
  }
  return c;
}

}  // namespace bsattn
