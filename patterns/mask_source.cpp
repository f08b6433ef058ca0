#include "patterns/mask_source.h"

#include <filesystem>

#include "lib/curves/order.h"
#include "lib/error.h"
#include "lib/mask_io.h"
#include "lib/varlen/varlen.h"

namespace bsattn {

MaskSource parse_mask_source(const std::string& text, BlockSizes blocks, bool causal, uint64_t seed) {
  if (text.empty()) throw UsageError("MASK missing: give a mask file (.npy/.json/CSR prefix) or a pattern spec");
  MaskSource src;
  namespace fs = std::filesystem;
  if (fs::exists(text) || fs::exists(text + "_kv_num_blocks.npy")) src.file = text;
  else src.request.pattern = parse_pattern(text, "MASK");
  src.request.shape.block_q = blocks.q;
  src.request.shape.block_kv = blocks.kv;
  src.request.causal = causal;
  src.request.seed = seed;
  return src;
}

void reorder_tokens(Qkv& in, const std::vector<int64_t>& perm) {
  if (in.q.seq != int64_t(perm.size()) || in.k.seq != int64_t(perm.size()))
    throw UsageError("the token order covers " + std::to_string(perm.size()) + " tokens but Q has " +
                     std::to_string(in.q.seq) + " and K " + std::to_string(in.k.seq) + " (they must be equal)");
  for (Tensor* t : {&in.q, &in.k, &in.v})
    if (!t->data.empty()) t->data = curves::apply_token_order(t->data, t->batch, t->seq, t->heads * t->dim, perm);
}

PatternInputs pattern_inputs(const Qkv& in) {
  PatternInputs pi;
  pi.batch = in.q.batch;
  pi.q_len = in.q.seq;
  pi.kv_len = in.k.seq;
  pi.heads_q = in.q.heads;
  pi.heads_kv = in.k.heads;
  pi.head_dim = in.q.dim;
  pi.q = in.q.data.data();
  pi.k = in.k.data.data();
  return pi;
}

MaskRequest request_for_inputs(MaskRequest request, const Qkv& in, const PatternInputs* inputs) {
  request.shape.heads = in.q.heads;
  request.shape.q_len = in.q.seq;
  request.shape.kv_len = in.k.seq;
  request.shape.batch = request.batch_invariant() ? 1 : in.q.batch;
  request.inputs = inputs;
  return request;
}

namespace {

// The file of `src` for sequences of q_len x kv_len tokens, with the command line's block sizes and
// causal flag as hints: they describe a .npy / CSR file's blocks; a .json file carries its own, and
// load_mask refuses a size or --causal given that contradicts it.
BlockMask load_mask_file(const MaskSource& src, int64_t q_len, int64_t kv_len) {
  MaskSizesHint hint;
  hint.q_len = q_len;
  hint.kv_len = kv_len;
  const bool json = src.file.size() > 5 && src.file.compare(src.file.size() - 5, 5, ".json") == 0;
  if (!json) {
    hint.block_q = src.request.shape.block_q;
    hint.block_kv = src.request.shape.block_kv;
  } else {
    if (src.given_blocks.q > 0) hint.block_q = src.given_blocks.q;
    if (src.given_blocks.kv > 0) hint.block_kv = src.given_blocks.kv;
  }
  hint.causal = src.request.causal;
  return load_mask(src.file, hint);
}

}  // namespace

BlockMask resolve_mask(const MaskSource& src, const Qkv& in, const std::vector<int64_t>* token_order) {
  BlockMask m;
  if (!src.file.empty()) {
    m = load_mask_file(src, in.q.seq, in.k.seq);
  } else {
    PatternInputs pi = pattern_inputs(in);
    MaskRequest req = request_for_inputs(src.request, in, &pi);
    req.token_order = token_order;
    m = generate_mask(req);
  }
  problem_for(in.q, in.k).validate(m);
  return m;
}

namespace {

// Rows [r0, r0+n) of a packed tensor (sizes only when `with_data` is false).
Tensor slice_rows(const Tensor& t, int64_t r0, int64_t n, bool with_data) {
  Tensor s;
  s.batch = 1, s.seq = n, s.heads = t.heads, s.dim = t.dim, s.dtype = t.dtype, s.file_dtype = t.file_dtype;
  s.name = t.name;
  const int64_t row = t.heads * t.dim;
  if (with_data && !t.data.empty()) s.data.assign(t.data.begin() + r0 * row, t.data.begin() + (r0 + n) * row);
  return s;
}

}  // namespace

BlockMask resolve_varlen_mask(const MaskSource& src, const Qkv& in, const std::vector<int32_t>& cu) {
  check_packed(in.q, cu, "the offsets (--seqlens/--cu-seqlens)");
  check_packed(in.k, cu, "the offsets (--seqlens/--cu-seqlens)");
  const int64_t max_len = max_seqlen(cu);
  const AttentionProblem p = varlen_problem(in.q, in.k, cu);
  BlockMask m;
  if (!src.file.empty()) {
    m = load_mask_file(src, max_len, max_len);
  } else {
    bool needs_inputs = false;
    for (const HeadMapEntry& g : src.request.groups()) needs_inputs |= g.pattern.def && g.pattern.def->needs_inputs;
    m = build_varlen_mask(cu, [&](int64_t b, int64_t len) {
      Qkv one;
      one.layout = in.layout;
      one.q = slice_rows(in.q, cu[size_t(b)], len, needs_inputs);
      one.k = slice_rows(in.k, cu[size_t(b)], len, needs_inputs);
      PatternInputs pi = pattern_inputs(one);
      return generate_mask(request_for_inputs(src.request, one, &pi));
    });
  }
  p.validate(m);
  return m;
}

}  // namespace bsattn
