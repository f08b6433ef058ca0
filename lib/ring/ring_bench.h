// bench --ranks: the ring's scaling over rank counts for one problem shape and mask recipe.
//
// For each rank count N the ring runs `warmup` + `reps` times on the same seeded inputs; a record keeps the
// medians. The ring time T(N) is:
//   - nccl (one GPU per rank, running at once): the wall time of the ring (the longest rank, host clock);
//   - loopback (virtual ranks sharing this process's device, taking turns at each step): the longest rank's
//     own compute time, i.e. the time the ring would take if each rank had a device to itself and
//     communication were free. Its copies are timed apart (copy_s, the longest rank's) and are not a network's figure.
// Strong scaling (fixed S): speedup T(n0)/T(N), efficiency n0*T(n0) / (N*T(N)), n0 the smallest N given.
// Weak scaling (S grows as N/n0): efficiency of the per-rank throughput, (pairs(N)/(N*T(N))) /
// (pairs(n0)/(n0*T(n0))), since attention's work grows faster than its length.
// Communication is "hidden" when the wall time exceeds the longest rank's compute by under 5% (nccl only).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/mask.h"
#include "lib/ring/ring_attention.h"

namespace bsattn::ring {

enum class Scaling { Strong, Weak };
const char* scaling_name(Scaling s);
std::vector<Scaling> parse_scaling(const std::string& s);  // strong | weak | both; UsageError naming --scaling

struct RingBenchOptions {
  std::vector<int> ranks;       // ascending, distinct
  std::vector<Scaling> scaling = {Scaling::Strong};
  RingConfig ring;              // layout, transport, backend (ranks set per record)
  int warmup = 1, reps = 3;
  uint64_t seed = 0;
};

// The mask for a sequence length (the app's pattern registry).
using RingMaskFactory = std::function<BlockMask(int64_t seq_len)>;

// UsageError for an empty or unsorted rank list, or repeated counts; the ring's own errors as
// ring_attention raises them. `base` holds the shape at the smallest rank count (its q_len = kv_len).
std::vector<nlohmann::json> ring_scaling(const AttentionProblem& base, const RingMaskFactory& make_mask,
                                         const RingBenchOptions& opt,
                                         const std::function<void(const std::string&)>& progress = {});

// Parses "1,2,4,8" (UsageError naming --ranks).
std::vector<int> parse_rank_list(const std::string& s);

// The records as a Markdown table, one row per (scaling, N).
std::string ring_bench_markdown(const std::vector<nlohmann::json>& records);

}  // namespace bsattn::ring
