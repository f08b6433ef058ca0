// Dispatch of the forward kernel family by dtype, and the support check.
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

std::vector<std::string> fwd_variants() {
  return {"wg-tma-ws-ppf", "wg-tma-ws-ppo", "wg-tma-ws-ppv", "wg-tma-ws-pp", "wg-tma-s2", "wg-tma", "wg-tma-ws", "wg-tma-s2e", "wg-tma-ws-ov", "fa2-v4-w4-h", "wg-n128", "wg-n128-s3", "wg-n64", "wg-n64-ov", "fa2-v4-w4", "fa2-v4-w4-p", "fa2-v3-w4", "fa2-v3-w4-n32", "fa2-v3", "fa2-v2", "fa2-v2-s2", "fa2-v2-w4", "fa2-v2-w8", "fa2-v2-n64", "fa2-w8", "fa2-w4", "fa2-w8-n128"};
}

void check_fwd_supported(const FwdParams& p, const std::string& v) {
  if (p.head_dim != 64 && p.head_dim != 128)
    throw UsageError("the CUDA kernel supports head_dim 64 and 128, got " + std::to_string(p.head_dim) +
                     " (use --backend cpu)");
  if (p.block_q != 64 && p.block_q != 128)
    throw UsageError("the CUDA kernel supports block_q 64 and 128, got " + std::to_string(p.block_q));
  if (p.block_kv % 64 != 0)
    throw UsageError("the CUDA kernel supports block_kv multiples of 64 (64, 128, ...), got " +
                     std::to_string(p.block_kv));
  bool known = v.empty();
  for (auto& n : fwd_variants()) known |= n == v;
  if (!known) {
    std::string all;
    for (auto& n : fwd_variants()) all += (all.empty() ? "" : ", ") + n;
    throw UsageError("unknown kernel variant '" + v + "' (allowed: " + all + ")");
  }
}

std::string resolve_fwd_variant(const FwdParams& p, const std::string& v) {
  if (!v.empty()) return v;
  const bool softmax = !p.silu && p.scale > 0.f;
  if (p.block_q == 128 && softmax) {
    // wg-tma-ws-ppf since run 11 (results/forward-h200-ppf.md: 525 against wg-tma-ws-ppo's 511 TFLOP/s
    // at S=8192 d=0.09, equal dense; chosen in results/forward-h200-ppf-0e6fe9d.md). Every earlier
    // default and why it was replaced, run by run, is in the log at the top of
    // kernels/attention_fwd_sm90.cuh. Elsewhere fa2-v4-w4-h (the FlashAttention-2 style loop,
    // results/forward-h200.md).
    if (p.block_kv % 128 == 0 && device_cc() == 90) return "wg-tma-ws-ppf";
    return "fa2-v4-w4-h";
  }
  return "fa2-w8";
}

void launch_attention_fwd(const FwdParams& p, ElemType t, const std::string& v_in, cudaStream_t s) {
  check_fwd_supported(p, v_in);
  const std::string v = resolve_fwd_variant(p, v_in);
  if (t == ElemType::BF16) return launch_attention_fwd_bf16(p, v, s);
  if (t == ElemType::F16) return launch_attention_fwd_f16(p, v, s);
  throw UsageError("the CUDA kernel takes bf16 or f16 inputs, got f32 (convert, or use --backend cpu)");
}

}  // namespace bsattn::cuda
