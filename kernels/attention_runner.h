// Host API of the CUDA backend for code that must keep a problem resident on the GPU (the bench
// backend, GPU tests). Plain C++ types only: no CUDA headers here, so C++ files can include it.
//
// attention_forward with Backend::Cuda (lib/attention.h, through the registry of lib/backend.h) is the
// one-shot path (upload, run, download); AttentionRunner is the resident path: inputs uploaded once,
// the row CSR built on the GPU once, and launch() only enqueues the forward pass on the runner's
// stream.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/fwd_params.h"
#include "lib/attention.h"
#include "lib/backend.h"

namespace bsattn::cuda {

// The launch parameters of a problem that passed validate (sizes, mask geometry, score, max_ctas); the
// pointers are left null for the caller. Reads only the mask's shape and causal flag.
FwdParams fwd_params(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt);

bool gpu_present();
GpuDeviceInfo device_info();  // RuntimeFailure without a GPU

class AttentionRunner {
 public:
  // Validates the problem and runs check_supported first: UsageError before any GPU call.
  AttentionRunner(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                  const AttentionOptions& opt);
  // `kernel`: a variant name from kernel_variants() ("" = the default for the problem and GPU).
  AttentionRunner(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                  const std::string& kernel = "");
  // For a problem the caller has validated and passed through check_supported (the library entry):
  // uploads without checking again.
  struct Checked {};
  AttentionRunner(Checked, const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                  const AttentionOptions& opt);
  ~AttentionRunner();
  AttentionRunner(const AttentionRunner&) = delete;
  AttentionRunner& operator=(const AttentionRunner&) = delete;

  void launch();            // enqueue one forward pass on stream(); no synchronization
  void* stream() const;     // the cudaStream_t, as void*
  AttentionResult result(); // synchronize and copy O (as f32) and LSE back

  // The backward pass on the resident problem. prepare_backward uploads dO (f32 [total_q, Hq, D],
  // rounded to the problem's dtype as the kernels read it), builds the mask's column CSR on the GPU
  // when a head is sparse and allocates the gradients; it checks the backward's limits first
  // (UsageError). It reads the resident O and LSE when launch_backward runs: those of launch(), or a
  // forward result given by set_forward.
  void prepare_backward(const float* dout, bool deterministic);
  // O (rounded to the dtype) and LSE of a forward pass computed elsewhere, replacing the resident ones.
  void set_forward(const AttentionResult& fwd);
  void launch_backward();            // enqueue one backward pass on stream() (after prepare_backward)
  AttentionGradients gradients();    // synchronize and copy dQ, dK, dV (f32) back
  std::string backward_name() const; // the backward configuration that launch_backward runs
  // What the backward kernels cannot run, on top of check_supported: UsageError. Needs no GPU.
  static void check_backward_supported(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt);
  std::string kernel_name() const;  // the variant launch() runs ("" resolved for this problem and GPU)
  // What the kernels cannot run (dtype, head_dim, blocks, kernel name, max_ctas): UsageError naming
  // it. `p` must have passed AttentionProblem::validate(mask). Needs no GPU.
  static void check_supported(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt);
  static std::vector<std::string> kernel_variants();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void init(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in, const AttentionOptions& opt);
};

}  // namespace bsattn::cuda
