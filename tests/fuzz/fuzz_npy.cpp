// .npy reader: the in-memory parser and the header-first file reader must agree on every input (both
// refuse it, or both return the same array), and an array they accept goes through the mask reader
// (bool / 0-1 integer [B,H,Mq,Mk], [H,Mq,Mk] or [Mq,Mk]) and the mask statistics.
#include <cstdint>
#include <vector>

#include "lib/mask_io.h"
#include "lib/mask_stats.h"
#include "lib/npy.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_path("input.npy");
  std::vector<uint8_t> bytes(data, data + size);
  fuzz::write_bytes(path, data, size);
  bool parsed = false, read = false;
  NpyArray a, b;
  fuzz::expect_only_usage_errors([&] {
    a = parse_npy(bytes, "input.npy");
    parsed = true;
  });
  fuzz::expect_only_usage_errors([&] {
    b = read_npy(path);
    read = true;
  });
  if (parsed != read) std::abort();  // the two readers disagree on whether the file is valid
  if (!parsed) return 0;
  if (a.dtype != b.dtype || a.shape != b.shape || a.data != b.data) std::abort();
  fuzz::expect_only_usage_errors([&] {
    MaskSizesHint hint;
    hint.block_q = hint.block_kv = 16;
    BlockMask m = mask_from_npy(a, hint, "input.npy");
    mask_stats(m);
  });
  return 0;
}
