// MInference vertical-slash selector: the exact attention of the last queries ranks key columns
// (vertical lines) and diagonals (slash lines); the top ones, plus forced sink columns and recent
// diagonals, are turned into the blocks they cross.
#include "patterns/adaptive/selectors.h"

namespace bsattn {
namespace {

PatternDef vslash_def() {
  PatternDef d;
  d.name = "vslash";
  d.family = "adaptive";
  d.summary = "MInference vertical-slash: top key columns and diagonals from the last queries' attention (needs Q/K)";
  d.params = {{"vertical", ParamKind::Int, "512", 0, 1e9, "key columns (tokens) kept", {}},
              {"slash", ParamKind::Int, "-1", -1, 1e9, "diagonals (token offsets) kept (-1: same as vertical)", {}},
              {"last_q", ParamKind::Int, "64", 1, 1e9, "queries at the end of the sequence that estimate", {}},
              {"sink", ParamKind::Int, "4", 0, 1e9, "forced first key columns", {}},
              {"recent", ParamKind::Int, "64", 0, 1e9, "forced diagonals 0..recent-1 (the local band)", {}}};
  d.batch_invariant = false;
  d.needs_inputs = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    int64_t b = adaptive::input_batch(ctx, "vslash");
    std::vector<double> vert, slash;
    adaptive::vertical_slash_scores(ctx, b, p.get_int("last_q"), vert, slash);
    const double forced = 1e300;
    for (int64_t c = 0; c < std::min<int64_t>(p.get_int("sink"), int64_t(vert.size())); ++c) vert[size_t(c)] = forced;
    for (int64_t o = 0; o < std::min<int64_t>(p.get_int("recent"), int64_t(slash.size())); ++o) slash[size_t(o)] = forced;
    int64_t nv = p.get_int("vertical"), ns = p.get_int("slash") < 0 ? nv : p.get_int("slash");
    nv = std::max(nv, std::min<int64_t>(p.get_int("sink"), int64_t(vert.size())));
    ns = std::max(ns, std::min<int64_t>(p.get_int("recent"), int64_t(slash.size())));
    const MaskShape& s = ctx.shape;
    auto g = ctx.geometry();
    const int64_t mq = s.mq(), off = g.causal_offset();
    for (int64_t c : adaptive::top_indices(vert, nv))
      if (vert[size_t(c)] > 0)
        for (int64_t i = 0; i < mq; ++i) out.set(i, c / s.block_kv);
    for (int64_t o : adaptive::top_indices(slash, ns)) {
      if (!(slash[size_t(o)] > 0)) continue;
      for (int64_t i = 0; i < mq; ++i) {
        int64_t a = g.q_begin(i) + off - o, e = g.q_end(i) - 1 + off - o;  // keys on this diagonal
        a = std::max<int64_t>(a, 0);
        e = std::min(e, s.kv_len - 1);
        for (int64_t j = a / s.block_kv; a <= e && j <= e / s.block_kv; ++j) out.set(i, j);
      }
    }
  };
  return d;
}
BSATTN_REGISTER_PATTERN(vslash_def());

}  // namespace
}  // namespace bsattn
