#include "lib/block_sizes.h"

#include "lib/error.h"
#include "lib/spec.h"

namespace bsattn {

namespace {
// 0 when `text` is empty; otherwise a checked size.
int64_t block_size(const std::string& text, const char* option) {
  if (text.empty()) return 0;
  int64_t v = parse_int(text, option);
  if (v < 1 || v > kMaxBlockSize)
    throw UsageError(std::string(option) + " " + text + " is out of range (allowed: 1 to " +
                     std::to_string(kMaxBlockSize) + ")");
  return v;
}
}  // namespace

BlockSizes resolve_block_sizes(const BlockOptions& o, int64_t fallback) {
  const int64_t both = block_size(o.block, "--block");
  const int64_t q = block_size(o.block_q, "--block-q"), kv = block_size(o.block_kv, "--block-kv");
  const int64_t shared = both ? both : fallback;
  return {q ? q : shared, kv ? kv : shared};
}

}  // namespace bsattn
