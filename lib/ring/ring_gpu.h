// The GPU side of the ring as lib/ sees it: kernels/ implements it and registers one instance at static
// initialization (kernels/gpu_backend.cpp), as lib/backend.h's GpuBackend. A build without CUDA has none.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/ring/rank_engine.h"
#include "lib/ring/transport.h"

namespace bsattn::ring {

class RingGpu {
 public:
  virtual ~RingGpu() = default;
  virtual int device_count() const = 0;  // 0 without a usable GPU
  // An engine whose buffers live on `device` (the calling thread's current device is set to it). The
  // steps run the device passes with `opt` (kernel, max_ctas); sizes.dtype is bf16 or f16.
  virtual std::unique_ptr<RankEngine> make_engine(int device, const EngineSizes& sizes, const AttentionOptions& opt) = 0;
  // UsageError when the backward kernels cannot run this problem (needs no GPU).
  virtual void check_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) const = 0;
  // Whether this build can run NCCL; when not, `why` says what is missing.
  virtual bool nccl_available(std::string* why) const = 0;
  // One NCCL communicator per GPU 0..ranks-1 in this process (ncclCommInitAll); transport r is used by the
  // thread of rank r, on `compute_streams[r]` (the engines' streams). RuntimeFailure when NCCL cannot be
  // loaded or initialised, or there are fewer GPUs than ranks.
  virtual std::vector<std::unique_ptr<Transport>> make_nccl(int ranks, const std::vector<void*>& compute_streams) = 0;
};

void register_ring_gpu(RingGpu* gpu);
RingGpu* ring_gpu();  // nullptr in a build without CUDA

}  // namespace bsattn::ring
