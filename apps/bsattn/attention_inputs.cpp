#include "apps/bsattn/attention_inputs.h"

#include "apps/bsattn/common_options.h"
#include "lib/error.h"
#include "lib/varlen/varlen.h"

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
  add_head_dim_option(sub, o.src.sizes.head_dim, "Synthetic: head dimension (even)", g);
}

Qkv load_inputs(InputCli o, bool need_v, uint64_t seed) {
  o.src.sizes.heads_kv = o.kv_heads > 0 ? o.kv_heads : o.src.sizes.heads_q;
  o.src.seed = seed;
  return load_qkv(o.src, need_v);
}

void add_mask_size_options(CLI::App& sub, MaskCli& o, const std::string& g) {
  add_block_options(sub, o.blocks, g, "128; .json masks carry their own");
  sub.add_flag("--causal", o.causal, "Causal (patterns and .npy masks; .json masks carry their own flag)")->group(g);
}

MaskSource parse_mask_cli(const MaskCli& o, uint64_t seed) {
  MaskSource src = parse_mask_source(o.mask, resolve_block_sizes(o.blocks, kDefaultBlockSize), o.causal, seed);
  src.given_blocks = resolve_block_sizes(o.blocks, 0);
  return src;
}

void add_varlen_options(CLI::App& sub, VarlenCli& o, const std::string& g) {
  sub.add_option("--seqlens", o.seqlens, "Varlen: lengths of the sequences packed in Q/K/V ([total,H,D]), e.g. 1000,517,3000; "
                 "attention stays within each sequence, each with its own mask")->group(g);
  sub.add_option("--cu-seqlens", o.cu_seqlens, "Varlen: offsets .npy, 1-D int32 (or int64) [0, L1, L1+L2, ..., total] "
                 "(HSTU x_offsets, FlashAttention/Block-Sparse-Attention cu_seqlens)")->group(g);
}

std::vector<int32_t> resolve_varlen(const VarlenCli& o, InputCli& inputs) {
  std::vector<int32_t> cu = varlen_offsets(o.seqlens, o.cu_seqlens);
  if (!cu.empty() && !inputs.src.synthetic.empty()) {
    if (inputs.src.sizes.batch != 1)
      throw UsageError("--batch " + std::to_string(inputs.src.sizes.batch) +
                       " with varlen offsets: the sequences are packed into one (allowed: --batch 1)");
    inputs.src.sizes.seq = cu.back();
  }
  return cu;
}

}  // namespace bsattn::app
