// The CPU's GEMM ceiling through Eigen, measured the way the reference uses it: every worker thread
// runs its own single-threaded Eigen GEMM of the block-pair shape (rows x depth times depth x cols),
// so the figure is comparable to the reference's forward GFLOP/s.
#pragma once
#include <cstdint>

namespace bsattn {

struct GemmCeiling {
  double gflops = 0;  // aggregate over threads, 2*m*n*k per GEMM
  int threads = 0;
  int64_t m = 0, n = 0, k = 0;
  double seconds = 0;
};
GemmCeiling eigen_gemm_ceiling(int64_t m, int64_t n, int64_t k, int threads = 0, double min_seconds = 1.0);

}  // namespace bsattn
