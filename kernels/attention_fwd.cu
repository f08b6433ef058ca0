// The forward family's host entry: device queries, the sm90-ws scheduler blocks, and the dispatch of a
// launch to the instantiation of its dtype and head dim with the configuration select_config picks.
#include "kernels/attention_fwd.h"

#include <mutex>

#include "kernels/cuda_check.h"
#include "lib/error.h"

namespace bsattn::cuda {

namespace {
// A device attribute of the current device, asked once per device.
int cached_attribute(cudaDeviceAttr attr, int (&cache)[64]) {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 0;
  if (!cache[dev]) CUDA_CHECK(cudaDeviceGetAttribute(&cache[dev], attr, dev));
  return cache[dev];
}
}  // namespace

int device_cc() {
  static int major[64] = {}, minor[64] = {};
  return cached_attribute(cudaDevAttrComputeCapabilityMajor, major) * 10 +
         cached_attribute(cudaDevAttrComputeCapabilityMinor, minor);
}

int device_sm_count() {
  static int count[64] = {};
  return cached_attribute(cudaDevAttrMultiProcessorCount, count);
}

unsigned* ws_sched_block() {
  // 64 blocks per device, zeroed once; each kernel leaves its counters at zero when it ends, and a block
  // is reused only 64 launches later, so launches in flight at once on different streams do not share one.
  constexpr int BLOCKS = 64;
  static std::mutex mu;
  static unsigned* blocks[64] = {};
  static unsigned next[64] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) throw RuntimeFailure("CUDA device index " + std::to_string(dev) + " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!blocks[dev]) {
    unsigned* d = nullptr;
    CUDA_CHECK(cudaMalloc(&d, size_t(BLOCKS) * WS_SCHED_WORDS * sizeof(unsigned)));
    CUDA_CHECK(cudaMemset(d, 0, size_t(BLOCKS) * WS_SCHED_WORDS * sizeof(unsigned)));
    blocks[dev] = d;
  }
  return blocks[dev] + size_t(WS_SCHED_WORDS) * (next[dev]++ % BLOCKS);
}

std::vector<std::string> fwd_variants() { return fwd_kernel_names(); }

void check_fwd_supported(const FwdParams& p, const std::string& v) {
  int count = 0;
  const bool gpu = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  if (!gpu) cudaGetLastError();  // clear the error left by a machine without a GPU
  select_config(p, gpu ? device_cc() : 0, v);
}

std::string resolve_fwd_variant(const FwdParams& p, const std::string& v) { return select_config(p, device_cc(), v).name; }

void launch_attention_fwd(const FwdParams& p, ElemType t, const std::string& v, cudaStream_t s) {
  if (t == ElemType::F32)
    throw UsageError("the CUDA kernels take bf16 or f16 inputs, got f32 (convert, or use --backend cpu)");
  const FwdConfig c = select_config(p, device_cc(), v);
  const bool bf16 = t == ElemType::BF16;
  if (p.head_dim == 64) return bf16 ? fwd::launch_bf16_d64(p, c, s) : fwd::launch_f16_d64(p, c, s);
  if (p.head_dim == 256) return bf16 ? fwd::launch_bf16_d256(p, c, s) : fwd::launch_f16_d256(p, c, s);
  return bf16 ? fwd::launch_bf16_d128(p, c, s) : fwd::launch_f16_d128(p, c, s);
}

}  // namespace bsattn::cuda
