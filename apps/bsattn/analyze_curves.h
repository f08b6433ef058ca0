// `bsattn analyze --curves ...`: the locality table of space-filling-curve orders (owned by the
// curves work). cmd_analyze.cpp registers these options on the analyze subcommand and calls
// run_analyze_curves when --curves is given.
#pragma once
#include <memory>

#include <CLI/CLI.hpp>

namespace bsattn::app {

struct AnalyzeCurvesOptions;
std::shared_ptr<AnalyzeCurvesOptions> add_analyze_curves_options(CLI::App& analyze);
bool analyze_curves_requested(const AnalyzeCurvesOptions& o);
void run_analyze_curves(const AnalyzeCurvesOptions& o);

}  // namespace bsattn::app
