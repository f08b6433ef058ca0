// .json mask reader (bsattn.mask/v1): JSON text -> mask_from_json; an accepted mask must write back to
// the same document (mask_to_json) and give a row CSR that rebuilds the same bitmap.
#include <cstdint>
#include <string>

#include "lib/mask_io.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;  // not JSON: load_mask reports the parser's message
  fuzz::expect_only_usage_errors([&] {
    BlockMask m = mask_from_json(j, "input.json");
    BlockMask again = mask_from_json(mask_to_json(m), "round trip");
    if (!(again == m)) std::abort();
    BlockMask from_csr = mask_from_row_csr(m.shape, row_csr(m), "csr");
    if (from_csr.bits != m.bits) std::abort();
  });
  return 0;
}
