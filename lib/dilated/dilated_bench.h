// bench --dilated: the time of dilated attention over a sweep of shapes, LongNet configurations and token
// orders (a curve over a grid, applied before the segments are cut), as bsattn.bench/v1 records
// (spec "SEG:RATE,...;order=NAME", pattern "dilated-attn " + spec so that tables tell them apart; the
// pattern family `dilated` is something else: block-level bands).
//
// What is timed: on the CPU backend, the whole computation on the host clock (the token order applied,
// each branch's residue permutation and forward, the merge, the order undone); on the cuda backend, the
// forward with everything on the GPU from the inputs (in the token order) to the merged output: the
// gathers into each branch's residue order, the branches' block-sparse forwards and the LSE merge
// (lib/dilated/dilated_gpu.h; CUDA events, L2 flushed before every sample), each part also timed alone
// (the records' gather_ms, branches_ms, merge_ms: medians); the token order itself is applied beforehand
// (a model keeps its tokens in that order). The cuda backward passes: each branch's pass, summed. FLOPs: 4 * D *
// dilated_pairs (x2.5 for bwd, x3.5 for fwd+bwd). The dense baseline is the same shape timed densely.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/bench/runner.h"
#include "lib/bench/sweep.h"
#include "lib/curves/order.h"
#include "lib/dilated/dilated.h"

namespace bsattn::dilated {

struct DilatedBenchPlan {
  bench::SweepAxes axes;               // seq, head_dim, heads, kv_heads, batch, block, dtype, pass
  std::vector<DilatedSpec> specs;      // one or more LongNet configurations
  std::vector<std::string> orders;     // order specs; "standard" (or empty): the sequence as it is
  std::string grid;                    // the grid of the orders ("" when orders is only standard)
  int64_t text = 0;                    // text tokens before the grid
};

// Splits "2048:1,4096:2;8192:4" into specs (';' between configurations).
std::vector<DilatedSpec> parse_dilated_list(const std::string& text, bool causal, const std::string& what);

struct DilatedBenchOptions {
  bench::TimingOptions timing;
  uint64_t seed = 0;
  std::function<void(const std::string&)> progress;
};

// Every configuration the backend cannot run (dtype, head_dim, a seq that does not match the grid) is
// skipped with its reason.
bench::BenchDoc run_dilated_bench(const DilatedBenchPlan& plan, bench::BenchBackend& backend,
                                  const DilatedBenchOptions& opt, nlohmann::json context);

}  // namespace bsattn::dilated
