// eigen_gemm_ceiling: the best of several rounds, a total over the threads; compare_with_ceiling: work and
// ceiling rounds alternated, one ratio per repetition.
#include <doctest/doctest.h>

#include <algorithm>

#include "lib/reference/cpu_ceiling.h"

using namespace bsattn;

TEST_CASE("eigen_gemm_ceiling: the figure is the best round's total over the threads") {
  GemmCeiling c = eigen_gemm_ceiling(32, 48, 16, 2, 0.04, 4);
  CHECK(c.threads == 2);
  CHECK(c.m == 32);
  CHECK(c.n == 48);
  CHECK(c.k == 16);
  CHECK(c.rounds == 4);
  REQUIRE(c.round_gflops.size() == 4);
  CHECK(c.gflops == *std::max_element(c.round_gflops.begin(), c.round_gflops.end()));
  CHECK(c.gflops > 0);
  CHECK(c.seconds > 0);
}

TEST_CASE("eigen_gemm_ceiling: at least one round") {
  GemmCeiling c = eigen_gemm_ceiling(8, 8, 8, 1, 0.001, 0);
  CHECK(c.rounds == 1);
  CHECK(c.round_gflops.size() == 1);
  CHECK(c.gflops == c.round_gflops[0]);
}

TEST_CASE("median_of: the middle value, the mean of the middle two for an even count") {
  CHECK(median_of({}) == 0);
  CHECK(median_of({3.0, 1.0, 2.0}) == 2.0);
  CHECK(median_of({4.0, 1.0, 3.0, 2.0}) == 2.5);
  CHECK(median_of({7.0}) == 7.0);
}

TEST_CASE("compare_with_ceiling: a warm-up, then each timed call next to its own ceiling round") {
  int calls = 0;
  volatile double sink = 0;
  auto work = [&] {
    ++calls;
    for (int e = 0; e < 200000; ++e) sink = sink + 1e-9 * e;
  };
  const double flops = 1e6;
  CeilingComparison c = compare_with_ceiling(work, flops, 4, 16, 24, 8, 2);
  CHECK(calls == 5);  // warm-up + 4
  REQUIRE(c.seconds.size() == 4);
  REQUIRE(c.ratios.size() == 4);
  REQUIRE(c.ceiling.round_gflops.size() == 4);
  CHECK(c.ceiling.threads == 2);
  CHECK(c.ceiling.rounds == 4);
  CHECK(c.ceiling.m == 16);
  CHECK(c.ceiling.n == 24);
  CHECK(c.ceiling.k == 8);
  for (size_t r = 0; r < 4; ++r) {
    CHECK(c.seconds[r] > 0);
    CHECK(c.ratios[r] == doctest::Approx(flops / c.seconds[r] / 1e9 / c.ceiling.round_gflops[r]));
  }
  CHECK(c.ceiling.gflops == *std::max_element(c.ceiling.round_gflops.begin(), c.ceiling.round_gflops.end()));
  CHECK(c.median_seconds == median_of(c.seconds));
  CHECK(c.median_ratio == median_of(c.ratios));
  CHECK(c.median_ceiling_gflops == median_of(c.ceiling.round_gflops));
}
