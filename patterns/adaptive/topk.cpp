// Top-k selector (NSA-style): per row block, the k key blocks with the highest pooled score
// (mean-pooled Q . mean-pooled K, as NSA's compressed-attention scores), plus forced sink blocks and
// local blocks ending at the diagonal.
#include "patterns/adaptive/selectors.h"

namespace bsattn {
namespace {

PatternDef topk_def() {
  PatternDef d;
  d.name = "topk";
  d.family = "adaptive";
  d.summary = "per row, the k blocks with the highest pooled score plus forced sink and local blocks (needs Q/K)";
  d.params = {{"k", ParamKind::Int, "8", 0, 1e9, "blocks chosen by score per row (besides the forced ones)", {}},
              {"sink", ParamKind::Int, "1", 0, 1e9, "forced sink blocks (from key block 0)", {}},
              {"local", ParamKind::Int, "2", 0, 1e9, "forced local blocks ending at the diagonal block", {}}};
  d.batch_invariant = false;
  d.needs_inputs = true;
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    int64_t b = adaptive::input_batch(ctx, "topk"), mu, nu;
    auto mass = adaptive::pooled_mass(ctx, b, 1, mu, nu);
    auto g = ctx.geometry();
    const int64_t k = p.get_int("k"), sink = p.get_int("sink"), local = p.get_int("local");
    for (int64_t i = 0; i < mu; ++i) {
      int64_t d = g.diag_block(i);
      std::vector<double> row(mass.begin() + i * nu, mass.begin() + (i + 1) * nu);
      for (int64_t j = 0; j < nu; ++j)
        if (j < sink || (j <= d && j > d - local)) {
          out.set(i, j);
          row[size_t(j)] = -1;  // forced: not counted among the k
        }
      for (int64_t j : adaptive::top_indices(row, k))
        if (row[size_t(j)] > 0) out.set(i, j);
    }
  };
  return d;
}
BSATTN_REGISTER_PATTERN(topk_def());

}  // namespace
}  // namespace bsattn
