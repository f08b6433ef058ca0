// What `bsattn run --ranks N` computes: run_attention's request (lib/run/run.h) through the ring
// (ring_attention.h) instead of one rank; the same outputs, in the original token order.
#pragma once
#include <nlohmann/json.hpp>

#include "lib/ring/ring_attention.h"
#include "lib/run/run.h"

namespace bsattn::ring {

struct RingRunResult {
  RunResult run;    // out, lse (and gradients), problem, backend name
  RingResult ring;  // per-rank reports (its out/lse/gradients moved into `run`)
};

// Usage errors first (what the ring refuses: varlen, SiLU, float64, Q and K/V of different lengths, the
// layout; on cuda 16-bit inputs and the kernels' limits), then the backend's and transport's runtime
// failures. The inputs are consumed.
RingRunResult run_ring(RunRequest req, const RingConfig& cfg);

// The ring's configuration and per-rank reports for a run's --json.
nlohmann::json ring_report_json(const RingConfig& cfg, const RingResult& r);

}  // namespace bsattn::ring
