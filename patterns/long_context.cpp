// Window + global patterns for long documents. Global tokens attend to and are attended by all: a
// query block holding one keeps its whole row, a key block holding one keeps its whole column, so
// token counts and positions need not be multiples of the block.
//  - global-local: the first `global` tokens are global; a token-level sliding window of radius
//                  `window` tokens (bottom-right aligned) around the diagonal.
//  - longformer:   Longformer (Beltagy et al. 2020): a window of `window` tokens in all (radius
//                  window/2) plus global tokens at the given positions (e.g. CLS and question tokens).
//  - bigbird:      BigBird-ITC (Zaheer et al. 2020) at block level: a window of radius `window` blocks,
//                  the first `global` query rows and key columns, and `random` more blocks per row drawn
//                  uniformly among the row's remaining blocks (causally visible ones with --causal).
#include "patterns/common.h"

namespace bsattn {
namespace {

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "global-local";
  d.family = "generic";
  d.summary = "the first `global` tokens attend to and are attended by all, plus a token sliding window";
  d.params = {pat::int_param("global", "128", 0, 1e12, "global tokens at the start of the sequence"),
              pat::int_param("window", "512", 0, 1e12, "radius of the sliding window in tokens")};
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t gl = p.get_int("global");
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) pat::mark_local_tokens(g, i, p.get_int("window"), out);
    if (gl > 0) {
      pat::mark_global_rows(ctx.shape, 0, gl, out);
      pat::mark_global_cols(ctx.shape, 0, gl, out);
    }
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "longformer";
  d.family = "generic";
  d.summary = "Longformer: a sliding window of `window` tokens (radius window/2) + global tokens at given positions";
  d.params = {pat::int_param("window", "512", 0, 1e12, "window width in tokens (radius window/2)"),
              {"global", ParamKind::IntList, "0", 0, 1e12, "token positions that are global (empty: none)", {}}};
  d.validate = [](const PatternContext& ctx, const Params& p) {
    for (auto t : p.get_int_list("global"))
      if (t >= std::max(ctx.shape.q_len, ctx.shape.kv_len))
        throw UsageError("pattern 'longformer': global position " + std::to_string(t) + " is beyond the sequence (" +
                         std::to_string(std::max(ctx.shape.q_len, ctx.shape.kv_len)) + " tokens)");
  };
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) pat::mark_local_tokens(g, i, p.get_int("window") / 2, out);
    for (auto t : p.get_int_list("global")) {
      pat::mark_global_rows(ctx.shape, t, t + 1, out);
      pat::mark_global_cols(ctx.shape, t, t + 1, out);
    }
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "bigbird";
  d.family = "generic";
  d.summary = "BigBird: window of radius `window` blocks + `global` first rows/columns + `random` blocks per row (seeded)";
  d.params = {pat::int_param("window", "1", 0, 1e6, "radius of the window in blocks"),
              pat::int_param("global", "1", 0, 1e6, "global blocks: the first query rows and key columns"),
              pat::int_param("random", "2", 0, 1e6, "random blocks per row, besides window and global"),
              pat::seed_param()};
  d.batch_invariant = false;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    const auto& s = ctx.shape;
    int64_t gb = p.get_int("global"), nr = p.get_int("random");
    for (int64_t i = 0; i < s.mq(); ++i) {
      pat::mark_local_blocks(g, i, p.get_int("window"), out);
      if (i < gb) std::fill(pat::row_of(out, i), pat::row_of(out, i) + out.mk, uint8_t(1));
      for (int64_t j = 0; j < std::min(gb, s.mk()); ++j) out.set(i, j);
    }
    Rng rng(pat::pattern_seed(ctx, p.get_int("seed"), 0x62696762));
    std::vector<int64_t> pool;
    for (int64_t i = 0; i < s.mq(); ++i) pat::pick_random(rng, out, i, pat::visible_blocks(g, ctx.causal, i), nr, pool);
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
