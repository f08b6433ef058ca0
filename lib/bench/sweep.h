// Benchmark sweeps: axes from the command line (or a saved --config FILE.json) combine as a product;
// combinations a backend cannot run, or that repeat an earlier mask, are skipped with a reason.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/bench/accounting.h"
#include "lib/mask.h"

namespace bsattn::bench {

// Bounds of the integer axes (the float axes are bounded by their meaning: density in (0, 1]).
constexpr int64_t kMaxBenchSeq = int64_t(1) << 24;     // tokens per sequence
constexpr int64_t kMaxBenchHeadDim = 1024;
constexpr int64_t kMaxBenchHeads = int64_t(1) << 12;
constexpr int64_t kMaxBenchBatch = int64_t(1) << 16;

struct SweepAxes {
  std::vector<int64_t> seq{1024}, head_dim{64}, heads{4}, batch{1}, block{64};
  int64_t kv_heads = 0;  // 0: = heads (MHA); otherwise every heads value must be a multiple
  std::vector<double> density{0.1, 0.25, 0.5, 1.0};
  std::vector<std::string> pattern{"random", "local", "causal"};
  std::vector<std::string> dtype{"bf16"};
  std::vector<std::string> pass{"fwd"};
  std::vector<std::string> score{"softmax"};  // softmax, silu (HSTU: SiLU(alpha QK^T + rab) / n, n = seq)
  // HSTU's relative bias for the silu configurations (docs/hstu.md), one configuration per value: none,
  // pos, ts or pos+ts, from seeded tables (pos: [H, seq]; ts: [H, 129] with seeded increasing timestamps);
  // and u-gating (O * U, seeded U).
  std::vector<std::string> rab{"none"};
  bool gate_u = false;
  // Varlen (bench --seqlens / --cu-seqlens): the offsets of one packed batch, which replace the seq and
  // batch axes (batch = the number of sequences, seq = the longest). Empty: fixed lengths.
  std::vector<int32_t> cu_seqlens;

  // Sets one axis from its command-line text ("4096,8192", "0.05:0.5:0.05"); `axis` is the option's
  // name without dashes (seq, head-dim, heads, kv-heads, batch, block, density, pattern, dtype, pass,
  // score, rab), or its config-file key (head_dim, kv_heads); dim and heads-kv / heads_kv are older names.
  void set(const std::string& axis, const std::string& text);
  // A config file: {"seq": [4096, 8192] or "4096,8192", ...} with the same names; unknown keys are
  // UsageErrors naming the file. Keys absent keep their current values.
  void merge_json(const nlohmann::json& j, const std::string& what);
  nlohmann::json to_json() const;  // the effective sweep, with every axis
};

// What a backend can run (checked before any work; anything else it rejects at prepare time is
// skipped with the backend's message).
struct BackendCaps {
  std::vector<ElemType> dtypes{ElemType::F32, ElemType::F16, ElemType::BF16};
  std::vector<int64_t> blocks;   // empty: any block size
  std::vector<Pass> passes{Pass::Fwd};
  double max_computed_flops = 0; // > 0: skip configurations with more computed FLOPs (CPU backend)
};

struct BenchConfig {
  AttentionShape shape;  // q_len = kv_len = the seq axis; heads_q = the heads axis
  int64_t block = 128;
  ElemType dtype = ElemType::BF16;
  Pass pass = Pass::Fwd;
  ScoreFn score = ScoreFn::Softmax;
  std::string rab = "none";  // silu: HSTU's bias terms (SweepAxes::rab)
  bool gate_u = false;       // silu: u-gating
  std::string pattern;        // the axis value ("random", "local", "causal", or a spec)
  double density_target = -1; // the density axis value; -1 when the pattern takes no density
  std::string spec;           // the mask spec given to the pattern registry
  bool causal = false;
  std::vector<int32_t> cu_seqlens;  // varlen: the sequences' offsets (shape.batch sequences, q_len the longest)
  int64_t seq() const { return shape.q_len; }
  MaskShape mask_shape() const;        // batch 1 (broadcast), heads, seq x seq, block x block
  AttentionProblem problem() const;
  std::string label() const;           // one line for progress and skip messages
  nlohmann::json to_json() const;
  // Key of the dense baseline this config is compared with (same shape, dtype, causal, pass).
  std::string dense_key() const;
  BenchConfig dense_baseline() const;  // the same with every (causally visible) block kept
};

struct SkippedConfig {
  BenchConfig config;
  std::string reason;
};

struct SweepPlan {
  std::vector<BenchConfig> configs;
  std::vector<SkippedConfig> skipped;
};

// The mask spec and causal flag for a pattern axis value at a density on a shape:
//   random -> random:density=d;  causal -> random:density=d under causal (d = 1: dense causal);
//   local  -> local:window=w with (2w+1)/Mk closest to d;  dense -> dense (density ignored);
//   any other value is a pattern spec used as given (density ignored).
// Returns false (with `why`) for a density outside (0, 1].
bool mask_spec_for(const std::string& pattern, double density, int64_t mk, std::string& spec, bool& causal,
                   std::string& why);
bool pattern_takes_density(const std::string& pattern);

SweepPlan expand_sweep(const SweepAxes& axes, const BackendCaps& caps);

}  // namespace bsattn::bench
