// Options of gen-mask that feed pattern inputs: the token order of reordered sequences (curves) and
// Q/K for content-adaptive selectors. Kept apart from cmd_gen_mask.cpp so that each can grow alone.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "patterns/registry.h"

namespace bsattn::app {

struct GenMaskExtras {
  // Token order (curves): --order NAME --grid TxHxW --text N --emit-permutation FILE
  std::string order, grid, emit_permutation;
  int64_t text = 0;
  std::string text_position = "head";
  // Inputs for adaptive selectors: --q/--k files or --synthetic KIND[:params]
  std::string q_file, k_file, synthetic, layout = "bshd", dtype;
};

// Owns whatever the request points at (permutation, Q/K) until the mask is built.
struct GenMaskPrepared {
  std::shared_ptr<std::vector<int64_t>> token_order;
  std::shared_ptr<PatternInputs> inputs;
  std::shared_ptr<std::vector<float>> q, k;
};

void add_gen_mask_extras(CLI::App& sub, GenMaskExtras& e);
// Validates the extras against the request's sizes and sets req.token_order / req.inputs.
GenMaskPrepared prepare_gen_mask_extras(const GenMaskExtras& e, MaskRequest& req);
// Records the order in the mask spec, writes --emit-permutation.
void finish_gen_mask_extras(const GenMaskExtras& e, const GenMaskPrepared& p, BlockMask& m);

}  // namespace bsattn::app
