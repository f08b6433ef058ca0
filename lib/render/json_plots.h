// Plots of bsattn's JSON results: the quality frontier of `analyze --sweep` ("bsattn.frontier/v1",
// docs/frontier-json.md) and benchmarks of `bench` ("bsattn.bench/v1", docs/bench-json.md), one line
// per pattern / implementation (peers merged into the bench document included).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/render/mask_render.h"

namespace bsattn::render {

// UsageError naming `what` when the document's "schema" is not `schema` (says which one it is).
void check_schema(const nlohmann::json& doc, const std::string& schema, const std::string& what,
                  const std::string& kind);

struct FrontierFigureOptions : FigureOptions {
  std::string metric = "both";  // recall | error | both (recall_mean; rel_l2 on a log axis)
};
FigureReport render_frontier_figure(const nlohmann::json& doc, const std::string& what,
                                    const FrontierFigureOptions& o, const std::string& path);

struct BenchFigureOptions : FigureOptions {
  std::string x = "density";  // density | seq
  std::string metric = "both";  // tflops | speedup | both
  std::string pass;             // keep only records of this pass (fwd, bwd, ...); empty: all
  // Record filters (empty: all): a record is drawn when its field is one of the listed values.
  std::vector<std::string> patterns, impls, seqs, head_dims, dtypes;  // impls match "impl" or "kernel"
  int causal = -1;                                                     // -1 all, 0 non-causal, 1 causal
};
FigureReport render_bench_figure(const nlohmann::json& doc, const std::string& what, const BenchFigureOptions& o,
                                 const std::string& path);

}  // namespace bsattn::render
