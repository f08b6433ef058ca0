#include "kernels/bwd/config.h"

#include "kernels/fwd/config.h"
#include "lib/error.h"

namespace bsattn::cuda {

std::vector<std::string> bwd_kernel_names() { return {"sm90", "sm80"}; }

BwdConfig select_bwd_config(const BwdParams& p, int cc, const std::string& kernel) {
  if (!kernel.empty() && kernel != "sm90" && kernel != "sm80")
    throw UsageError("--bwd-kernel must be sm90 or sm80, got '" + kernel + "'");
  if (p.head_dim == 256)
    throw UsageError("the CUDA backward runs head dims up to 128 (64 and 128, smaller ones padded); head dims "
                     "129 to 256 have the GPU forward only (use --backend cpu for their gradients)");
  if (p.head_dim != 64 && p.head_dim != 128)
    throw UsageError("the CUDA backward runs head dims 64 and 128 (kernel_head_dim pads the others), got " +
                     std::to_string(p.head_dim));
  // 64-row query tiles and 64-key tiles: each lies inside one mask block when block_q is 64 or 128 and
  // block_kv a multiple of 64 (the forward's rule), so a tile's mask is one bit.
  if (p.block_q != 64 && p.block_q != 128)
    throw UsageError("the CUDA backward supports block_q 64 and 128, got " + std::to_string(p.block_q));
  if (p.block_kv <= 0 || p.block_kv % 64 != 0)
    throw UsageError("the CUDA backward supports block_kv multiples of 64 (64, 128, ...), got " +
                     std::to_string(p.block_kv));
  if (cc != 0 && cc < 80)
    throw UsageError("the CUDA backward needs an sm_80 or newer GPU; this one is sm_" + std::to_string(cc));
  check_grid_limits(p.heads_q, p.batch, "the CUDA backward");
  // The tile shapes of kernels/bwd/mainloop_sm90.cuh (BwdSm90Config: 128 keys per CTA, so block_kv a
  // multiple of 128) and mainloop_sm80.cuh (BwdSm80Config); tests/kernels checks they agree.
  const BwdConfig sm90{BwdLoop::Sm90, "sm90", 64, 128, 384, 3, p.deterministic};
  const BwdConfig sm80{BwdLoop::Sm80, "sm80", 64, 64, 128, 2, p.deterministic};
  const bool hopper = cc == 90, fits = p.block_kv % 128 == 0;
  if (kernel == "sm90") {
    if (cc != 0 && !hopper)
      throw UsageError("--bwd-kernel sm90 needs an sm_90 GPU (H100/H200); this one is sm_" + std::to_string(cc));
    if (!fits)
      throw UsageError("--bwd-kernel sm90 takes 128 keys per CTA: block_kv must be a multiple of 128, got " +
                       std::to_string(p.block_kv) + " (sm80 takes multiples of 64)");
    return sm90;
  }
  if (kernel == "sm80") return sm80;
  return hopper && fits ? sm90 : sm80;
}

}  // namespace bsattn::cuda
