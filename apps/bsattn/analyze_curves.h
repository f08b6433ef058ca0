// `bsattn analyze --curves ...`: the locality table of space-filling-curve orders (owned by the
// curves work). cmd_analyze.cpp registers these options on the analyze subcommand and calls
// run_analyze_curves when --curves is given.
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace bsattn::app {

struct AnalyzeCurvesOptions;
std::shared_ptr<AnalyzeCurvesOptions> add_analyze_curves_options(CLI::App& analyze);
bool analyze_curves_requested(const AnalyzeCurvesOptions& o);
void run_analyze_curves(const AnalyzeCurvesOptions& o);

// The grid, text part and orders given on analyze's command line (--grid, --text, --text-position,
// --order), for analyze --dilated, which compares token orders by the quality of dilated attention.
struct CurveOrderSelection {
  std::string grid, text, text_position, orders;  // as given ("" when absent)
};
CurveOrderSelection curve_order_selection(const AnalyzeCurvesOptions& o);

}  // namespace bsattn::app
