// bench --nsa: NSA's forward (lib/nsa/nsa.h: the compressed branch, the selection, the two block-sparse
// branches and the gate sum, all of it; on the CPU or, with the cuda backend, on the GPU) timed by the
// harness of lib/bench/stats.h for every (batch, heads, seq, head_dim) of the sweep axes, against dense
// causal attention of the same shape timed the same way.
// Records use the bsattn.bench/v1 columns: pattern "nsa", spec the NSA parameters, block the selection
// block, density the selected branch's block density, flops_computed 4*D*(the (q,k) pairs of the three
// branches: selected and window pairs, and one pair per visible compressed block), flops_dense_equiv the
// dense causal pairs.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "lib/bench/results.h"
#include "lib/bench/runner.h"
#include "lib/bench/stats.h"
#include "lib/bench/sweep.h"
#include "lib/nsa/nsa.h"
#include "lib/progress.h"

namespace bsattn::bench {

// gpu: the cuda bench backend (NSA's GPU path, lib/nsa/nsa_gpu.h, timed with CUDA events and the L2 flushed,
// one record per dtype of the axes; dense causal attention on the same backend), or null for the CPU.
BenchDoc run_nsa_bench(const SweepAxes& axes, const NsaParams& np, const std::string& spec, const TimingOptions& timing,
                       uint64_t seed, nlohmann::json context, ProgressMeter* meter = nullptr, BenchBackend* gpu = nullptr);

}  // namespace bsattn::bench
