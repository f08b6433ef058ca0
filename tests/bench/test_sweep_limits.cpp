// Integer sweep axes are bounded like the float ones (issue 23, case 6): a value past its axis's
// limit, or a range that would expand past 100000 values, is a UsageError naming the option and the
// bound before any configuration is expanded.
#include <doctest/doctest.h>

#include <string>

#include "lib/bench/sweep.h"
#include "lib/error.h"

using namespace bsattn;
using namespace bsattn::bench;

namespace {
std::string message_of(SweepAxes& a, const std::string& axis, const std::string& text) {
  try {
    a.set(axis, text);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("sweep axes: integer values and ranges are bounded, with the bound in the message") {
  SweepAxes a;
  CHECK(message_of(a, "seq", "1:9223372036854775807:1").find("more than 100000 values") != std::string::npos);
  CHECK(message_of(a, "seq", "9223372036854775807").find("[1, 2^24]") != std::string::npos);
  CHECK(message_of(a, "heads", "99999999").find("--heads") != std::string::npos);
  CHECK(message_of(a, "batch", "1:100000000:1").find("--batch") != std::string::npos);
  CHECK(message_of(a, "head-dim", "2048").find("1024") != std::string::npos);
  CHECK(message_of(a, "kv-heads", "99999999").find("--kv-heads") != std::string::npos);
  nlohmann::json cfg = {{"seq", "1:9223372036854775807:1"}};
  CHECK_THROWS_AS(a.merge_json(cfg, "--config c.json"), UsageError);
  // values inside the bounds are taken
  a.set("seq", "1024:4096:1024");
  CHECK(a.seq == std::vector<int64_t>{1024, 2048, 3072, 4096});
}
