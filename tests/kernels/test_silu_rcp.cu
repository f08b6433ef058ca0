// Host-side checks of the SiLU score's reciprocal on the FMA pipe (kernels/fwd/softmax.cuh's rcp_fma,
// compiled for the host), no GPU needed: against float64 1/d for every float in [1, 2) (the first guess
// and the Newton steps scale by whole powers of two, so one octave stands for all), at random d over
// [1, 2^64] and at the ends; and the score as sm90-ws's FMA path forms it, (c_lin x) rcp_fma(1 + min(2^(c_exp
// x), 2^64)), against float64 SiLU(scale x) / n over scores from -1e4 to 1e4 and several scales.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fwd/softmax.cuh"
#include "lib/rng.h"

namespace fwd = bsattn::cuda::fwd;

namespace {
double rel_err(float y, double d) { return std::fabs(double(y) * d - 1.0); }
}  // namespace

TEST_CASE("rcp_fma: within 6.7e-6 of 1/d for every float of [1, 2), random d up to 2^64 and the ends") {
  double worst = 0.0;
  for (uint32_t m = 0; m < (1u << 23); ++m) {
    const uint32_t bits = 0x3F800000u | m;
    float d;
    std::memcpy(&d, &bits, 4);
    worst = std::max(worst, rel_err(fwd::rcp_fma(d), d));
  }
  CHECK(worst < 6.7e-6);
  CHECK(worst > 1e-7);  // two Newton steps from a 5% guess, not an exact division
  bsattn::Rng rng(2026);
  for (int i = 0; i < 1000000; ++i) {
    const float d = std::exp2f(float(rng.uniform() * 64.0));
    REQUIRE(rel_err(fwd::rcp_fma(d), d) < 6.7e-6);
  }
  for (float d : {1.f, 2.f, 3.f, 0x1p63f, 0x1p64f, std::nextafterf(0x1p64f, 0.f)}) {
    CAPTURE(d);
    CHECK(rel_err(fwd::rcp_fma(d), d) < 6.7e-6);
  }
}

TEST_CASE("SiLU score by rcp_fma: within 1e-5 of float64 SiLU(scale s) / n, and 0 in the overflow limit") {
  bsattn::Rng rng(7);
  const double log2e = 1.4426950408889634;
  for (double scale : {0.125, 0.088388, 1.0, 3.0}) {
    const double n = 4096.0;
    const float c_exp = float(-scale * log2e), c_lin = float(scale / n);
    for (int i = 0; i < 200000; ++i) {
      const double x = (rng.uniform() * 2.0 - 1.0) * (i % 3 == 0 ? 1e4 : i % 3 == 1 ? 100.0 : 8.0);
      const float xf = float(x);
      const float ex = std::exp2f(xf * c_exp);
      const float p = (xf * c_lin) * fwd::rcp_fma(1.f + std::fmin(ex, 0x1p64f));
      const double z = scale * double(xf);
      const double ref = z / (1.0 + std::exp(-z)) / n;
      CAPTURE(scale);
      CAPTURE(x);
      // the float32 product and exponent round at about 1e-7 relative; the reciprocal adds 6.7e-6; below
      // the cap (z < -44.4) SiLU is under 2^-64 |z| / n, and so is p
      if (z > -44.0)
        REQUIRE(std::fabs(p - ref) <= 1e-5 * std::fabs(ref) + 1e-30);
      else
        REQUIRE(std::fabs(double(p)) <= std::ldexp(std::fabs(z) / n, -60));
    }
  }
}
