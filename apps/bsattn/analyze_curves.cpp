// Not built yet: `analyze --curves` lands with the curves work.
#include "apps/bsattn/analyze_curves.h"

#include "lib/error.h"

namespace bsattn::app {

struct AnalyzeCurvesOptions {
  bool curves = false;
};
std::shared_ptr<AnalyzeCurvesOptions> add_analyze_curves_options(CLI::App& analyze) {
  auto o = std::make_shared<AnalyzeCurvesOptions>();
  analyze.add_flag("--curves", o->curves, "Locality table of curve orders (not built yet)");
  return o;
}
bool analyze_curves_requested(const AnalyzeCurvesOptions& o) { return o.curves; }
void run_analyze_curves(const AnalyzeCurvesOptions&) {
  throw RuntimeFailure("'analyze --curves' is not built yet in this version");
}

}  // namespace bsattn::app
