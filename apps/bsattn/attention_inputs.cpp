#include "apps/bsattn/attention_inputs.h"

#include <filesystem>

#include "lib/error.h"
#include "lib/mask_io.h"

namespace bsattn::app {

void add_input_options(CLI::App& sub, InputCli& o, bool with_v, bool with_sizes, const std::string& g) {
  sub.add_option("--q", o.src.q, "Q .npy: [B,S,H,D] (bshd) or [B,H,S,D] (bhsd); 3-D means batch 1")->group(g);
  sub.add_option("--k", o.src.k, "K .npy, same layout, Hq a multiple of its heads")->group(g);
  if (with_v) sub.add_option("--v", o.src.v, "V .npy, the shape of K")->group(g);
  sub.add_option("--layout", o.src.layout, "Layout of the tensor files")->check(CLI::IsMember({"bshd", "bhsd"}))->capture_default_str()->group(g);
  sub.add_option("--dtype", o.src.dtype, "Element type of the inputs: auto (the files'), f32, f16, bf16; uint16 files need bf16, float32 files are "
                 "rounded to f16/bf16 (nearest even)")
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16"}))->capture_default_str()->group(g);
  sub.add_option("--synthetic", o.src.synthetic, "Structured synthetic Q/K/V instead of files: " + synthetic_help())->group(g);
  if (!with_sizes) return;
  sub.add_option("--batch", o.src.sizes.batch, "Synthetic: batch")->check(CLI::Range(int64_t(1), int64_t(1) << 20))->capture_default_str()->group(g);
  sub.add_option("--seq", o.src.sizes.seq, "Synthetic: sequence length (spatial: text + grid when not given)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))->group(g);
  sub.add_option("--heads", o.src.sizes.heads_q, "Synthetic: query heads")->check(CLI::Range(int64_t(1), int64_t(1) << 16))->capture_default_str()->group(g);
  sub.add_option("--kv-heads", o.kv_heads, "Synthetic: key/value heads (0: as --heads)")->check(CLI::Range(int64_t(0), int64_t(1) << 16))->capture_default_str()->group(g);
  sub.add_option("--head-dim", o.src.sizes.head_dim, "Synthetic: head dimension (even)")->check(CLI::Range(int64_t(2), int64_t(4096)))->capture_default_str()->group(g);
}

Qkv load_inputs(InputCli o, bool need_v, uint64_t seed) {
  o.src.sizes.heads_kv = o.kv_heads > 0 ? o.kv_heads : o.src.sizes.heads_q;
  o.src.seed = seed;
  return load_qkv(o.src, need_v);
}

void add_mask_size_options(CLI::App& sub, MaskCli& o, const std::string& g) {
  sub.add_option("--block", o.block, "Block size (patterns and .npy masks)")->check(CLI::Range(int64_t(1), int64_t(1) << 30))->capture_default_str()->group(g);
  sub.add_option("--block-q", o.block_q, "Query block size (overrides --block)")->check(CLI::Range(int64_t(1), int64_t(1) << 30))->group(g);
  sub.add_option("--block-kv", o.block_kv, "Key block size (overrides --block)")->check(CLI::Range(int64_t(1), int64_t(1) << 30))->group(g);
  sub.add_flag("--causal", o.causal, "Causal (patterns and .npy masks; .json masks carry their own flag)")->group(g);
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

MaskShape mask_shape_for(const MaskCli& o, const Qkv& in) {
  MaskShape s;
  s.batch = 1;
  s.heads = in.q.heads;
  s.q_len = in.q.seq;
  s.kv_len = in.k.seq;
  s.block_q = o.block_q > 0 ? o.block_q : o.block;
  s.block_kv = o.block_kv > 0 ? o.block_kv : o.block;
  return s;
}

BlockMask resolve_mask(const MaskCli& o, const Qkv& in, uint64_t seed, const std::vector<int64_t>* token_order) {
  if (o.mask.empty()) throw UsageError("MASK missing: give a mask file (.npy/.json/CSR prefix) or a pattern spec");
  BlockMask m;
  namespace fs = std::filesystem;
  if (fs::exists(o.mask) || fs::exists(o.mask + "_kv_num_blocks.npy")) {
    MaskSizesHint hint;
    hint.q_len = in.q.seq;
    hint.kv_len = in.k.seq;
    hint.block_q = o.block_q > 0 ? o.block_q : o.block;
    hint.block_kv = o.block_kv > 0 ? o.block_kv : o.block;
    hint.causal = o.causal;
    m = load_mask(o.mask, hint);
  } else {
    Spec spec = parse_spec(o.mask, "MASK");
    const PatternDef& def = find_pattern(spec.name);  // UsageError listing the patterns
    MaskRequest req;
    req.shape = mask_shape_for(o, in);
    if (!def.batch_invariant) req.shape.batch = in.q.batch;
    req.causal = o.causal;
    req.seed = seed;
    req.pattern = o.mask;
    req.token_order = token_order;
    PatternInputs pi = pattern_inputs(in);
    req.inputs = &pi;
    m = generate_mask(req);
  }
  AttentionProblem p = problem_for(in.q, in.k);
  p.validate(m);
  return m;
}

}  // namespace bsattn::app
