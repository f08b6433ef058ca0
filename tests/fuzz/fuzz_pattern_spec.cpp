// Pattern specs and head maps (gen-mask --pattern / --head-map, run's and analyze's MASK, bench's
// --pattern): the text is parsed as a spec, and as a head map for 4 heads, and what parses is generated
// on a small mask (512 tokens, blocks of 32, causal when the first byte is odd) whose head types must
// agree with its bitmap (generate_mask checks).
#include <cstdint>
#include <string>

#include "patterns/registry.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 512) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // custom:file= reads files: only this process's scratch file, never a path from the input.
  if (text.find("file") != std::string::npos) return 0;
  MaskRequest req;
  req.shape = MaskShape{1, 4, 512, 512, 32, 32};
  req.causal = data[0] & 1;
  req.seed = data[0];
  fuzz::expect_only_usage_errors([&] {
    req.pattern = parse_pattern(text, "--pattern");
    generate_mask(req);
  });
  req.pattern = ParsedPattern{};
  fuzz::expect_only_usage_errors([&] {
    req.head_map = parse_head_map(text, 4);
    generate_mask(req);
  });
  return 0;
}
