// The MASK argument of run and analyze: a mask file (.npy / .json / CSR prefix) or a pattern spec,
// decided and parsed once where the command line is read, then resolved against the Q/K/V it is
// applied to. Also the Q/K views adaptive selectors read from loaded inputs.
#pragma once
#include <string>
#include <vector>

#include "lib/block_sizes.h"
#include "lib/tensor/qkv_source.h"
#include "patterns/registry.h"

namespace bsattn {

struct MaskSource {
  std::string file;     // a mask file or CSR prefix; empty when `request` holds a pattern
  MaskRequest request;  // the pattern, block sizes, causal flag and seed; the rest comes from the inputs
  // The block sizes the command line gave (0 where it gave none): a .json file carries its own, and
  // only sizes actually given are held against it (request's are completed with the default).
  BlockSizes given_blocks;
};

// `text` names an existing file (or a CSR prefix whose PREFIX_kv_num_blocks.npy exists), or else is a
// pattern spec, parsed here (UsageError naming MASK for an unknown pattern or a bad parameter).
// `blocks` and `causal` describe a .npy / CSR file's blocks, or are the pattern's.
MaskSource parse_mask_source(const std::string& text, BlockSizes blocks, bool causal, uint64_t seed);

// Puts Q, K and V into a token order (perm[i] = original index of the token at position i; q_len =
// kv_len = perm.size(), else UsageError): what a mask built for a reordered sequence is computed on.
// run --reorder and gen-mask --order both call it, so adaptive selectors see the reordered tokens.
void reorder_tokens(Qkv& in, const std::vector<int64_t>& perm);

// Q/K for adaptive selectors, pointing into `in` (which must outlive them).
PatternInputs pattern_inputs(const Qkv& in);

// `request` sized for `in`: heads and lengths from Q/K, batch 1 (broadcast) unless a pattern differs
// across the batch, and `inputs` (from pattern_inputs(in)) for adaptive selectors.
MaskRequest request_for_inputs(MaskRequest request, const Qkv& in, const PatternInputs* inputs);

// The mask for `in`: the file loaded (with the block sizes and causal flag as hints for .npy / CSR),
// or the pattern generated for the inputs' sizes; token_order (optional) reaches patterns that read
// one. UsageError when the mask does not fit the inputs.
BlockMask resolve_mask(const MaskSource& src, const Qkv& in, const std::vector<int64_t>* token_order = nullptr);

// The mask of a varlen batch (packed Q/K/V, offsets `cu`, lib/varlen/varlen.h): a file is loaded for the
// longest sequence (batch 1 or one entry per sequence; rows relative to each sequence's start); a pattern is
// generated for each sequence alone (its length, its own Q/K for adaptive selectors, the same seed), so that
// each sequence gets exactly the mask a run on it alone gets, and the masks are embedded into one
// [B,H,Mq,Mk]. UsageError when the mask does not fit.
BlockMask resolve_varlen_mask(const MaskSource& src, const Qkv& in, const std::vector<int32_t>& cu);

}  // namespace bsattn
