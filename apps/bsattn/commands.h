// Each subcommand lives in cmd_<verb>.cpp: an options struct, a register function wiring CLI11 to it,
// and a callback that calls the library. Callbacks throw bsattn::UsageError / RuntimeFailure; main()
// turns them into exit codes and one-line messages.
#pragma once
#include <CLI/CLI.hpp>

namespace bsattn::app {

void register_gen_mask(CLI::App& app);
void register_visualize(CLI::App& app);
void register_analyze(CLI::App& app);
void register_run(CLI::App& app);
void register_bench(CLI::App& app);

// Prints to stderr when stderr is a terminal (progress of long work).
bool stderr_is_terminal();

}  // namespace bsattn::app
