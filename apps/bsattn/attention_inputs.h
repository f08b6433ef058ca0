// Options shared by `run` and `analyze` (and gen-mask's adaptive inputs): where Q/K/V come from and
// which mask to apply (a mask file, or a pattern spec generated for the inputs' sizes).
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "lib/block_sizes.h"
#include "lib/tensor/qkv_source.h"
#include "patterns/mask_source.h"

namespace bsattn::app {

struct InputCli {
  QkvSource src;
  int64_t kv_heads = 0;  // synthetic: 0 means the query heads
};
// --q --k [--v] --layout --dtype --synthetic; with_sizes adds --batch --seq --heads --kv-heads
// --head-dim for synthetic inputs.
void add_input_options(CLI::App& sub, InputCli& o, bool with_v, bool with_sizes, const std::string& group);
Qkv load_inputs(InputCli o, bool need_v, uint64_t seed);

// Varlen batches (lib/varlen/varlen.h): --seqlens L1,L2,... or --cu-seqlens FILE.npy.
struct VarlenCli {
  std::string seqlens, cu_seqlens;
};
void add_varlen_options(CLI::App& sub, VarlenCli& o, const std::string& group);
// The offsets (empty without varlen options). Synthetic inputs become one packed sequence of the offsets'
// total (--seq is replaced by it; --batch must stay 1).
std::vector<int32_t> resolve_varlen(const VarlenCli& o, InputCli& inputs);

struct MaskCli {
  std::string mask;  // file (.npy / .json / CSR prefix) or pattern spec
  BlockOptions blocks;
  bool causal = false;
};
// The block options and --causal (MASK itself is each command's positional argument).
void add_mask_size_options(CLI::App& sub, MaskCli& o, const std::string& group);
// MASK decided (file or pattern) and parsed once, with its block sizes (128 unless given) and seed.
MaskSource parse_mask_cli(const MaskCli& o, uint64_t seed);

}  // namespace bsattn::app
