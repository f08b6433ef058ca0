// Host side of the backward family: the sequence of launches of one backward pass (preprocess, the
// dK/dV loop, then the dQ pass or the dQ postprocess) for the configuration select_bwd_config picked,
// instantiated once per dtype x head dim in kernels/bwd/bwd_*.cu.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/attention_bwd.h"
#include "kernels/bwd/config.h"
#include "kernels/bwd/mainloop_sm80.cuh"
#include "kernels/bwd/mainloop_sm90.cuh"
#include "kernels/cuda_check.h"
#include "lib/error.h"

namespace bsattn::cuda::bwd {

// Launches KERNEL with `smem` bytes of dynamic shared memory (the opt-in above 48 KiB is an attribute of
// the function on each device, set at its first launch there).
template <void (*KERNEL)(BwdParams)>
void launch_smem(dim3 grid, int threads, int smem, const BwdParams& p, cudaStream_t stream) {
  static PerDeviceOnce configured;
  configured([&] { CUDA_CHECK(cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, smem)); });
  KERNEL<<<grid, threads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH("attention backward kernel");
}

// dQ = scale * accumulator (atomic mode), after the dK/dV loop.
template <class Elem, int D>
void launch_dq_postprocess(const BwdParams& p, cudaStream_t stream) {
  const int64_t n4 = p.total_q * p.heads_q * D / 4;
  const unsigned blocks = unsigned(std::min<int64_t>((n4 + 255) / 256, 65535));
  if (n4 > 0) {
    bwd_postprocess_kernel<Elem, D><<<blocks, 256, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH("attention backward dQ postprocess");
  }
}

// The deterministic dQ pass (sm80's, on every GPU): one CTA per 64-row query tile.
template <class Elem, int D, bool SILU>
void launch_dq_pass(const BwdParams& p, cudaStream_t stream) {
  using T = BwdSm80Config<Elem, D, SILU>;
  const dim3 q_grid(unsigned((p.q_len + T::BM - 1) / T::BM), unsigned(p.heads_q), unsigned(p.batch));
  launch_smem<bwd_dq_kernel<T>>(q_grid, T::THREADS, T::SMEM_DQ, p, stream);
}

// The sm90 dK/dV loop (with dQ atomics, or without for the deterministic pass). The shared-memory
// opt-in is per kernel and device, set at its first launch there.
template <class T, bool DQ_ATOMIC>
void launch_sm90_kernel(const BwdSm90Params& tp, cudaStream_t stream) {
  static PerDeviceOnce configured;
  configured([&] {
    CUDA_CHECK(cudaFuncSetAttribute(bwd_sm90_kernel<T, DQ_ATOMIC>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    T::SMEM_LAUNCH));
  });
  const BwdParams& p = tp.p;
  const dim3 grid(unsigned((p.kv_len + T::BN - 1) / T::BN), unsigned(p.heads_kv), unsigned(p.batch));
  bwd_sm90_kernel<T, DQ_ATOMIC><<<grid, T::THREADS, T::SMEM_LAUNCH, stream>>>(tp);
  CUDA_CHECK_LAUNCH("attention backward kernel (sm90)");
}

template <class Elem, int D, bool SILU>
void launch_sm90(const BwdParams& p, const BwdConfig& c, cudaStream_t stream) {
  using T = BwdSm90Config<Elem, D, SILU>;
  const BwdSm90Params tp = make_bwd_sm90_params<T>(p);
  if (c.dq_separate) {
    launch_sm90_kernel<T, false>(tp, stream);
    return launch_dq_pass<Elem, D, SILU>(p, stream);
  }
  launch_sm90_kernel<T, true>(tp, stream);
  launch_dq_postprocess<Elem, D>(p, stream);
}

template <class Elem, int D, bool SILU>
void launch_loops(const BwdParams& p, const BwdConfig& c, cudaStream_t stream) {
  if (c.loop == BwdLoop::Sm90) return launch_sm90<Elem, D, SILU>(p, c, stream);
  using T = BwdSm80Config<Elem, D, SILU>;
  // One CTA per KV tile, KV head and sequence; causal: the first KV tiles have the most query tiles
  // and start first.
  const dim3 kv_grid(unsigned((p.kv_len + T::BN - 1) / T::BN), unsigned(p.heads_kv), unsigned(p.batch));
  if (c.dq_separate) {
    launch_smem<bwd_dkdv_kernel<T, false>>(kv_grid, T::THREADS, T::SMEM_DKDV, p, stream);
    return launch_dq_pass<Elem, D, SILU>(p, stream);
  }
  launch_smem<bwd_dkdv_kernel<T, true>>(kv_grid, T::THREADS, T::SMEM_DKDV, p, stream);
  launch_dq_postprocess<Elem, D>(p, stream);
}

// Runs configuration c (from select_bwd_config) for p on `stream`: D_i and the zeroed dQ accumulator,
// then the loops.
template <class Elem, int D>
void launch_bwd(const BwdParams& p, const BwdConfig& c, cudaStream_t stream) {
  const int64_t rows = p.total_q * p.heads_q;
  if (rows > 0) {
    bwd_preprocess_kernel<Elem, D><<<unsigned((rows + 7) / 8), 256, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH("attention backward preprocess");
  }
  if (p.silu) return launch_loops<Elem, D, true>(p, c, stream);
  return launch_loops<Elem, D, false>(p, c, stream);
}

}  // namespace bsattn::cuda::bwd
