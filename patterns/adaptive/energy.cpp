// Energy-threshold selector: each row keeps its highest-mass blocks (estimated from mean-pooled Q and
// K at pooling level 1, 2, 4 or 8 blocks) until their mass reaches tau, the crossing block included.
#include <cmath>

#include "lib/error.h"
#include "patterns/adaptive/selectors.h"

namespace bsattn {
namespace {

PatternDef energy_def() {
  PatternDef d;
  d.name = "energy";
  d.family = "adaptive";
  d.summary = "per row, the top blocks by pooled softmax mass until their sum reaches tau (needs Q/K)";
  d.params = {{"tau", ParamKind::Float, "0.9", 0, 1, "mass to keep per row (the crossing block included)", {}},
              {"pool", ParamKind::Int, "1", 1, 8, "pooling level in blocks: 1, 2, 4 or 8", {}},
              {"min_blocks", ParamKind::Int, "1", 0, 1e9, "at least this many blocks per row", {}},
              {"max_blocks", ParamKind::Int, "0", 0, 1e9, "at most this many blocks per row (0: no cap)", {}}};
  d.batch_invariant = false;
  d.needs_inputs = true;
  d.validate = [](const PatternContext&, const Params& p) {
    int64_t pool = p.get_int("pool");
    if (pool != 1 && pool != 2 && pool != 4 && pool != 8)
      throw UsageError("pattern 'energy': pool must be 1, 2, 4 or 8, got " + std::to_string(pool));
    if (p.get_int("max_blocks") > 0 && p.get_int("max_blocks") < p.get_int("min_blocks"))
      throw UsageError("pattern 'energy': max_blocks must be 0 or >= min_blocks");
  };
  d.generate = [](const PatternContext& ctx, const Params& p, HeadOutput& out) {
    int64_t b = adaptive::input_batch(ctx, "energy"), pool = p.get_int("pool"), mu, nu;
    auto mass = adaptive::pooled_mass(ctx, b, pool, mu, nu);
    int64_t min_u = (p.get_int("min_blocks") + pool - 1) / pool;
    int64_t max_u = p.get_int("max_blocks") > 0 ? std::max<int64_t>(1, p.get_int("max_blocks") / pool) : 0;
    const int64_t mq = ctx.shape.mq(), mk = ctx.shape.mk();
    for (int64_t u = 0; u < mu; ++u)
      for (int64_t v : adaptive::select_until_mass(&mass[size_t(u * nu)], nu, p.get_float("tau"), min_u, max_u))
        for (int64_t i = u * pool; i < std::min(mq, (u + 1) * pool); ++i)
          for (int64_t j = v * pool; j < std::min(mk, (v + 1) * pool); ++j) out.set(i, j);
  };
  return d;
}
BSATTN_REGISTER_PATTERN(energy_def());

}  // namespace
}  // namespace bsattn
