// HSTU's relative attention bias and u-gating options of `run` (lib/hstu/hstu.h computes; docs/hstu.md).
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "lib/hstu/hstu.h"

namespace bsattn::app {

struct HstuCli {
  std::string rab_pos, rab_ts, timestamps, rab, gate_u;  // .npy files
  bool bias_requested() const { return !rab_pos.empty() || !rab_ts.empty() || !rab.empty(); }
  bool requested() const { return bias_requested() || !gate_u.empty() || !timestamps.empty(); }
};
void add_hstu_options(CLI::App& sub, HstuCli& o, const std::string& group);
// The bias for `total` tokens, `heads` query heads, a dense bias of [heads, q_len, kv_len]; UsageError for a
// file, or --rab-ts without --timestamps (and the reverse).
HstuBias load_hstu_bias(const HstuCli& o, int64_t total, int64_t heads, int64_t q_len, int64_t kv_len);

}  // namespace bsattn::app
