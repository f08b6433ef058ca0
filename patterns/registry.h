// The pattern registry: every pattern family registers its generators from its own file with
// BSATTN_REGISTER_PATTERN. bsattn_patterns is an object library, so every registration is linked.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "lib/mask.h"
#include "lib/spec.h"

namespace bsattn {

struct AttentionProblem;
struct AttentionInputs;

// Q/K for content-adaptive selectors (patterns/adaptive): f32 host tensors in BSHD.
struct PatternInputs {
  int64_t batch = 1, q_len = 0, kv_len = 0, heads_q = 1, heads_kv = 1, head_dim = 0;
  const float* q = nullptr;  // [batch, q_len, heads_q, head_dim]
  const float* k = nullptr;  // [batch, kv_len, heads_kv, head_dim]
};

struct PatternContext {
  MaskShape shape;  // of the whole mask
  bool causal = false;
  uint64_t seed = 0;       // the run's seed; use stream_seed() for per-head random streams
  int64_t batch_index = 0;  // the (b, h) being generated
  int64_t head = 0;
  int64_t group_head = 0;   // index of `head` within its --head-map range (== head without a map)
  int64_t group_heads = 1;  // heads in that range (== shape.heads without a map)
  // Token order of the sequence (optional): perm[i] = original (raster) index of the token at position
  // i. Video / image patterns that take an order use it; others ignore it.
  const std::vector<int64_t>* token_order = nullptr;
  const PatternInputs* inputs = nullptr;  // adaptive selectors only
  BlockGeometry geometry() const { return BlockGeometry(shape); }
  // A seed for this head's random stream that differs across (seed, batch_index, head, salt).
  uint64_t stream_seed(uint64_t salt = 0) const;
};

// One head's output: the [Mq,Mk] bitmap (zeroed before the call) and the head's type.
struct HeadOutput {
  uint8_t* bits;
  HeadInfo* info;
  int64_t mk;
  void set(int64_t i, int64_t j) { bits[i * mk + j] = 1; }
};

struct PatternDef {
  std::string name;     // as typed after --pattern
  std::string family;   // generic, vit, sam, video, adaptive, custom
  std::string summary;  // one line for --list-patterns
  std::vector<ParamDef> params;
  bool batch_invariant = true;  // false: generated separately for every batch entry
  bool needs_inputs = false;    // adaptive selectors need Q/K
  bool implies_causal = false;  // the pattern is causal by definition (sets the mask's causal flag)
  // Optional check of parameters against the sizes (UsageError naming the parameter).
  std::function<void(const PatternContext&, const Params&)> validate;
  std::function<void(const PatternContext&, const Params&, HeadOutput&)> generate;
  // The bitmap does not depend on the head: generated once per head-map range and copied.
  bool head_invariant = false;
  // Patterns over a token layout (ViT, SAM, video) know their sequence lengths: {q_len, kv_len}.
  // gen-mask uses them when --seq / --q-len / --kv-len are not given.
  std::function<std::pair<int64_t, int64_t>(const Params&)> natural_lengths;
};

struct PatternRegistrar {
  explicit PatternRegistrar(PatternDef def);
};
#define BSATTN_PATTERN_CAT2(a, b) a##b
#define BSATTN_PATTERN_CAT(a, b) BSATTN_PATTERN_CAT2(a, b)
#define BSATTN_REGISTER_PATTERN(...) \
  static ::bsattn::PatternRegistrar BSATTN_PATTERN_CAT(bsattn_pattern_, __LINE__)(__VA_ARGS__)

const PatternDef& find_pattern(const std::string& name);  // UsageError listing known names
std::vector<const PatternDef*> all_patterns();             // sorted by family, then name

// A pattern spec parsed once: the pattern it names and its parameters, checked against the pattern's
// definitions (unknown keys, numbers, ranges) with defaults filled in.
struct ParsedPattern {
  const PatternDef* def = nullptr;  // null: no pattern
  Params params;
  std::string spec() const;  // canonical "NAME:key=value,..." with every parameter
};
// "NAME[:key=value,...]"; `what` names the option or argument in messages ("--pattern", "MASK").
ParsedPattern parse_pattern(const std::string& text, const std::string& what);

struct HeadMapEntry {
  int64_t first = 0, last = 0;  // inclusive
  ParsedPattern pattern;
};
// Parses "RANGE=SPEC;RANGE=SPEC..." and checks it against the head count (overlaps, gaps, out of range).
std::vector<HeadMapEntry> parse_head_map(const std::string& text, int64_t heads);

// What a mask is generated from, parsed where it is asked for (gen-mask's --pattern / --head-map,
// run's and analyze's MASK argument, a sweep's spec) and carried as it is into generate_mask: one
// pattern for all heads, or a head map; the sizes and block sizes; the seed; the token order of a
// reordered sequence and the Q/K of adaptive selectors when there are any.
struct MaskRequest {
  MaskShape shape;
  bool causal = false;
  uint64_t seed = 0;
  ParsedPattern pattern;               // every head; used when head_map is empty
  std::vector<HeadMapEntry> head_map;  // per-head patterns, each head exactly once
  const std::vector<int64_t>* token_order = nullptr;
  const PatternInputs* inputs = nullptr;

  // The (head range, pattern) groups: the head map, or the pattern over every head of `shape`.
  // UsageError when neither or both are given.
  std::vector<HeadMapEntry> groups() const;
  // True when no group's pattern differs across the batch (the mask may then broadcast, batch 1).
  bool batch_invariant() const;
};

// Fills q_len / kv_len of `req.shape` that are <= 0 from the patterns' natural lengths (all groups
// must agree). Returns false when some length stays unknown.
bool resolve_natural_lengths(MaskRequest& req);

// Generates the mask (validating everything first), applies causal, records the spec with every
// parameter and the seed in mask.spec, and checks head types against the bitmap.
BlockMask generate_mask(const MaskRequest& req);
// One spec for every head of `shape` (what bench sweeps ask for each configuration), parsed here.
BlockMask generate_mask(const MaskShape& shape, bool causal, uint64_t seed, const std::string& spec);

// Text for `gen-mask --list-patterns`.
std::string list_patterns_text();
nlohmann::json list_patterns_json();

}  // namespace bsattn
