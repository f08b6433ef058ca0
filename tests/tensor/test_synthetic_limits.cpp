// Synthetic Q/K/V sizes are checked before anything is allocated (issue 23, case 1): B*S*H*D that
// wraps int64 or passes 2^32 elements is a UsageError stating the limit, never an allocation of a
// wrapped (small) size that is then written past, nor an attempt to allocate TiB.
#include <doctest/doctest.h>

#include <string>

#include "lib/error.h"
#include "lib/tensor/qkv_source.h"
#include "lib/tensor/synthetic.h"

using namespace bsattn;

TEST_CASE("make_synthetic: sizes past 2^32 elements or wrapping int64 are refused with the limit") {
  for (SyntheticSizes z : {SyntheticSizes{int64_t(1) << 20, int64_t(1) << 30, int64_t(1) << 16, int64_t(1) << 16, 256},
                           SyntheticSizes{1, int64_t(1) << 30, 16, 16, 1024},
                           SyntheticSizes{1, int64_t(1) << 62, 4, 4, 4}}) {
    try {
      make_synthetic("decay", z, 0);
      FAIL("no error for sizes past the limit");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find("limit of 2^32 elements") != std::string::npos);
    }
  }
  // K/V are checked with their own head count
  CHECK_THROWS_AS(make_synthetic("decay", SyntheticSizes{1, int64_t(1) << 28, 1, 1, 32}, 0), UsageError);
  // a small request is made
  SyntheticQKV ok = make_synthetic("decay", SyntheticSizes{1, 64, 2, 2, 8}, 0);
  CHECK(ok.q.size() == 64 * 2 * 8);
}

TEST_CASE("synthetic spatial grids: the text + grid length is overflow-checked") {
  CHECK_THROWS_AS(synthetic_required_seq("spatial:grid=4294967296x4294967296"), UsageError);
  CHECK_THROWS_AS(synthetic_required_seq("spatial:grid=1048576x1048576x1048576"), UsageError);
  CHECK(synthetic_required_seq("spatial:grid=4x8,text=3") == 35);
}
