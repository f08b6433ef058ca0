#include "kernels/fwd/config.h"

#include "lib/error.h"
#include "lib/sizes.h"

namespace bsattn::cuda {

namespace {

// The tile shapes of kernels/fwd/mainloop_sm80.cuh and mainloop_sm90.cuh (their static_asserts hold
// the kernels to them; tests/kernels checks that the two agree).
// block_m 64: two pipelines of 64-row items and 64-key tiles per CTA (mask blocks of 64 query rows).
// Head dim 256: 128-row items and 64-key tiles.
FwdConfig sm90_ws(int head_dim, int block_m = 128) {
  const int stages = head_dim == 64 ? (block_m == 64 ? 4 : 3) : 2;
  const int block_n = head_dim == 256 ? 64 : block_m;
  return {FwdLoop::Sm90Ws, "sm90-ws", block_m, block_n, 384, stages, true};
}
FwdConfig sm80() { return {FwdLoop::Sm80, "sm80", 128, 64, 128, 2, false}; }
FwdConfig sm80_general(int block_q) { return {FwdLoop::Sm80General, "sm80-general", block_q, 64, block_q * 2, 2, false}; }

// Names the same kernels had before the kernel family was reduced to these three.
std::string canonical_name(const std::string& k) {
  if (k == "wg-tma-ws-ppf") return "sm90-ws";
  if (k == "fa2-v4-w4-h") return "sm80";
  if (k == "fa2-w8") return "sm80-general";
  return k;
}

std::string all_names() {
  std::string s;
  for (auto& n : fwd_kernel_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

int kernel_head_dim(int head_dim) {
  if (head_dim < 1 || head_dim > 256)
    throw UsageError("the CUDA kernels support head dims 1 to 256 (64, 128 and 256 natively, others padded to the "
                     "next of them), got " + std::to_string(head_dim) + " (use --backend cpu)");
  return head_dim <= 64 ? 64 : head_dim <= 128 ? 128 : 256;
}

std::vector<std::string> fwd_kernel_names() { return {"sm90-ws", "sm80", "sm80-general"}; }

void check_grid_limits(int heads, int batch, const std::string& who) {
  if (heads > kMaxGridDim || batch > kMaxGridDim)
    throw UsageError(who + " launches a CTA row per query head and per sequence: at most " +
                     std::to_string(kMaxGridDim) + " of each (CUDA's grid limit), got " + std::to_string(heads) +
                     " heads and " + std::to_string(batch) + " sequences");
}

namespace {

FwdConfig select_config_unchecked(const FwdParams& p, int cc, const std::string& kernel_in) {
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256)
    throw UsageError("the CUDA kernels run head dims 64, 128 and 256 (kernel_head_dim pads the others), got " +
                     std::to_string(p.head_dim));
  if (p.block_q != 64 && p.block_q != 128)
    throw UsageError("the CUDA kernels support block_q 64 and 128, got " + std::to_string(p.block_q));
  if (p.block_kv <= 0 || p.block_kv % 64 != 0)
    throw UsageError("the CUDA kernels support block_kv multiples of 64 (64, 128, ...), got " +
                     std::to_string(p.block_kv));
  if (cc != 0 && cc < 80)
    throw UsageError("the CUDA kernels need an sm_80 or newer GPU; this one is sm_" + std::to_string(cc));
  const std::string kernel = canonical_name(kernel_in);
  // sm90-ws and sm80 take the row max on raw scores, which needs scale > 0; sm90-ws also runs SiLU
  // (any scale: no row max), with or without HSTU's relative bias.
  const bool raw_softmax = !p.silu && p.scale > 0.f;
  const bool sm90_score = raw_softmax || p.silu;
  const bool hopper = cc == 90;

  // Head dim 256: sm80's O accumulators and K/V tiles leave it no room; sm90-ws runs it with 128-row
  // items and 64-key tiles (any block_kv), without the relative bias.
  const bool wide = p.head_dim > 128;
  const bool ws_wide = p.block_q == 128 && !(p.silu && p.rab.on());

  // sm90-ws's 64-row items (block_q 64) take 64-key tiles and no relative bias.
  const bool ws64 = p.block_q == 64 && !(p.silu && p.rab.on());
  if (kernel.empty()) {
    if (wide) return ws_wide && hopper && sm90_score ? sm90_ws(p.head_dim) : sm80_general(p.block_q);
    if (p.block_q == 128 && p.block_kv % 128 == 0 && hopper && sm90_score) return sm90_ws(p.head_dim);
    if (ws64 && hopper && sm90_score) return sm90_ws(p.head_dim, 64);
    if (p.block_q == 128 && raw_softmax) return sm80();
    return sm80_general(p.block_q);
  }
  auto refuse = [&](const std::string& why) {
    throw UsageError("kernel " + kernel + " " + why + " (the default, --kernel left out, picks one that can)");
  };
  if (kernel == "sm90-ws") {
    if (cc != 0 && !hopper) refuse("needs an sm_90 GPU (H100/H200); this one is sm_" + std::to_string(cc));
    if (!sm90_score) refuse("needs the SiLU score or the softmax score with scale > 0");
    if (wide) {
      if (p.block_q != 128) refuse("runs head dim 256 with block_q 128 only, got " + std::to_string(p.block_q));
      if (!ws_wide) refuse("runs HSTU's relative bias up to head dim 128, got " + std::to_string(p.head_dim));
      return sm90_ws(p.head_dim);
    }
    if (p.block_q == 64) {
      if (!ws64) refuse("runs HSTU's relative bias with block_q 128 only");
      return sm90_ws(p.head_dim, 64);
    }
    if (p.block_kv % 128 != 0) refuse("needs block_kv a multiple of 128 with block_q 128, got " + std::to_string(p.block_kv));
    return sm90_ws(p.head_dim);
  }
  if (kernel == "sm80") {
    if (wide) refuse("runs head dims up to 128, got " + std::to_string(p.head_dim));
    if (p.block_q != 128) refuse("needs block_q 128, got " + std::to_string(p.block_q));
    if (!raw_softmax) refuse("needs the softmax score with scale > 0");
    return sm80();
  }
  if (kernel == "sm80-general") return sm80_general(p.block_q);
  throw UsageError("unknown kernel '" + kernel_in + "' (allowed: " + all_names() + ")");
}

}  // namespace

FwdConfig select_config(const FwdParams& p, int cc, const std::string& kernel) {
  FwdConfig c = select_config_unchecked(p, cc, kernel);
  // sm90-ws is persistent (one CTA per SM, work items drawn in turn); the sm80 loops' grid is tiles x
  // heads x sequences.
  if (c.loop != FwdLoop::Sm90Ws) check_grid_limits(p.heads_q, p.batch, "the " + c.name + " kernel");
  return c;
}

}  // namespace bsattn::cuda
