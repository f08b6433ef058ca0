// bsattn analyze: quality of a mask against dense attention (not built yet), and --curves.
#include "apps/bsattn/analyze_curves.h"
#include "apps/bsattn/commands.h"
#include "lib/error.h"

namespace bsattn::app {

void register_analyze(CLI::App& app) {
  auto* sub = app.add_subcommand("analyze", "How much of dense attention a mask keeps; --curves: curve locality");
  auto curves = add_analyze_curves_options(*sub);
  sub->callback([curves]() {
    if (analyze_curves_requested(*curves)) return run_analyze_curves(*curves);
    throw RuntimeFailure("'analyze' quality analysis is not built yet in this version");
  });
}

}  // namespace bsattn::app
