// eigen_gemm_ceiling: the best of several rounds, a total over the threads.
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
