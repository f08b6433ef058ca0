// GPU timer for the bench harness: L2 flush, CUDA events on the launch stream, measured SM clock.
#include "kernels/timing.h"

#include <cuda_runtime.h>

#include "kernels/cuda_check.h"

namespace bsattn::cuda {

namespace {

// Spins one thread until `cycles` SM clocks have passed; writes the cycles it saw.
__global__ void spin_kernel(long long cycles, long long* seen) {
  long long start = clock64(), now = start;
  while (now - start < cycles) now = clock64();
  *seen = now - start;
}

}  // namespace

struct GpuTimer::Impl {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  void* flush = nullptr;
  size_t flush_bytes = 0;
  long long* seen = nullptr;
  int flip = 0;
};

GpuTimer::GpuTimer(void* stream, bool flush_l2) : impl_(std::make_unique<Impl>()) {
  impl_->stream = static_cast<cudaStream_t>(stream);
  CUDA_CHECK(cudaEventCreate(&impl_->start));
  CUDA_CHECK(cudaEventCreate(&impl_->stop));
  if (flush_l2) {
    int dev = 0, l2 = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    impl_->flush_bytes = size_t(l2 > 0 ? l2 : (64 << 20)) * 2;
    CUDA_CHECK(cudaMalloc(&impl_->flush, impl_->flush_bytes));
  }
  CUDA_CHECK(cudaMalloc(&impl_->seen, sizeof(long long)));
}

GpuTimer::~GpuTimer() {
  if (!impl_) return;
  cudaEventDestroy(impl_->start);
  cudaEventDestroy(impl_->stop);
  if (impl_->flush) cudaFree(impl_->flush);
  if (impl_->seen) cudaFree(impl_->seen);
}

size_t GpuTimer::flush_bytes() const { return impl_->flush_bytes; }

double GpuTimer::sample_ms(const std::function<void()>& launch) {
  if (impl_->flush) {
    // Alternate the value so that no cache or compression keeps the previous contents.
    CUDA_CHECK(cudaMemsetAsync(impl_->flush, (impl_->flip++ & 1) ? 0x5a : 0xa5, impl_->flush_bytes, impl_->stream));
  }
  CUDA_CHECK(cudaEventRecord(impl_->start, impl_->stream));
  launch();
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaEventRecord(impl_->stop, impl_->stream));
  CUDA_CHECK(cudaEventSynchronize(impl_->stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, impl_->start, impl_->stop));
  return double(ms);
}

double GpuTimer::measure_sm_clock_mhz(double spin_ms) {
  int dev = 0, khz = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  // The nominal clock sizes the spin; the measurement itself uses clock64() and events.
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev) != cudaSuccess || khz <= 0) {
    cudaGetLastError();
    khz = 1500000;
  }
  long long cycles = (long long)(spin_ms * double(khz));
  CUDA_CHECK(cudaEventRecord(impl_->start, impl_->stream));
  spin_kernel<<<1, 1, 0, impl_->stream>>>(cycles, impl_->seen);
  CUDA_CHECK_LAUNCH("spin_kernel");
  CUDA_CHECK(cudaEventRecord(impl_->stop, impl_->stream));
  CUDA_CHECK(cudaEventSynchronize(impl_->stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, impl_->start, impl_->stop));
  long long seen = 0;
  CUDA_CHECK(cudaMemcpy(&seen, impl_->seen, sizeof seen, cudaMemcpyDeviceToHost));
  return ms > 0 ? double(seen) / (double(ms) * 1e3) : 0.0;
}

CudaVersions cuda_versions() {
  CudaVersions v;
  v.toolkit = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10);
  int rt = 0, drv = 0;
  if (cudaRuntimeGetVersion(&rt) == cudaSuccess)
    v.runtime = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
  if (cudaDriverGetVersion(&drv) == cudaSuccess)
    v.driver = std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10);
  cudaGetLastError();
  return v;
}

}  // namespace bsattn::cuda
