#include "kernels/bwd/config.h"

#include "lib/error.h"

namespace bsattn::cuda {

BwdConfig select_bwd_config(const BwdParams& p, int cc) {
  if (p.head_dim != 64 && p.head_dim != 128)
    throw UsageError("the CUDA backward supports head_dim 64 and 128, got " + std::to_string(p.head_dim) +
                     " (use --backend cpu)");
  // 64-row query tiles and 64-key tiles: each lies inside one mask block when block_q is 64 or 128 and
  // block_kv a multiple of 64 (the forward's rule), so a tile's mask is one bit.
  if (p.block_q != 64 && p.block_q != 128)
    throw UsageError("the CUDA backward supports block_q 64 and 128, got " + std::to_string(p.block_q));
  if (p.block_kv <= 0 || p.block_kv % 64 != 0)
    throw UsageError("the CUDA backward supports block_kv multiples of 64 (64, 128, ...), got " +
                     std::to_string(p.block_kv));
  if (cc != 0 && cc < 80)
    throw UsageError("the CUDA backward needs an sm_80 or newer GPU; this one is sm_" + std::to_string(cc));
  // The tile shape of kernels/bwd/mainloop_sm80.cuh (BwdSm80Config; tests/kernels checks they agree).
  return {BwdLoop::Sm80, "sm80", 64, 64, 128, 2, p.deterministic};
}

}  // namespace bsattn::cuda
