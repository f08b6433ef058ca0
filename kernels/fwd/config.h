// Which forward configuration runs a problem: the one place that decides it. Launch and the support
// check (before anything is uploaded) both ask select_config. Plain C++: no CUDA types, host-tested.
#pragma once
#include <string>
#include <vector>

#include "kernels/fwd_params.h"

namespace bsattn::cuda {

enum class FwdLoop {
  Sm90Ws,      // Hopper: TMA, warp-specialized persistent CTAs, wgmma; softmax (scale > 0) or SiLU
               // (kernels/fwd/mainloop_sm90.cuh)
  Sm80,        // mma.sync, softmax with scale > 0, block_q 128 (kernels/fwd/mainloop_sm80.cuh)
  Sm80General  // mma.sync, any block_q the mask model allows the kernels (64, 128), softmax or SiLU
};

// A forward configuration: its main loop and tile shape.
struct FwdConfig {
  FwdLoop loop = FwdLoop::Sm80General;
  std::string name;      // as `bsattn bench --list-kernels` and `--kernel` spell it
  int block_m = 0;       // query rows per CTA (sm90-ws: per work item)
  int block_n = 0;       // keys per main-loop step
  int threads = 0;       // per CTA
  int stages = 0;        // depth of the K/V ring
  bool persistent = false;  // one CTA per multiprocessor drawing work items (else one CTA per query tile)
};

// The head dim the kernels run for a problem's head dim: 64, 128 and 256 natively; any other from 1 to
// 256 on the next of them, with Q, K, V (and dO) padded with zero columns and the padding dropped from
// O (and the gradients), the scale staying 1/sqrt(true head dim): zero columns change no score and no
// output. Throws UsageError above 256.
int kernel_head_dim(int head_dim);

// The product's forward kernels, fastest first: sm90-ws, sm80, sm80-general.
std::vector<std::string> fwd_kernel_names();

// The configuration that runs p on a GPU of compute capability cc (major * 10 + minor; 0 when unknown:
// then the architecture is not checked here and launch checks it). `kernel` names one of
// fwd_kernel_names() (the pre-2026-12 names of the same kernels are accepted too), or is "" for the
// fastest one that can run p. Throws UsageError naming what is wrong and what is allowed.
FwdConfig select_config(const FwdParams& p, int cc, const std::string& kernel = "");

// The kernels that launch one CTA row per query head and per sequence (gridDim.y, gridDim.z): the sm80
// loops and both backward loops. UsageError naming `who` past CUDA's limit (lib/sizes.h's kMaxGridDim).
void check_grid_limits(int heads, int batch, const std::string& who);

}  // namespace bsattn::cuda
