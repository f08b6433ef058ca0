// Basic patterns: dense, causal, local / sliding window, random, streaming.
#include <cmath>

#include "lib/error.h"
#include "lib/rng.h"
#include "patterns/registry.h"

namespace bsattn {
namespace {

BSATTN_REGISTER_PATTERN(PatternDef{
    "dense", "generic", "every block kept (a dense head: kernels need no bitmap for it)", {}, true, false, false,
    nullptr, [](const PatternContext& ctx, const Params&, HeadOutput& out) {
      std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
      out.info->type = HeadType::Dense;
    }});

BSATTN_REGISTER_PATTERN(PatternDef{
    "causal", "generic", "dense causal attention: every block on or below the (bottom-right aligned) diagonal",
    {}, true, false, true, nullptr, [](const PatternContext& ctx, const Params&, HeadOutput& out) {
      std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
      out.info->type = HeadType::Dense;
    }});

// Local window. In blocks: row i keeps |j - diag(i)| <= window. In tokens: block (i,j) is kept when
// some existing pair (q,k) in it has |k - (q + kv_len - q_len)| <= window.
BSATTN_REGISTER_PATTERN(PatternDef{
    "local",
    "generic",
    "sliding window around the diagonal (radius in blocks, or in tokens with unit=tokens)",
    {{"window", ParamKind::Int, "2", 0, 1e9, "radius of the window (blocks or tokens, see unit)", {}},
     {"unit", ParamKind::String, "blocks", 0, 0, "unit of window", {"blocks", "tokens"}}},
    true,
    false,
    false,
    nullptr,
    [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
      auto g = ctx.geometry();
      int64_t w = p.get_int("window"), mq = ctx.shape.mq(), mk = ctx.shape.mk(), off = g.causal_offset();
      bool tokens = p.get_string("unit") == "tokens";
      for (int64_t i = 0; i < mq; ++i) {
        if (tokens) {
          // Aligned query positions of the block span [a, b]; keys within w of that span are kept.
          int64_t a = g.q_begin(i) + off - w, b = g.q_end(i) - 1 + off + w;
          int64_t j0 = std::max<int64_t>(0, a < 0 ? 0 : a / ctx.shape.block_kv);
          int64_t j1 = b < 0 ? -1 : std::min(mk - 1, b / ctx.shape.block_kv);
          for (int64_t j = j0; j <= j1; ++j) out.set(i, j);
        } else {
          int64_t d = g.diag_block(i);
          for (int64_t j = std::max<int64_t>(0, d - w); j <= std::min(mk - 1, d + w); ++j) out.set(i, j);
        }
      }
    }});

// Random blocks at a target density, every diagonal block kept. Exactly round(density * Mk) blocks
// per row (at least the diagonal), chosen uniformly without replacement from the seeded stream.
BSATTN_REGISTER_PATTERN(PatternDef{
    "random",
    "generic",
    "uniformly random blocks, round(density*Mk) per row, the diagonal block always kept (seeded)",
    {{"density", ParamKind::Float, "0.25", 0, 1, "share of blocks kept per row", {}},
     {"seed", ParamKind::Int, "-1", -1, 9.2e18, "seed for this pattern (-1: the run's --seed)", {}}},
    false,
    false,
    false,
    nullptr,
    [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
      auto g = ctx.geometry();
      int64_t mq = ctx.shape.mq(), mk = ctx.shape.mk();
      int64_t s = p.get_int("seed");
      PatternContext c2 = ctx;
      if (s >= 0) c2.seed = uint64_t(s);
      Rng rng(c2.stream_seed(0x72616e64));
      int64_t want = std::llround(p.get_float("density") * double(mk));
      std::vector<int64_t> pool(static_cast<size_t>(mk), 0);
      for (int64_t i = 0; i < mq; ++i) {
        int64_t d = g.diag_block(i), n = 0;
        if (d >= 0) {
          out.set(i, d);
          ++n;
        }
        for (int64_t j = 0; j < mk; ++j) pool[j] = j;
        // Partial Fisher-Yates over the blocks other than the diagonal.
        int64_t avail = mk;
        if (d >= 0) std::swap(pool[d], pool[--avail]);
        for (int64_t t = 0; n < want && t < avail; ++t, ++n) {
          int64_t r = t + int64_t(rng.below(uint64_t(avail - t)));
          std::swap(pool[t], pool[r]);
          out.set(i, pool[t]);
        }
      }
    }});

// Block streaming (StreamingLLM's sinks + recent window, Block-Sparse-Attention's streaming head):
// the first `sink` key blocks and the `local` blocks ending at the diagonal block.
BSATTN_REGISTER_PATTERN(PatternDef{
    "streaming",
    "generic",
    "attention sinks + recent window: the first sink key blocks and local blocks ending at the diagonal",
    {{"sink", ParamKind::Int, "1", 0, 1e9, "sink blocks (from key block 0)", {}},
     {"local", ParamKind::Int, "4", 1, 1e9, "local blocks, the diagonal block included", {}}},
    true,
    false,
    false,
    nullptr,
    [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
      out.info->type = HeadType::Streaming;
      out.info->sink_blocks = p.get_int("sink");
      out.info->local_blocks = p.get_int("local");
      fill_streaming(ctx.geometry(), out.info->sink_blocks, out.info->local_blocks, out.bits);
    }});

}  // namespace
}  // namespace bsattn
