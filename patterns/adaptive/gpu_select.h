// The energy selector on the GPU (gen-mask --backend cuda): the registry's GPU adaptive selection
// (lib/backend.h) with energy's parameters. Rows of pooling units keep the units with the highest
// softmax mass of the pooled scores until `tau` is reached (min_blocks / pool units at least), at the
// level `pool` asked for. The GPU scores are scale * q_u.k_v of the mean-pooled Q and K, without the
// CPU selector's log(visible keys) term, which differs from a constant only on partial and causal
// diagonal units: masks agree with the CPU's except near those.
#pragma once
#include "lib/attention.h"
#include "lib/backend.h"
#include "lib/bench/sweep.h"
#include "lib/tensor/qkv_source.h"
#include "patterns/registry.h"

namespace bsattn::adaptive {

// The GPU configuration for `req` (one pattern, energy, for every head): UsageError naming the pattern
// or parameter that the GPU selector does not implement (allowed: energy with max_blocks = 0).
GpuAdaptiveConfig gpu_energy_config(const MaskRequest& req);

// The mask of `req` selected on the GPU from `in` (Q/K rounded to `dtype`, bf16 or f16), with spec
// recorded as generate_mask does plus "backend": "cuda". UsageError for bad requests (checked before
// any GPU work); RuntimeFailure without CUDA or a GPU.
BlockMask generate_mask_gpu(const MaskRequest& req, const Qkv& in, ElemType dtype, GpuAdaptiveTiming* timing = nullptr);

// The mask of a bench configuration (bench --synthetic KIND): for a pattern that selects from Q/K,
// synthetic Q/K of the configuration's sizes (seeded), selected on the GPU when `gpu` (energy; timed
// with CUDA events, the median of 5 runs after one warm-up, recorded as mask.spec["mask_build"] =
// {"kind": "gpu_adaptive_select", "ms", "pool_ms", "score_ms", "select_ms", "csr_ms"}), else by the
// CPU selector. Any other pattern is generated as bench always does.
BlockMask bench_mask(const bench::BenchConfig& c, uint64_t seed, const std::string& synthetic, bool gpu);

}  // namespace bsattn::adaptive
