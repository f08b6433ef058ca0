// CSR mask reader (FlexAttention's kv_num_blocks / kv_indices as int32 or int64 .npy): the input is two
// .npy images, the first `n` bytes and the rest, with n from the first two bytes. An accepted pair
// must describe its mask exactly: the mask's own row CSR lists the same blocks.
#include <cstdint>
#include <vector>

#include "lib/mask_io.h"
#include "lib/npy.h"
#include "tests/fuzz/fuzz_util.h"

using namespace bsattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t n = std::min<size_t>(size - 2, size_t(data[0]) | (size_t(data[1]) << 8));
  std::vector<uint8_t> first(data + 2, data + 2 + n), second(data + 2 + n, data + size);
  fuzz::expect_only_usage_errors([&] {
    NpyArray num = parse_npy(first, "p_kv_num_blocks.npy");
    NpyArray idx = parse_npy(second, "p_kv_indices.npy");
    MaskSizesHint hint;
    hint.block_q = hint.block_kv = 16;
    BlockMask m = mask_from_csr(num, idx, hint, "p_kv_num_blocks.npy", "p_kv_indices.npy");
    BlockCSR c = row_csr(m);
    if (int64_t(c.num_blocks.size()) != m.shape.batch * m.shape.heads * m.shape.mq()) std::abort();
  });
  return 0;
}
