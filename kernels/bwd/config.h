// Which backward configuration runs a problem: the one place that decides it (launch and the support
// check before any upload both ask select_bwd_config). Plain C++: no CUDA types, host-tested
// (tests/kernels/test_bwd_config.cu).
#pragma once
#include <string>
#include <vector>

#include "kernels/bwd_params.h"

namespace bsattn::cuda {

enum class BwdLoop {
  Sm80,  // mma.sync m16n8k16 (kernels/bwd/mainloop_sm80.cuh); runs on sm_80 and newer, sm_90 included
  Sm90   // wgmma + TMA, warp-specialized (kernels/bwd/mainloop_sm90.cuh); sm_90 only
};

// A backward configuration: its main loop, tile shape and how dQ is summed.
struct BwdConfig {
  BwdLoop loop = BwdLoop::Sm80;
  std::string name;         // "sm90" or "sm80"
  int block_m = 0;          // query rows per step of the dK/dV loop
  int block_n = 0;          // keys per CTA of the dK/dV loop
  int threads = 0;          // per CTA
  int stages = 0;           // depth of the Q/dO ring (dK/dV loop) and of the K/V ring (dQ pass)
  bool dq_separate = false; // dQ by its own pass over the row form (deterministic) instead of atomics
};

// The configuration that runs p on a GPU of compute capability cc (major * 10 + minor; 0 when unknown:
// the architecture is then not checked): `kernel` "" picks the default (sm90 on sm_90 where its tile
// fits the mask's blocks, sm80 otherwise); "sm90" or "sm80" asks for one. Throws UsageError naming what
// is wrong and what is allowed.
BwdConfig select_bwd_config(const BwdParams& p, int cc, const std::string& kernel = "");
// The backward kernels by name, for --bwd-kernel.
std::vector<std::string> bwd_kernel_names();

}  // namespace bsattn::cuda
