// bsattn bench: not built yet (see its issue); the subcommand exists so that --help lists it.
#include "apps/bsattn/commands.h"
#include "lib/error.h"

namespace bsattn::app {

void register_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "(not built yet) see the project's issues");
  sub->allow_extras();
  sub->callback([]() { throw RuntimeFailure("'bench' is not built yet in this version"); });
}

}  // namespace bsattn::app
