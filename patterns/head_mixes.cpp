// Patterns that give different heads different shapes (head g = the head's index in its --head-map
// range, or its index when no map is given). --head-map composes any patterns per head range; these
// are single-spec conveniences for the common mixes:
//  - hybrid:     DuoAttention-style: the first `dense_heads` heads are dense (retrieval heads), the rest
//                streaming heads with `sink` sink blocks and `local` local blocks.
//  - multiscale: sliding windows whose radius depends on the head: head g uses radii[g mod len].
#include "patterns/common.h"

namespace bsattn {
namespace {

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "hybrid";
  d.family = "generic";
  d.summary = "DuoAttention-style: the first dense_heads heads dense, the rest streaming (sink + local blocks)";
  d.params = {pat::int_param("dense_heads", "1", 0, 1e6, "dense heads at the start of the range"),
              pat::int_param("sink", "1", 0, 1e9, "sink blocks of the streaming heads"),
              pat::int_param("local", "4", 1, 1e9, "local blocks of the streaming heads, diagonal included")};
  d.validate = [](const PatternContext& ctx, const Params& p) {
    pat::check_dense_heads(ctx, p.get_int("dense_heads"), "hybrid");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    if (ctx.group_head < p.get_int("dense_heads")) {
      std::fill(out.bits, out.bits + ctx.shape.head_cells(), uint8_t(1));
      out.info->type = HeadType::Dense;
      return;
    }
    out.info->type = HeadType::Streaming;
    out.info->sink_blocks = p.get_int("sink");
    out.info->local_blocks = p.get_int("local");
    fill_streaming(ctx.geometry(), out.info->sink_blocks, out.info->local_blocks, out.bits);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "multiscale";
  d.family = "generic";
  d.summary = "sliding windows of different radii per head: head g uses radii[g mod len]";
  d.params = {{"radii", ParamKind::IntList, "1,2,4,8", 0, 1e9, "window radius per head (cycled)", {}},
              {"unit", ParamKind::String, "blocks", 0, 0, "unit of the radii", {"blocks", "tokens"}}};
  d.validate = [](const PatternContext&, const Params& p) {
    if (p.get_int_list("radii").empty()) throw UsageError("pattern 'multiscale': radii must list at least one radius");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t r = pat::per_head(p.get_int_list("radii"), ctx);
    bool tokens = p.get_string("unit") == "tokens";
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      if (tokens) pat::mark_local_tokens(g, i, r, out);
      else pat::mark_local_blocks(g, i, r, out);
    }
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
