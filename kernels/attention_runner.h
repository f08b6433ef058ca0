// Host API of the CUDA backend for code that must keep a problem resident on the GPU (bench, GPU
// tests). Plain C++ types only: no CUDA headers here, so lib/ and apps/ can include it.
//
// attention_forward(..., Backend::Cuda) in lib/attention.h is the one-shot path (upload, run,
// download); AttentionRunner is the resident path: inputs uploaded once, the row/column CSR built on
// the GPU once, and launch() only enqueues the forward pass on the runner's stream.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lib/attention.h"

namespace bsattn::cuda {

struct DeviceInfo {
  std::string name;
  int sm_count = 0, cc_major = 0, cc_minor = 0;
  double sm_clock_mhz = 0, mem_clock_mhz = 0;
  size_t l2_bytes = 0, global_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};
bool gpu_present();
DeviceInfo device_info();  // RuntimeFailure without a GPU

class AttentionRunner {
 public:
  // `kernel`: a variant name from kernel_variants() ("" = the default, fastest).
  AttentionRunner(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                  const std::string& kernel = "");
  ~AttentionRunner();
  AttentionRunner(const AttentionRunner&) = delete;
  AttentionRunner& operator=(const AttentionRunner&) = delete;

  void launch();            // enqueue one forward pass on stream(); no synchronization
  void* stream() const;     // the cudaStream_t, as void*
  AttentionResult result(); // synchronize and copy O (as f32) and LSE back
  std::string kernel_name() const;
  // Everything the constructor checks before it touches a GPU (shapes, dtype, head_dim, blocks, kernel
  // name): UsageError naming what is wrong. Needs no GPU.
  static void check_supported(const AttentionProblem& p, const BlockMask& mask, const std::string& kernel = "");  // the variant launch() runs ("" resolved for this problem and GPU)
  static std::vector<std::string> kernel_variants();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bsattn::cuda
