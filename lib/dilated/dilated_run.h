// One call computes what `bsattn run --dilated` writes: dilated attention (lib/dilated/dilated.h) on loaded
// Q/K/V, on the CUDA backend (16-bit inputs) or the CPU reference (float32, or float64 narrowed to
// float32), with the gradients when dO is given, in the original token order when the inputs were put
// into a token order first (--order: a curve over a grid, applied before the segments are cut).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/dilated/dilated.h"
#include "lib/tensor/qkv_source.h"
#include "lib/tensor/tensor_io.h"

namespace bsattn::dilated {

struct DilatedRunRequest {
  Qkv inputs;                        // already in token_order when it is given
  Tensor d_o;                        // with gradients: dO in the original token order, the shape of Q
  bool gradients = false;
  DilatedSpec spec;
  std::vector<int64_t> token_order;  // empty: none; else outputs are returned in the original order
  DilatedOptions options;            // backend, kernel, f64, threads, block sizes
  double scale = 0;                  // 0: 1/sqrt(D)
};

struct DilatedRunResult {
  AttentionProblem problem;
  std::vector<float> out, lse, dq, dk, dv;  // BSHD float32 ([B,Hq,S] for lse), original token order
  std::string backend_name;
  int64_t computed_pairs = 0;               // dilated_pairs: FLOPs = 4 * D * pairs
  int64_t dense_pairs = 0;                  // what dense attention computes (causal applied)
  double seconds = 0;                       // host clock: permutations, branches and merge (with dO: and the backward)
};

// Usage errors (element types, shapes, the spec against the problem) before any work; then the
// backend's runtime failures.
DilatedRunResult run_dilated(DilatedRunRequest req);

}  // namespace bsattn::dilated
