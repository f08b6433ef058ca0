// The CUDA implementation of lib/backend.h's GpuBackend, registered when this object is linked
// (CMakeLists.txt links it as an OBJECT library, so no linker drops it for want of a reference).
#include "kernels/attention_device.h"
#include "kernels/attention_runner.h"
#include "kernels/bench_backend.h"
#include "kernels/mask_build.h"
#include "kernels/quality_cuda.h"
#include "kernels/ring_engine.h"
#include "lib/ring/ring_gpu.h"
#include "kernels/sparse_pipelines.h"
#include "lib/dilated/dilated_gpu.h"
#include "lib/nsa/nsa_gpu.h"
#include "lib/backend.h"
#include "lib/error.h"

namespace bsattn::cuda {

namespace {

class CudaGpuBackend : public GpuBackend {
 public:
  bool available() const override { return gpu_present(); }
  GpuDeviceInfo device_info() const override { return cuda::device_info(); }
  std::vector<std::string> kernels() const override { return AttentionRunner::kernel_variants(); }
  void check_supported(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) const override {
    AttentionRunner::check_supported(p, mask, opt);
  }
  AttentionResult forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                          const AttentionOptions& opt) override {
    AttentionRunner r(AttentionRunner::Checked{}, p, mask, in, opt);
    r.launch();
    return r.result();
  }
  AttentionGradients backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                              const AttentionResult& fwd, const float* dout, const AttentionOptions& opt) override {
    AttentionRunner::check_backward_supported(p, mask, opt);
    if (!gpu_present()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
    // The forward's O and LSE as given (not recomputed): the gradients are those of that forward pass.
    AttentionRunner r(AttentionRunner::Checked{}, p, mask, in, opt);
    r.set_forward(fwd);
    r.prepare_backward(dout, opt.deterministic);
    r.launch_backward();
    return r.gradients();
  }
  size_t device_workspace_bytes(const DeviceAttention& a, bool backward) const override {
    return cuda::device_workspace_bytes(a, backward);
  }
  void forward_device(const DeviceAttention& a) override {
    if (!gpu_present()) throw RuntimeFailure("the CUDA backend: no CUDA GPU is available here; use the CPU backend");
    cuda::forward_device(a);
  }
  void backward_device(const DeviceAttention& a) override {
    BlockMask shape_only;  // the checks read the mask's sizes only
    shape_only.shape = a.mask_shape;
    shape_only.causal = a.causal;
    AttentionRunner::check_backward_supported(a.problem, shape_only, a.options);
    if (!gpu_present()) throw RuntimeFailure("the CUDA backend: no CUDA GPU is available here; use the CPU backend");
    cuda::backward_device(a);
  }
  std::unique_ptr<bench::BenchBackend> make_bench_backend(const bench::CudaBenchOptions& opt) override {
    return cuda::make_bench_backend(opt);
  }
  GpuQuality evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                           const GpuQualityOptions& opt) override {
    return evaluate_mask_cuda(p, mask, in, opt);
  }
  BlockMask adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const GpuAdaptiveConfig& c,
                          GpuAdaptiveTiming* timing) override {
    return cuda::gpu_adaptive_mask(p, in, c, timing);
  }
};

CudaGpuBackend backend;
const bool registered = (register_gpu_backend(&backend), true);
const bool pipelines_registered =
    (dilated::register_dilated_gpu(&dilated_gpu_instance()), register_nsa_gpu(&nsa_gpu_instance()), true);

// The ring's GPU side (lib/ring/ring_gpu.h): the CUDA engine and the NCCL transport.
class CudaRingGpu : public ring::RingGpu {
 public:
  int device_count() const override { return gpu_present() ? ring_device_count() : 0; }
  std::unique_ptr<ring::RankEngine> make_engine(int device, const ring::EngineSizes& sizes,
                                                const AttentionOptions& opt) override {
    return make_ring_engine(device, sizes, opt);
  }
  void check_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) const override {
    AttentionRunner::check_backward_supported(p, mask, opt);
  }
  bool nccl_available(std::string* why) const override { return nccl_usable(why); }
  std::vector<std::unique_ptr<ring::Transport>> make_nccl(int ranks, const std::vector<void*>& streams) override {
    return make_nccl_transports(ranks, streams);
  }
};

CudaRingGpu ring_gpu_impl;
const bool ring_registered = (ring::register_ring_gpu(&ring_gpu_impl), true);

}  // namespace

}  // namespace bsattn::cuda
