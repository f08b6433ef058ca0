// The CUDA backend of `bsattn bench` (lib/bench/runner.h's BenchBackend): one AttentionRunner per
// configuration, timed by GpuTimer (CUDA events, L2 flushed before every sample), the mask build timed
// the same way, and the cuBLAS GEMM and copy ceilings. lib/bench's make_cuda_backend reaches it
// through the GPU backend registry (kernels/gpu_backend.cpp).
#pragma once
#include <memory>

#include "lib/bench/runner.h"

namespace bsattn::cuda {

// RuntimeFailure without a GPU.
std::unique_ptr<bench::BenchBackend> make_bench_backend(const bench::CudaBenchOptions& opt);

}  // namespace bsattn::cuda
