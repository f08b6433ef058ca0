// The GPU side of bsattn's timing harness (nvbench's discipline). Plain C++ types only: C++ files
// include it. One sample = flush L2 (a write of a buffer larger than L2, enqueued before the start
// event), record a CUDA event on the launch stream, enqueue the work, record the end event,
// synchronize, and read the elapsed time. The loop around samples (warm-up, noise target, time
// limit, minimum count) is lib/bench/stats.h's measure(), shared with the CPU backend.
#pragma once
#include <functional>
#include <memory>
#include <string>

namespace bsattn::cuda {

class GpuTimer {
 public:
  // `stream`: the cudaStream_t (as void*) the timed work is launched on; nullptr = the legacy
  // default stream. `flush_l2`: write 2 x L2 bytes before every sample.
  explicit GpuTimer(void* stream, bool flush_l2 = true);
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // One sample of `launch` (which must only enqueue work on the stream), in milliseconds.
  double sample_ms(const std::function<void()>& launch);
  // The SM clock while busy, in MHz: a single-block kernel spins for about `spin_ms` and its clock64()
  // cycle count is divided by the CUDA event time. Measured, not the nominal clock.
  double measure_sm_clock_mhz(double spin_ms = 2.0);
  size_t flush_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Versions known to this build: the CUDA toolkit it was compiled with (e.g. "13.0"), runtime and driver.
struct CudaVersions {
  std::string toolkit, runtime, driver;
};
CudaVersions cuda_versions();

}  // namespace bsattn::cuda
