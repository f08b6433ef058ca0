// Options of gen-mask that feed pattern inputs, kept apart from cmd_gen_mask.cpp so each grows alone:
//  - gen_mask_order.cpp: the token order of reordered sequences (--order, --grid, --text,
//    --emit-permutation), which video/image patterns read through PatternContext::token_order;
//  - gen_mask_inputs.cpp: Q/K for content-adaptive selectors (--q, --k, --synthetic, ...).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/atomic_file.h"
#include "lib/attention.h"
#include "patterns/registry.h"

namespace bsattn::app {

struct GenMaskOrderOptions;   // defined in gen_mask_order.cpp
struct GenMaskInputOptions;   // defined in gen_mask_inputs.cpp

// Owns whatever the request points at (permutation, Q/K) until the mask is built.
struct GenMaskPrepared {
  std::shared_ptr<std::vector<int64_t>> token_order;
  nlohmann::json order_spec;  // recorded in mask.spec["order"] when set
  std::shared_ptr<PatternInputs> inputs;
  std::shared_ptr<void> input_storage;  // keeps Q/K alive
  nlohmann::json input_spec;            // recorded in mask.spec["inputs"] when set
  ElemType input_dtype = ElemType::F32; // the 16-bit type Q/K are given in or rounded to (--dtype), else f32
};

std::shared_ptr<GenMaskOrderOptions> add_gen_mask_order_options(CLI::App& sub);
std::shared_ptr<GenMaskInputOptions> add_gen_mask_input_options(CLI::App& sub);
// Validate against the request's sizes, set req.token_order / req.inputs, fill `prep`.
void prepare_gen_mask_order(const GenMaskOrderOptions& o, MaskRequest& req, GenMaskPrepared& prep);
// --q/--k given: the lengths not set by --seq/--q-len/--kv-len, and the heads unless --heads was
// given, taken from the tensors' shapes.
void sizes_from_gen_mask_inputs(const GenMaskInputOptions& o, MaskRequest& req, bool heads_given);
void prepare_gen_mask_inputs(const GenMaskInputOptions& o, MaskRequest& req, GenMaskPrepared& prep);
// Declares --emit-permutation / --emit-inverse in the run's output set (checked before any work).
void add_gen_mask_order_outputs(const GenMaskOrderOptions& o, OutputSet& outputs);
// After the mask is built, before it is written: record specs, write --emit-permutation.
void finish_gen_mask_order(const GenMaskOrderOptions& o, const GenMaskPrepared& prep, BlockMask& m);

}  // namespace bsattn::app
