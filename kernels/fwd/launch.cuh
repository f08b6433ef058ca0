// Host side of the forward family: one launch per configuration, and the dispatch from a FwdConfig to
// the kernel of one dtype and head dim (instantiated once per dtype x head dim in kernels/fwd/fwd_*.cu).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/attention_fwd.h"  // device_sm_count, ws_sched_block, WS_MAX_CTAS
#include "kernels/cuda_check.h"
#include "kernels/fwd/config.h"
#include "kernels/fwd/mainloop_sm80.cuh"
#include "kernels/fwd/mainloop_sm90.cuh"
#include "lib/error.h"

namespace bsattn::cuda::fwd {

// Launches `kernel`, the one kernel of configuration T, allowing it T::SMEM_LAUNCH bytes of dynamic
// shared memory (an attribute of the function on each device, set at its first launch there).
template <class T, class Arg>
void launch_kernel(void (*kernel)(Arg), dim3 grid, const Arg& arg, cudaStream_t stream) {
  static PerDeviceOnce configured;
  configured([&] { CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::SMEM_LAUNCH)); });
  kernel<<<grid, T::THREADS, T::SMEM_LAUNCH, stream>>>(arg);
  CUDA_CHECK_LAUNCH("attention forward kernel");
}

// One CTA per query tile: grid (query tiles, heads, sequences).
inline dim3 tile_grid(const FwdParams& p, int bm) { return dim3((p.q_len + bm - 1) / bm, p.heads_q, p.batch); }

// sm90-ws: one persistent CTA per multiprocessor (or p.max_ctas), never more than there are items for
// its pipelines (each pipeline has two item slots in the scheduler's block).
template <class T>
void launch_sm90_ws(const FwdParams& p, cudaStream_t stream) {
  const dim3 tiles = tile_grid(p, T::BM);
  const int64_t items = int64_t(tiles.x) * tiles.y * tiles.z;
  const int64_t ctas = p.max_ctas > 0 ? p.max_ctas : device_sm_count();
  const dim3 grid(unsigned(std::min<int64_t>({(items + T::PIPES - 1) / T::PIPES, ctas, WS_MAX_CTAS / T::PIPES})), 1, 1);
  Sm90Params tp = make_sm90_params<T>(p);
  tp.sched = ws_sched_block();
  launch_kernel<T>(fwd_sm90_ws_kernel<T>, grid, tp, stream);
}

template <class Elem, int D, int BM>
void launch_sm80_general(const FwdParams& p, cudaStream_t stream) {
  if (p.silu && p.rab.on()) {
    using T = Sm80GeneralConfig<Elem, D, BM, true, true>;
    launch_kernel<T>(fwd_sm80_kernel<T>, tile_grid(p, BM), p, stream);
  } else if (p.silu) {
    using T = Sm80GeneralConfig<Elem, D, BM, true>;
    launch_kernel<T>(fwd_sm80_kernel<T>, tile_grid(p, BM), p, stream);
  } else {
    using T = Sm80GeneralConfig<Elem, D, BM, false>;
    launch_kernel<T>(fwd_sm80_kernel<T>, tile_grid(p, BM), p, stream);
  }
}

// Runs configuration c (from select_config) for p on `stream`.
template <class Elem, int D>
void launch_fwd(const FwdParams& p, const FwdConfig& c, cudaStream_t stream) {
  switch (c.loop) {
    case FwdLoop::Sm90Ws:
      if constexpr (D <= 128) {
        if (c.block_m == 64) {  // two pipelines of 64-row items (select_config: no relative bias)
          if (p.silu) return launch_sm90_ws<Sm90WsConfig<Elem, D, true, false, 64>>(p, stream);
          return launch_sm90_ws<Sm90WsConfig<Elem, D, false, false, 64>>(p, stream);
        }
        if (p.silu && p.rab.on()) return launch_sm90_ws<Sm90WsConfig<Elem, D, true, true>>(p, stream);
      }
      if (c.block_m != 128 || (p.silu && p.rab.on())) break;  // D = 256: 128-row items, no relative bias
      if (p.silu) return launch_sm90_ws<Sm90WsConfig<Elem, D, true>>(p, stream);
      return launch_sm90_ws<Sm90WsConfig<Elem, D, false>>(p, stream);
    case FwdLoop::Sm80:
      if constexpr (D <= 128) {  // its O accumulators and K/V tiles leave no room at D = 256
        using T = Sm80Config<Elem, D>;
        return launch_kernel<T>(fwd_sm80_kernel<T>, tile_grid(p, T::BM), p, stream);
      }
      break;
    case FwdLoop::Sm80General:
      if (p.block_q == 64) return launch_sm80_general<Elem, D, 64>(p, stream);
      return launch_sm80_general<Elem, D, 128>(p, stream);
  }
  throw RuntimeFailure("forward configuration " + c.name + " has no launch");
}

}  // namespace bsattn::cuda::fwd
