// One call computes what `bsattn run` writes: block-sparse attention on loaded Q/K/V and a resolved mask,
// on the CUDA backend (16-bit inputs) or the CPU reference (float32, or float64 narrowed to float32),
// with the gradients when dO is given, in the original token order when the inputs were reordered, and
// the CPU float32 forward's time when asked.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/progress.h"

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/mask_stats.h"
#include "lib/reference/cpu_ceiling.h"
#include "lib/tensor/qkv_source.h"

namespace bsattn {

struct RunRequest {
  Qkv inputs;          // values exact in their dtype; already in token_order when it is given
  Tensor d_o;          // with gradients: dO in the original token order, the shape of Q (UsageError if not)
  bool gradients = false;
  BlockMask mask;      // resolved for the inputs as given (reordered ones included)
  std::vector<int64_t> token_order;  // empty: none; else outputs are returned in the original order
  Backend backend = Backend::Cpu;
  AttentionOptions cuda;             // cuda: kernel, max_ctas, deterministic
  bool f64 = false;                  // cpu: compute in float64
  bool time = false;                 // cpu float32: time the forward side by side with Eigen's GEMM
  int time_repeats = 5;              // --time: timed forwards, each followed by a ceiling round
  int threads = 0;                   // cpu threads (0: all)
  ProgressMeter* progress = nullptr;  // cpu: the passes' row/column blocks as they finish (may be null)
  ScoreFn score = ScoreFn::Softmax;
  double scale = 0;                  // 0: 1/sqrt(D)
  double silu_n = 0;                 // silu: 0 means kv_len (varlen: the longest sequence)
  // Varlen: offsets of the sequences packed in Q/K/V (lib/varlen/varlen.h; one set for Q and K); the mask
  // is resolve_varlen_mask's. Outputs are then packed: O [total,Hq,D], LSE [Hq,total].
  std::vector<int32_t> cu_seqlens;
};

// --time: the CPU float32 forward (conversion of the inputs included), FLOPs = 4 * D * pairs, timed
// time_repeats times after a warm-up, each time followed by a round of Eigen's GEMM of the block-pair
// shape on every thread (compare_with_ceiling), so that the forward and its ceiling see the same load.
struct RunTiming {
  double seconds = 0;  // the median forward
  double gflops = 0;   // of the median forward
  int64_t pairs = 0;
  int threads = 0;
  GemmCeiling gemm;             // round_gflops: the round after each forward; gflops: the best round
  std::vector<double> seconds_each, ratios;  // per repetition: the forward, its GFLOP/s over the next round
  double ceiling_median = 0;    // median round, GFLOP/s total over the threads
  double ratio = 0;             // median of ratios
};

struct RunResult {
  AttentionProblem problem;
  std::vector<float> out, lse, dq, dk, dv;  // BSHD float32 ([B,Hq,Sq] for lse), original token order
  std::string backend_name;                 // "cuda (bf16[, kernel K])", "cpu (float32)", "cpu (float64)"
  std::optional<RunTiming> timing;
};

// The element type the CUDA backend takes: Q, K and V share one 16-bit type (bf16 / f16 files, or
// float32 files rounded by --dtype bf16 / f16); UsageError otherwise.
ElemType cuda_input_type(const Qkv& in);

// Usage errors (element types, shapes, what the kernel supports) before any work; then the backend's
// runtime failures (no GPU, CUDA errors). The inputs are consumed.
RunResult run_attention(RunRequest req);

}  // namespace bsattn
