// Options shared by `run` and `analyze` (and gen-mask's adaptive inputs): where Q/K/V come from and
// which mask to apply (a mask file, or a pattern spec generated for the inputs' sizes).
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "lib/tensor/qkv_source.h"
#include "patterns/registry.h"

namespace bsattn::app {

struct InputCli {
  QkvSource src;
  int64_t kv_heads = 0;  // synthetic: 0 means the query heads
};
// --q --k [--v] --layout --dtype --synthetic; with_sizes adds --batch --seq --heads --kv-heads
// --head-dim for synthetic inputs.
void add_input_options(CLI::App& sub, InputCli& o, bool with_v, bool with_sizes, const std::string& group);
Qkv load_inputs(InputCli o, bool need_v, uint64_t seed);

struct MaskCli {
  std::string mask;  // file (.npy / .json / CSR prefix) or pattern spec
  int64_t block = 128, block_q = 0, block_kv = 0;
  bool causal = false;
};
void add_mask_size_options(CLI::App& sub, MaskCli& o, const std::string& group);
// Q/K views for adaptive selectors (they point into `in`).
PatternInputs pattern_inputs(const Qkv& in);
// Loads the mask file or generates the pattern for the inputs' sizes; checks it against the inputs.
// token_order (optional) is passed to patterns that read one (reordered sequences).
BlockMask resolve_mask(const MaskCli& o, const Qkv& in, uint64_t seed, const std::vector<int64_t>* token_order = nullptr);
// The mask shape a pattern spec is generated for.
MaskShape mask_shape_for(const MaskCli& o, const Qkv& in);

}  // namespace bsattn::app
