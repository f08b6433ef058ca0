// Patterns given by how the sequence is laid out, defined on tokens (lengths need not be multiples of
// the block); a block is kept when some existing (q,k) pair in it is allowed:
//  - prefix-lm: k < prefix (the prefix is seen by every query, bidirectionally) or k <= q + kv_len -
//               q_len (causal elsewhere). It is its own causal rule, so it cannot be combined with
//               --causal (which would hide the prefix's upper triangle).
//  - document:  packed sequences: q and k in the same document (documents given by their lengths in
//               order, summing to the sequence length); with causal_inside also k <= q.
#include <numeric>

#include "patterns/common.h"

namespace bsattn {
namespace {

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "prefix-lm";
  d.family = "generic";
  d.summary = "prefix LM: every query sees the first `prefix` tokens, causal after them (not with --causal)";
  d.params = {pat::int_param("prefix", "", 0, 1e12, "tokens of the bidirectional prefix (keys 0..prefix-1)")};
  d.validate = [](const PatternContext& ctx, const Params&) {
    if (ctx.causal)
      throw UsageError("pattern 'prefix-lm' is causal outside its prefix by itself; drop --causal (it would hide "
                       "the prefix's upper triangle)");
  };
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t prefix = p.get_int("prefix");
    for (int64_t i = 0; i < ctx.shape.mq(); ++i)
      for (int64_t j = 0; j < ctx.shape.mk(); ++j)
        if (g.k_begin(j) < prefix || g.causal_visible(i, j)) out.set(i, j);
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "document";
  d.family = "generic";
  d.summary = "packed documents: block-diagonal by document lengths in tokens, optionally causal inside";
  d.params = {{"lengths", ParamKind::IntList, "", 1, 1e12, "document lengths in tokens, in order, summing to the sequence", {}},
              {"causal_inside", ParamKind::Bool, "false", 0, 0, "causal inside every document", {}}};
  d.validate = [](const PatternContext& ctx, const Params& p) {
    pat::require_self_attention(ctx, "document");
    auto len = p.get_int_list("lengths");
    if (len.empty()) throw UsageError("pattern 'document' needs lengths=L1,L2,... (tokens per document)");
    int64_t sum = std::accumulate(len.begin(), len.end(), int64_t(0));
    if (sum != ctx.shape.q_len)
      throw UsageError("pattern 'document': lengths sum to " + std::to_string(sum) + " tokens, the sequence has " +
                       std::to_string(ctx.shape.q_len));
  };
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    auto len = p.get_int_list("lengths");
    bool causal_inside = p.get_bool("causal_inside");
    std::vector<int64_t> start(len.size() + 1, 0);  // document k covers [start[k], start[k+1])
    for (size_t k = 0; k < len.size(); ++k) start[k + 1] = start[k] + len[k];
    auto doc_of = [&](int64_t t) { return int64_t(std::upper_bound(start.begin(), start.end(), t) - start.begin()) - 1; };
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      int64_t q0 = g.q_begin(i), q1 = g.q_end(i), a = doc_of(q0), b = doc_of(q1 - 1);
      // Only key blocks overlapping documents a..b can share one.
      int64_t j0 = start[a] / ctx.shape.block_kv, j1 = (start[b + 1] - 1) / ctx.shape.block_kv;
      for (int64_t j = j0; j <= j1; ++j) {
        int64_t k0 = g.k_begin(j), k1 = g.k_end(j);
        int64_t lo = std::max(a, doc_of(k0)), hi = std::min(b, doc_of(k1 - 1));
        for (int64_t doc = lo; doc <= hi; ++doc) {
          // Earliest key and latest query of this document inside the block.
          int64_t kmin = std::max(k0, start[doc]), qmax = std::min(q1, start[doc + 1]) - 1;
          if (!causal_inside || kmin <= qmax) {
            out.set(i, j);
            break;
          }
        }
      }
    }
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
