// Basic patterns: dense, causal, local / sliding window, random, streaming.
#include <cmath>

#include "lib/error.h"
#include "lib/rng.h"
#include "patterns/common.h"
#include "patterns/registry.h"

namespace bsattn {
namespace {

// Every block kept; a dense head needs no bitmap in the kernels.
PatternDef full_pattern(const char* name, const char* summary, bool causal) {
  PatternDef d;
  d.name = name;
  d.family = "generic";
  d.summary = summary;
  d.implies_causal = causal;
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params&, HeadOutput& out) {
    std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
    out.info->type = HeadType::Dense;
  };
  return d;
}
BSATTN_REGISTER_PATTERN(full_pattern("dense", "every block kept (a dense head: kernels need no bitmap for it)", false));
BSATTN_REGISTER_PATTERN(full_pattern(
    "causal", "dense causal attention: every block on or below the (bottom-right aligned) diagonal", true));

// Local window. In blocks: row i keeps |j - diag(i)| <= window. In tokens: block (i,j) is kept when
// some existing pair (q,k) in it has |k - (q + kv_len - q_len)| <= window.
BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "local";
  d.family = "generic";
  d.summary = "sliding window around the diagonal (radius in blocks, or in tokens with unit=tokens)";
  d.params = {pat::int_param("window", "2", 0, 1e9, "radius of the window (blocks or tokens, see unit)"),
              {"unit", ParamKind::String, "blocks", 0, 0, "unit of window", {"blocks", "tokens"}}};
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t w = p.get_int("window");
    bool tokens = p.get_string("unit") == "tokens";
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      if (tokens) pat::mark_local_tokens(g, i, w, out);
      else pat::mark_local_blocks(g, i, w, out);
    }
  };
  return d;
}());

// Random blocks. Density is per row over the blocks the row may keep: all Mk blocks, or under causal
// only the causally visible ones (V_i). Row i keeps exactly max(1, round(density * V_i)) blocks: its
// diagonal block plus the rest drawn uniformly without replacement from the seeded stream.
BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "random";
  d.family = "generic";
  d.summary =
      "uniformly random blocks with the diagonal always kept: each row keeps round(density*V) blocks, V = its "
      "blocks (its causally visible blocks with --causal) (seeded)";
  d.params = {{"density", ParamKind::Float, "0.25", 0, 1, "share of each row's (visible) blocks kept", {}},
              pat::seed_param()};
  d.batch_invariant = false;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    Rng rng(pat::pattern_seed(ctx, p.get_int("seed"), 0x72616e64));
    std::vector<int64_t> pool;
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) pat::fill_random_row(rng, g, ctx.causal, i, p.get_float("density"), out, pool);
  };
  return d;
}());

// Block streaming (StreamingLLM's sinks + recent window, Block-Sparse-Attention's streaming head):
// the first `sink` key blocks and the `local` blocks ending at the diagonal block.
BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "streaming";
  d.family = "generic";
  d.summary = "attention sinks + recent window: the first sink key blocks and local blocks ending at the diagonal";
  d.params = {pat::int_param("sink", "1", 0, 1e9, "sink blocks (from key block 0)"),
              pat::int_param("local", "4", 1, 1e9, "local blocks, the diagonal block included")};
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    out.info->type = HeadType::Streaming;
    out.info->sink_blocks = p.get_int("sink");
    out.info->local_blocks = p.get_int("local");
    fill_streaming(ctx.geometry(), out.info->sink_blocks, out.info->local_blocks, out.bits);
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
