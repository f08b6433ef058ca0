// Ceilings measured in the same run as the attention timings (DESIGN.md, "Performance accounting"):
// bf16 GEMM through cuBLAS (TFLOP/s, 2*M*N*K per product, random inputs, f32 accumulation) and a
// device-to-device copy (GB/s counting bytes read plus bytes written). Plain C++ types only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace bsattn::cuda {

struct CeilingsResult {
  int64_t gemm_n = 0;            // M = N = K
  double gemm_median_ms = 0, gemm_tflops = 0;
  size_t copy_bytes = 0;         // bytes of the source buffer
  double copy_median_ms = 0, copy_gbs = 0;
};

// `median_ms` runs the caller's timing loop over a sample function (ms per sample, from GpuTimer)
// and returns the median: the ceilings are timed by the same harness as the attention.
using MedianOf = std::function<double(const std::function<double()>& sample_ms)>;

CeilingsResult measure_ceilings(const MedianOf& median_ms, int64_t gemm_n = 8192, size_t copy_bytes = size_t(1) << 30);

}  // namespace bsattn::cuda
