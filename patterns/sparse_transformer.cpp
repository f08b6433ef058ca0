// Fixed-structure block patterns from the Sparse Transformer line of work, all at block level (the
// unit of the kernels), with d = diag(i) the key block aligned with query block i:
//  - dilated:  the diagonal block plus, for every rate r, blocks at offsets delta from the diagonal
//              with |delta| <= window*r and delta = off (mod r); off = 0, or with per_head_offset the
//              head's index in its range mod r (heads then cover different residues, LongNet-style).
//  - strided:  Sparse Transformer "strided" (Child et al. 2019): |j - d| < stride (local) or
//              j = d (mod stride) (the strided summary column).
//  - fixed:    DeepSpeed FixedSparsityConfig: windows of num_local_blocks blocks; a row keeps every
//              block of its own window; in every window the num_global_blocks blocks ending
//              p*num_global_blocks before its end are global columns (kept by every row), p = the
//              head's index in its range mod num_different_global_patterns; a last partial window uses
//              its last blocks. horizontal_global also keeps the whole rows of global positions.
// With --causal the causal restriction then removes blocks above the diagonal (unidirectional).
#include "patterns/common.h"

namespace bsattn {
namespace {

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "dilated";
  d.family = "generic";
  d.summary = "diagonal block + for every rate r the blocks at offsets = off (mod r) within window*r (block level)";
  d.params = {{"rates", ParamKind::IntList, "1,2,4", 1, 1e6, "dilation rates in blocks (one band per rate)", {}},
              pat::int_param("window", "2", 0, 1e6, "kept blocks on each side of the diagonal per rate"),
              {"per_head_offset", ParamKind::Bool, "false", 0, 0,
               "offset of head g (index in its range) is g mod r instead of 0", {}}};
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    auto rates = p.get_int_list("rates");
    int64_t w = p.get_int("window"), mk = ctx.shape.mk();
    bool per_head = p.get_bool("per_head_offset");
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      int64_t dg = g.diag_block(i);
      if (dg >= 0) out.set(i, dg);
      for (int64_t r : rates) {
        int64_t off = per_head ? ctx.group_head % r : 0;
        // delta = off + k*r for integer k, |delta| <= w*r.
        for (int64_t delta = off - ((off + w * r) / r) * r; delta <= w * r; delta += r) {
          int64_t j = dg + delta;
          if (std::abs(delta) <= w * r && j >= 0 && j < mk) out.set(i, j);
        }
      }
    }
  };
  return d;
}());

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "strided";
  d.family = "generic";
  d.summary = "Sparse Transformer strided: |j - diag| < stride, or j = diag (mod stride) (block level)";
  d.params = {pat::int_param("stride", "8", 1, 1e6, "stride in blocks (also the local width)")};
  d.head_invariant = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t l = p.get_int("stride"), mk = ctx.shape.mk();
    for (int64_t i = 0; i < ctx.shape.mq(); ++i) {
      int64_t dg = g.diag_block(i);
      for (int64_t j = 0; j < mk; ++j)
        if (std::abs(j - dg) < l || ((j - dg) % l + l) % l == 0) out.set(i, j);
    }
  };
  return d;
}());

// Global columns of the `fixed` pattern for pattern index p: a list of block indices.
std::vector<int64_t> fixed_global_blocks(int64_t n, int64_t L, int64_t G, int64_t p) {
  std::vector<int64_t> v;
  for (int64_t start = 0; start < n; start += L) {
    int64_t len = std::min(L, n - start);
    int64_t a = len == L ? start + L - (p + 1) * G : start + std::max<int64_t>(0, len - G);
    int64_t b = len == L ? start + L - p * G : start + len;
    for (int64_t j = a; j < b; ++j) v.push_back(j);
  }
  return v;
}

BSATTN_REGISTER_PATTERN([] {
  PatternDef d;
  d.name = "fixed";
  d.family = "generic";
  d.summary = "DeepSpeed Fixed: local windows of num_local_blocks + global blocks at each window's end, "
              "shifted per head by num_different_global_patterns";
  d.params = {pat::int_param("num_local_blocks", "4", 1, 1e6, "blocks per local window"),
              pat::int_param("num_global_blocks", "1", 1, 1e6, "global blocks per window"),
              pat::int_param("num_different_global_patterns", "1", 1, 1e6,
                             "heads cycle through this many global positions (at most local/global)"),
              {"horizontal_global", ParamKind::Bool, "false", 0, 0, "global positions also attend to all", {}}};
  d.validate = [](const PatternContext&, const Params& p) {
    int64_t L = p.get_int("num_local_blocks"), G = p.get_int("num_global_blocks");
    int64_t P = p.get_int("num_different_global_patterns");
    if (G > L) throw UsageError("pattern 'fixed': num_global_blocks (" + std::to_string(G) +
                                ") must be <= num_local_blocks (" + std::to_string(L) + ")");
    if (P * G > L)
      throw UsageError("pattern 'fixed': num_different_global_patterns * num_global_blocks (" +
                       std::to_string(P * G) + ") must be <= num_local_blocks (" + std::to_string(L) + ")");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    auto g = ctx.geometry();
    int64_t L = p.get_int("num_local_blocks"), G = p.get_int("num_global_blocks");
    int64_t pidx = ctx.group_head % p.get_int("num_different_global_patterns");
    int64_t mq = ctx.shape.mq(), mk = ctx.shape.mk();
    auto glob = fixed_global_blocks(mk, L, G, pidx);
    std::vector<uint8_t> is_global(size_t(mk), 0);
    for (auto j : glob) is_global[j] = 1;
    bool horizontal = p.get_bool("horizontal_global");
    for (int64_t i = 0; i < mq; ++i) {
      int64_t dg = g.diag_block(i);
      if (dg >= 0) {
        int64_t w0 = dg / L * L;
        for (int64_t j = w0; j < std::min(mk, w0 + L); ++j) out.set(i, j);
        if (horizontal && is_global[dg]) std::fill(out.bits + i * mk, out.bits + (i + 1) * mk, uint8_t(1));
      }
      for (auto j : glob) out.set(i, j);
    }
  };
  return d;
}());

}  // namespace
}  // namespace bsattn
