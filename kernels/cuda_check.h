// CUDA error checking for kernels/: every runtime call and every launch goes through CUDA_CHECK /
// CUDA_CHECK_LAUNCH, which throw RuntimeFailure naming the file, line and call (STYLE.md 5).
// Out-of-memory becomes "out of GPU memory ..." so that commands exit 1 with a clear message.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <string>

#include "lib/error.h"

namespace bsattn::cuda {

[[noreturn]] inline void cuda_fail(cudaError_t e, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a sticky-free error so that later calls can still report
  std::string where = std::string(file) + ":" + std::to_string(line) + ": " + call;
  if (e == cudaErrorMemoryAllocation)
    throw RuntimeFailure("out of GPU memory (" + where + "); use smaller sizes or a larger GPU");
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    throw RuntimeFailure(std::string("no usable CUDA GPU (") + cudaGetErrorString(e) + "); use --backend cpu");
  throw RuntimeFailure(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                       ") at " + where);
}

[[noreturn]] inline void cublas_fail(cublasStatus_t s, const char* call, const char* file, int line) {
  std::string where = std::string(file) + ":" + std::to_string(line) + ": " + call;
  if (s == CUBLAS_STATUS_ALLOC_FAILED) throw RuntimeFailure("out of GPU memory (" + where + ")");
  throw RuntimeFailure("cuBLAS error " + std::to_string(int(s)) + " at " + where);
}

}  // namespace bsattn::cuda

#define CUDA_CHECK(call)                                                                    \
  do {                                                                                      \
    cudaError_t bsattn_e_ = (call);                                                         \
    if (bsattn_e_ != cudaSuccess) ::bsattn::cuda::cuda_fail(bsattn_e_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: launch-configuration errors; faults surface at the next checked sync.
#define CUDA_CHECK_LAUNCH(name)                                                                       \
  do {                                                                                                \
    cudaError_t bsattn_e_ = cudaGetLastError();                                                       \
    if (bsattn_e_ != cudaSuccess) ::bsattn::cuda::cuda_fail(bsattn_e_, "launch of " name, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                         \
  do {                                                                                             \
    cublasStatus_t bsattn_s_ = (call);                                                             \
    if (bsattn_s_ != CUBLAS_STATUS_SUCCESS) ::bsattn::cuda::cublas_fail(bsattn_s_, #call, __FILE__, __LINE__); \
  } while (0)

namespace bsattn::cuda {

// Per-device caches are arrays of this size.
constexpr int kMaxDevices = 64;

// The calling thread's current device, checked against kMaxDevices.
inline int current_device() {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) throw RuntimeFailure("CUDA device index " + std::to_string(dev) + " out of range");
  return dev;
}

// Runs a setup once per device: a kernel's attributes (the opt-in to more than 48 KiB of dynamic shared
// memory) belong to the kernel on one device, so a process driving several GPUs (the ring's NCCL ranks,
// one thread each) sets them on each. Two threads on one device may both run it; it sets the same value.
class PerDeviceOnce {
 public:
  template <class Fn>
  void operator()(Fn&& fn) {
    const int dev = current_device();
    if (done_[dev].load(std::memory_order_acquire)) return;
    fn();
    done_[dev].store(true, std::memory_order_release);
  }

 private:
  std::atomic<bool> done_[kMaxDevices] = {};
};

}  // namespace bsattn::cuda
