// Work accounting for every figure bench prints (DESIGN.md, "Performance accounting").
//
// - computed FLOPs: 4 * head_dim * (the (q,k) pairs the mask keeps), each kept block counted with its
//   existing pairs (sequence tails exact) minus the pairs causal removes (diagonal blocks exact).
// - dense-equivalent FLOPs: the same for dense attention of the same shape (causal applied when the
//   mask is causal): what a dense kernel would have to compute to give an exact answer.
// The two are labelled and never mixed: "effective TFLOP/s" is computed FLOPs over time; the
// dense-equivalent rate is reported separately under its own name.
// - minimum bytes: every tensor read or written once (Q, K, V, O in the element type, LSE in f32, the
//   row CSR as int32); backward adds dO (read) and dQ, dK, dV (written).
// Backward = 2.5 x forward FLOPs; "fwd+bwd" = 3.5 x.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/mask.h"

namespace bsattn::bench {

enum class Pass { Fwd, Bwd, FwdBwd };
const char* pass_name(Pass p);                 // "fwd", "bwd", "fwd+bwd"
Pass parse_pass(const std::string& s);         // UsageError listing the allowed names

struct WorkCount {
  int64_t computed_pairs = 0;  // over the whole batch and all query heads
  int64_t dense_pairs = 0;
  double flops_computed = 0;
  double flops_dense_equiv = 0;
  double bytes_min = 0;
  double pair_density() const { return dense_pairs ? double(computed_pairs) / double(dense_pairs) : 0; }
};

// Varlen problems (q and k offsets equal) count each sequence with its own length and blocks. The mask
// must match the problem (validate()).
WorkCount attention_work(const AttentionProblem& p, const BlockMask& mask, Pass pass);

// TFLOP/s of `flops` done in `ms` milliseconds (0 when ms <= 0).
inline double tflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0; }
inline double gbytes_per_s(double bytes, double ms) { return ms > 0 ? bytes / (ms * 1e-3) / 1e9 : 0; }

}  // namespace bsattn::bench
