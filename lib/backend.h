// The GPU backend, as lib/ sees it: an interface that kernels/ implements and registers at static
// initialization (kernels/gpu_backend.cpp), so that lib/ reaches the CUDA code without linking it and
// a build without CUDA simply has nothing registered. lib/attention.cpp (the forward and backward passes),
// lib/bench's make_cuda_backend and gpu_evaluate_mask below go through it; apps/ never see kernels/.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/quality/quality.h"

namespace bsattn {

namespace bench {
class BenchBackend;
struct CudaBenchOptions;
}  // namespace bench

struct GpuDeviceInfo {
  std::string name;
  int sm_count = 0, cc_major = 0, cc_minor = 0;
  double sm_clock_mhz = 0, mem_clock_mhz = 0;  // nominal
  size_t l2_bytes = 0, global_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};

// analyze --backend cuda: mask quality with the sparse pass on the forward kernel and the dense pass
// on the GPU dense reference (cuBLAS, S x S scores per head) while its buffers fit
// `max_dense_reference_bytes`, else on the forward kernel with every head dense.
struct GpuQualityOptions {
  std::string kernel;                                  // forward kernel of both passes ("" = the default)
  size_t max_dense_reference_bytes = size_t(8) << 30;  // S x S f32 scores + 16-bit P of one head
};
struct GpuQuality {
  QualityReport report;
  std::string kernel;      // the kernel the sparse pass ran
  std::string dense_path;  // "cublas-reference" or "fused-dense"
};

// GPU content-adaptive block selection (kernels/mask_build.cu): Q and K mean-pooled per block, then
// per `level` x `level` blocks (level 1, 2, 4 or 8); per row of level units, the softmax of the pooled
// scores scale * q_u.k_v over the visible units; the `top_k` best units plus the fewest whose mass
// reaches `mass` are kept (and the diagonal unit with keep_diagonal), then every block of a kept unit.
// `levels` are the pooling levels computed (the selection level is always among them).
struct GpuAdaptiveConfig {
  int64_t block_q = 128, block_kv = 128;
  std::vector<int> levels = {1, 2, 4, 8};
  int level = 1;              // the pooling level the selection runs at
  int top_k = 4;              // always keep the k highest-scoring units of a row
  double mass = 0.9;          // and the fewest units whose pooled softmax mass reaches this
  bool causal = false;
  bool keep_diagonal = true;  // keep each row's diagonal unit (causal) / unit i (non-causal)
};
struct GpuAdaptiveTiming {
  double pool_ms = 0, score_ms = 0, select_ms = 0, csr_ms = 0, total_ms = 0;  // CUDA events
};

// One pass on memory that already lives on the current CUDA device (the C ABI, apps/capi/): enqueued on
// `stream` without synchronizing, nothing allocated (scratch and the mask's CSR forms built here go
// into `workspace`), so that a caller such as PyTorch owns every buffer. The mask arrives as device
// arrays: its row CSR (and, for the backward of sparse heads, column CSR), or else the bitmap they are
// built from. `problem` holds the sizes, dtype and score; its cu_seqlens stay empty and the varlen
// offsets are the device arrays cu_q / cu_k with the packed row counts total_q / total_k.
struct DeviceAttention {
  AttentionProblem problem;
  MaskShape mask_shape;
  bool causal = false;
  const int32_t* cu_q = nullptr;  // [batch+1] or null (fixed length)
  const int32_t* cu_k = nullptr;
  int64_t total_q = 0, total_k = 0;  // rows of the packed Q and K/V (varlen); batch*len otherwise
  const uint8_t* head_type = nullptr;  // [heads]: 0 dense, 1 sparse, 2 streaming
  const int32_t* head_sink = nullptr;  // [heads]
  const int32_t* head_local = nullptr; // [heads]
  const uint8_t* bits = nullptr;           // [mask_batch, heads, Mq, Mk] 0/1, or null
  const int32_t* kv_num_blocks = nullptr;  // row CSR, or null: built from bits
  const int32_t* kv_indices = nullptr;
  const int32_t* q_num_blocks = nullptr;   // column CSR, or null: built from bits (backward)
  const int32_t* q_indices = nullptr;
  const void *q = nullptr, *k = nullptr, *v = nullptr;  // BSHD (packed when varlen), problem.dtype
  void* o = nullptr;                       // forward output; the backward reads it
  float* lse = nullptr;                    // [B, Hq, q_len] or varlen [Hq, total_q]
  const void* dout = nullptr;              // backward: dO, problem.dtype
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;  // backward outputs, f32 (grads16: problem.dtype)
  bool grads16 = false;  // dq, dk, dv hold problem.dtype (bf16/f16) elements instead of f32
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  void* stream = nullptr;  // cudaStream_t
  AttentionOptions options;
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual bool available() const = 0;                    // a CUDA GPU is present
  virtual GpuDeviceInfo device_info() const = 0;         // RuntimeFailure without a GPU
  virtual std::vector<std::string> kernels() const = 0;  // the forward kernels AttentionOptions::kernel names
  // UsageError when the kernels cannot run this problem (dtype, head_dim, block sizes, kernel name,
  // max_ctas); needs no GPU. `p` has passed AttentionProblem::validate(mask).
  virtual void check_supported(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) const = 0;
  // The forward pass of a problem that passed validate and check_supported (attention_forward checks).
  virtual AttentionResult forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                  const AttentionOptions& opt) = 0;
  // The backward pass of a problem that passed validate and check_supported (attention_backward
  // checks, and the sizes of `fwd` and dO): UsageError for what the backward kernels cannot run, before
  // any GPU work; then RuntimeFailure without a GPU or for CUDA errors.
  virtual AttentionGradients backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                      const AttentionResult& fwd, const float* dout, const AttentionOptions& opt) = 0;
  // Passes on device memory (DeviceAttention). Each checks the problem (UsageError, as forward and
  // backward do, plus null pointers and a too small workspace) before it enqueues anything;
  // RuntimeFailure for CUDA errors. The workspace a pass needs depends only on the sizes, the options
  // and which CSR forms are given.
  virtual size_t device_workspace_bytes(const DeviceAttention& a, bool backward) const = 0;
  virtual void forward_device(const DeviceAttention& a) = 0;
  virtual void backward_device(const DeviceAttention& a) = 0;
  virtual std::unique_ptr<bench::BenchBackend> make_bench_backend(const bench::CudaBenchOptions& opt) = 0;
  // Checks its own arguments (softmax, 16-bit dtype, fixed-length, what both passes need) before any
  // GPU work: UsageError; RuntimeFailure without a GPU.
  virtual GpuQuality evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                   const GpuQualityOptions& opt) = 0;
  // The adaptive mask of fixed-length bf16/f16 Q/K (`in.q`, `in.k` host buffers of p.dtype). Checks its
  // arguments first (UsageError); RuntimeFailure without a GPU or for CUDA errors.
  virtual BlockMask adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const GpuAdaptiveConfig& c,
                                  GpuAdaptiveTiming* timing) = 0;
};

