#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "apps/bsattn/commands.h"
#include "apps/bsattn/common_options.h"
#include "lib/build_info.h"
#include "lib/error.h"

namespace bsattn::app {
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) != 0; }
}  // namespace bsattn::app

int main(int argc, char** argv) {
  CLI::App app{"bsattn: block-sparse attention toolkit (masks, curves, quality analysis, CUDA kernels, benchmarks)",
               "bsattn"};
  app.set_version_flag("--version", std::string("bsattn ") + BSATTN_VERSION + " (" + bsattn::build_commit() + ")");
  app.require_subcommand(1);
  app.fallthrough(false);
  bsattn::app::register_gen_mask(app);
  bsattn::app::register_visualize(app);
  bsattn::app::register_analyze(app);
  bsattn::app::register_run(app);
  bsattn::app::register_bench(app);
  bsattn::app::refuse_empty_values(app);

  auto command = [&]() {
    std::string name = "bsattn";
    for (auto* sub : app.get_subcommands()) name += " " + sub->get_name();
    return name;
  };
  // "[--json -]" copied from a usage line: the brackets mark an optional part, they are not typed.
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] == '[' && argv[i][1] == '-') {
      std::cerr << "bsattn: error: '" << argv[i] << "': square brackets in usage text mark optional parts; type the "
                << "option without them (e.g. --json -, not [--json -])\n";
      return 2;
    }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << command() << ": error: " << e.what() << " (see " << command() << " --help)\n";
    return 2;
  } catch (const bsattn::UsageError& e) {
    std::cerr << command() << ": error: " << e.what() << "\n";
    return 2;
  } catch (const bsattn::RuntimeFailure& e) {
    std::cerr << command() << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << command() << ": error: out of host memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << command() << ": error: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
