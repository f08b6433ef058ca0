// bsattn visualize: not built yet (see its issue); the subcommand exists so that --help lists it.
#include "apps/bsattn/commands.h"
#include "lib/error.h"

namespace bsattn::app {

void register_visualize(CLI::App& app) {
  auto* sub = app.add_subcommand("visualize", "(not built yet) see the project's issues");
  sub->allow_extras();
  sub->callback([]() { throw RuntimeFailure("'visualize' is not built yet in this version"); });
}

}  // namespace bsattn::app
