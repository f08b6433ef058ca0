// bench JSON reader (bsattn.bench/v1, `bench --from` and `visualize bench`): the document, its CSV and
// Markdown exports, and its figure (SVG, the cheaper surface) from any JSON.
#include <cstdint>

#include "lib/bench/results.h"
#include "lib/render/json_plots.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string svg = fuzz::scratch_path("bench.svg");
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  fuzz::expect_only_usage_errors([&] {
    bench::BenchDoc doc = bench::bench_doc_from_json(j, "input.json");
    bench::to_csv(doc);
    bench::to_markdown(doc);
    bench::to_markdown_report(doc);
    bench::to_json(doc).dump();
  });
  fuzz::expect_only_usage_errors([&] {
    render::BenchFigureOptions o;
    o.format = render::ImageFormat::Svg;
    o.width = 320;
    o.height = 200;
    if (size % 2) o.x = "seq";
    render::render_bench_figure(j, "input.json", o, svg);
  });
  return 0;
}
