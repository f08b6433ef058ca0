// The CPU's GEMM ceiling through Eigen, measured the way the reference uses it: every worker thread
// runs its own single-threaded Eigen GEMM of the block-pair shape (rows x depth times depth x cols),
// so the figure is comparable to the reference's forward GFLOP/s. The figure is the total over all
// threads, and the best of `rounds` timed rounds: a ceiling measured once under a passing load reads
// low, and the reference's ratio to it then passes 1.
#pragma once
#include <cstdint>
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
// Each round lasts at least min_seconds / rounds.
GemmCeiling eigen_gemm_ceiling(int64_t m, int64_t n, int64_t k, int threads = 0, double min_seconds = 1.0,
                               int rounds = 5);

}  // namespace bsattn