// The passes on device memory through the registered backend, for the C ABI. Each checks, before any
// GPU call and on any machine (UsageError naming what is wrong): the problem against the mask's sizes
// (AttentionProblem::validate), the varlen row counts against batch x the maximum lengths, the pointers
// the pass reads and writes, a mask given as bitmap or CSR, what the kernels support, and the workspace
// against device_attention_workspace; RuntimeFailure in a build without CUDA. The backend's pass then
// checks the backward kernels' own limits (UsageError) and that a GPU is present (RuntimeFailure).
size_t device_attention_workspace(const DeviceAttention& a, bool backward);
void device_attention_forward(const DeviceAttention& a);
void device_attention_backward(const DeviceAttention& a);

// kernels/ registers its one instance, which must outlive every use (a static object).
void register_gpu_backend(GpuBackend* backend);
// The registered backend, or nullptr in a build without CUDA.
GpuBackend* gpu_backend();
// The registered backend; RuntimeFailure "this bsattn was built without CUDA; use --backend cpu".
GpuBackend& require_gpu_backend();
// A GPU backend is registered and a GPU is present.
bool gpu_available();

// The checks of GPU adaptive selection that need no GPU (UsageError): fixed-length 16-bit Q/K, head_dim
// <= 1024, level in {1, 2, 4, 8}, top_k >= 1, 0 < mass <= 1, mask sizes within MaskShape's limits.
void check_gpu_adaptive(const AttentionProblem& p, const GpuAdaptiveConfig& c);
// gen-mask --backend cuda (GpuBackend::adaptive_mask of the registered backend): RuntimeFailure in a
// build without CUDA or on a machine without a GPU, after the arguments are checked.
BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const GpuAdaptiveConfig& c,
                            GpuAdaptiveTiming* timing = nullptr);

// analyze --backend cuda (GpuBackend::evaluate_mask of the registered backend).
GpuQuality gpu_evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const GpuQualityOptions& opt = {});

}  // namespace bsattn
