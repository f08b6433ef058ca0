// The CPU's GEMM ceiling through Eigen, measured the way the reference uses it: every worker thread
// runs its own single-threaded Eigen GEMM of the block-pair shape (rows x depth times depth x cols),
// so the figure is comparable to the reference's forward GFLOP/s. Figures are totals over all threads.
// On a shared machine a ceiling measured at one moment and a forward timed at another see different
// loads (ratios above 1 appeared), so compare_with_ceiling times the two side by side, alternately.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace bsattn {

struct GemmCeiling {
  double gflops = 0;  // total over threads, 2*m*n*k per GEMM, of the best round
  int threads = 0;
  int64_t m = 0, n = 0, k = 0;
  double seconds = 0;  // the best round's time
  int rounds = 0;      // rounds timed (after the calibration runs)
  std::vector<double> round_gflops;  // every round's total GFLOP/s; gflops is the largest
};
// Each round lasts at least min_seconds / rounds; the best round is kept.
GemmCeiling eigen_gemm_ceiling(int64_t m, int64_t n, int64_t k, int threads = 0, double min_seconds = 1.0,
                               int rounds = 5);

// `work` (doing `flops` floating-point operations on `threads` threads) timed side by side with the
// ceiling: one untimed warm-up call, then `repeats` times a timed call followed by a ceiling round
// calibrated to last about as long (at least 10 ms). ratios[r] is the work's GFLOP/s in repetition r
// over the ceiling round next to it; the medians summarise them.
struct CeilingComparison {
  GemmCeiling ceiling;          // round_gflops: the round after each call; gflops: the best of them
  std::vector<double> seconds;  // each timed call of work
  std::vector<double> ratios;
  double median_seconds = 0, median_ceiling_gflops = 0, median_ratio = 0;
};
CeilingComparison compare_with_ceiling(const std::function<void()>& work, double flops, int repeats, int64_t m,
                                       int64_t n, int64_t k, int threads = 0);

// The median (the mean of the middle two for an even count); 0 for none.
double median_of(std::vector<double> x);

}  // namespace bsattn
