// cuBLAS bf16 GEMM and device-to-device copy ceilings, timed with GpuTimer (L2 flushed, events).
#include "kernels/ceilings.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/timing.h"

namespace bsattn::cuda {

namespace {

// Seeded uniform values in [-1, 1): never zeros (a GEMM on zeros runs faster than on real data).
__global__ void fill_bf16(__nv_bfloat16* p, size_t n, unsigned long long seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    unsigned long long z = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    p[i] = __float2bfloat16(float(double(z >> 11) * 0x1.0p-53 * 2.0 - 1.0));
  }
}

struct CublasHandle {
  cublasHandle_t h = nullptr;
  CublasHandle() { CUBLAS_CHECK(cublasCreate(&h)); }
  ~CublasHandle() { cublasDestroy(h); }
};

}  // namespace

CeilingsResult measure_ceilings(const MedianOf& median_ms, int64_t n, size_t copy_bytes) {
  CeilingsResult r;
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  struct StreamGuard {
    cudaStream_t s;
    ~StreamGuard() { cudaStreamDestroy(s); }
  } guard{stream};
  GpuTimer timer(stream, true);

  {
    size_t elems = size_t(n) * size_t(n);
    DeviceBuffer a(elems * 2), b(elems * 2), c(elems * 2);
    fill_bf16<<<1024, 256, 0, stream>>>(a.get<__nv_bfloat16>(), elems, 1);
    CUDA_CHECK_LAUNCH("fill_bf16");
    fill_bf16<<<1024, 256, 0, stream>>>(b.get<__nv_bfloat16>(), elems, 2);
    CUDA_CHECK_LAUNCH("fill_bf16");
    CublasHandle handle;
    CUBLAS_CHECK(cublasSetStream(handle.h, stream));
    const float alpha = 1.0f, beta = 0.0f;
    int ni = int(n);
    auto gemm = [&]() {
      CUBLAS_CHECK(cublasGemmEx(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &alpha, a.get(), CUDA_R_16BF, ni, b.get(),
                                CUDA_R_16BF, ni, &beta, c.get(), CUDA_R_16BF, ni, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
    };
    r.gemm_n = n;
    r.gemm_median_ms = median_ms([&]() { return timer.sample_ms(gemm); });
    r.gemm_tflops = r.gemm_median_ms > 0 ? 2.0 * double(n) * double(n) * double(n) / (r.gemm_median_ms * 1e-3) / 1e12 : 0;
  }
  {
    DeviceBuffer src(copy_bytes), dst(copy_bytes);
    CUDA_CHECK(cudaMemsetAsync(src.get(), 0x3c, copy_bytes, stream));
    auto copy = [&]() {
      CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), copy_bytes, cudaMemcpyDeviceToDevice, stream));
    };
    r.copy_bytes = copy_bytes;
    r.copy_median_ms = median_ms([&]() { return timer.sample_ms(copy); });
    r.copy_gbs = r.copy_median_ms > 0 ? 2.0 * double(copy_bytes) / (r.copy_median_ms * 1e-3) / 1e9 : 0;
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return r;
}

}  // namespace bsattn::cuda
