// XAttention selector: antidiagonal scores of strided token groups estimate each block's mass; each
// row keeps its top blocks until the estimate reaches tau (crossing block included), diagonal forced.
#include "lib/error.h"
#include "patterns/adaptive/selectors.h"

namespace bsattn {
namespace {

PatternDef xattn_def() {
  PatternDef d;
  d.name = "xattn";
  d.family = "adaptive";
  d.summary = "XAttention: strided antidiagonal block scores, top blocks per row until mass tau, diagonal kept (needs Q/K)";
  d.params = {{"stride", ParamKind::Int, "8", 1, 1024, "antidiagonal stride (tokens per group)", {}},
              {"tau", ParamKind::Float, "0.9", 0, 1, "estimated mass to keep per row", {}}};
  d.batch_invariant = false;
  d.needs_inputs = true;
  d.validate = [](const PatternContext& ctx, const Params& p) {
    int64_t st = p.get_int("stride");
    if (st > ctx.shape.block_q || st > ctx.shape.block_kv)
      throw UsageError("pattern 'xattn': stride " + std::to_string(st) + " must not exceed the block size");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    int64_t b = adaptive::input_batch(ctx, "xattn");
    auto mass = adaptive::antidiagonal_mass(ctx, b, p.get_int("stride"));
    auto g = ctx.geometry();
    const int64_t mq = ctx.shape.mq(), mk = ctx.shape.mk();
    for (int64_t i = 0; i < mq; ++i) {
      for (int64_t j : adaptive::select_until_mass(&mass[size_t(i * mk)], mk, p.get_float("tau"), 1, 0)) out.set(i, j);
      if (g.diag_block(i) >= 0) out.set(i, g.diag_block(i));
    }
  };
  return d;
}
BSATTN_REGISTER_PATTERN(xattn_def());

}  // namespace
}  // namespace bsattn
