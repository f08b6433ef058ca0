// frontier JSON reader (bsattn.frontier/v1, `visualize frontier`): its figure (SVG) from any JSON.
#include <cstdint>

#include "lib/render/json_plots.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string svg = fuzz::scratch_path("frontier.svg");
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  fuzz::expect_only_usage_errors([&] {
    render::FrontierFigureOptions o;
    o.format = render::ImageFormat::Svg;
    o.width = 320;
    o.height = 200;
    o.metric = size % 3 == 0 ? "recall" : size % 3 == 1 ? "error" : "both";
    render::render_frontier_figure(j, "input.json", o, svg);
  });
  return 0;
}
