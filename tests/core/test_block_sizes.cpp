// Block sizes from --block / --block-q / --block-kv: one resolver for every subcommand.
#include <doctest/doctest.h>

#include "lib/block_sizes.h"
#include "lib/error.h"

using namespace bsattn;

TEST_CASE("resolve_block_sizes: per-side options override --block, which overrides the fallback") {
  auto sizes = [](BlockOptions o, int64_t fallback) {
    BlockSizes b = resolve_block_sizes(o, fallback);
    return std::make_pair(b.q, b.kv);
  };
  CHECK(sizes({}, 128) == std::make_pair(int64_t(128), int64_t(128)));
  CHECK(sizes({"64", "", ""}, 128) == std::make_pair(int64_t(64), int64_t(64)));
  CHECK(sizes({"64", "", "32"}, 128) == std::make_pair(int64_t(64), int64_t(32)));
  CHECK(sizes({"", "16", ""}, 128) == std::make_pair(int64_t(16), int64_t(128)));
  CHECK(sizes({"", "", ""}, 0) == std::make_pair(int64_t(0), int64_t(0)));  // the mask file decides
  CHECK(sizes({"1", "", std::to_string(kMaxBlockSize)}, 0) == std::make_pair(int64_t(1), kMaxBlockSize));
}

TEST_CASE("resolve_block_sizes: a bad value names its option and the allowed range") {
  CHECK_THROWS_WITH_AS(resolve_block_sizes({"0", "", ""}, 128), doctest::Contains("--block 0 is out of range"), UsageError);
  CHECK_THROWS_WITH_AS(resolve_block_sizes({"", "-4", ""}, 128), doctest::Contains("--block-q -4"), UsageError);
  CHECK_THROWS_WITH_AS(resolve_block_sizes({"", "", std::to_string(kMaxBlockSize + 1)}, 128),
                       doctest::Contains("--block-kv"), UsageError);
  CHECK_THROWS_WITH_AS(resolve_block_sizes({"x64", "", ""}, 128), doctest::Contains("not an integer"), UsageError);
}
