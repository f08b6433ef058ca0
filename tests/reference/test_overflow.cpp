// Finite inputs whose scores or gradients leave the compute precision (issue 23, case 9), and scales
// that are not usable multipliers (case 10): errors naming what overflowed, never O = 0 / LSE = -inf
// taken for an empty row, never NaN gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/error.h"
#include "lib/reference/cpu_attention.h"
#include "lib/rng.h"

using namespace bsattn;

namespace {

struct Case {
  AttentionProblem p;
  BlockMask m;
  std::vector<float> q, k, v;
  Case(float q_value, float k_value) : m(MaskShape{1, 1, 128, 128, 64, 64}) {
    p.q_len = p.kv_len = 128;
    p.heads_q = p.heads_kv = 1;
    p.head_dim = 16;
    p.dtype = ElemType::F32;
    m.heads[0].type = HeadType::Dense;
    std::fill(m.bits.begin(), m.bits.end(), uint8_t(1));
    Rng r(9);
    for (int e = 0; e < 128 * 16; ++e) {
      q.push_back(q_value * float(r.normal()));
      k.push_back(k_value * float(r.normal()));
      v.push_back(float(r.normal()));
    }
  }
  AttentionInputs in() const { return {q.data(), k.data(), v.data(), nullptr}; }
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cpu_forward: finite Q/K whose scores overflow float32 are an error naming the query, not an empty row") {
  Case c(1e30f, 1e30f);
  std::string m = message_of([&] { cpu_forward<float>(c.p, c.m, c.in()); });
  CHECK(m.find("overflow float32") != std::string::npos);
  CHECK(m.find("[b=0, s=") != std::string::npos);
  CHECK(m.find("--f64") != std::string::npos);
  // the attention entry point (analyze's and run's CPU path) says the same
  CHECK_THROWS_AS(attention_forward(c.p, c.m, c.in()), UsageError);
  // float64 computes it; its LSE does not fit float32, which narrow_to_float32 refuses
  auto f = cpu_forward<double>(c.p, c.m, c.in());
  CHECK(std::isfinite(f.lse[0]));
  std::string n = message_of([&] { narrow_to_float32(f.lse, "LSE"); });
  CHECK(n.find("LSE") != std::string::npos);
  CHECK(n.find("does not fit float32") != std::string::npos);
  // the empty-row convention is untouched: a row with no kept block is O = 0, LSE = -inf
  Case e(1.f, 1.f);
  std::fill(e.m.bits.begin(), e.m.bits.end(), uint8_t(0));
  e.m.heads[0].type = HeadType::Sparse;
  auto z = cpu_forward<float>(e.p, e.m, e.in());
  CHECK(z.lse[0] == -std::numeric_limits<float>::infinity());
  CHECK(z.out[0] == 0.f);
  CHECK(narrow_to_float32(std::vector<double>{-INFINITY, 1.5}, "LSE")[0] == -INFINITY);
}

TEST_CASE("cpu_backward: a dO that makes the gradients overflow is an error naming the gradient") {
  Case c(1.f, 1.f);
  auto f = cpu_forward<float>(c.p, c.m, c.in());
  std::vector<float> dout(c.q.size(), 3e38f);
  std::string m = message_of([&] { cpu_backward<float>(c.p, c.m, c.in(), f, dout.data()); });
  CHECK((m.find("dQ") != std::string::npos || m.find("dK") != std::string::npos || m.find("dV") != std::string::npos));
  CHECK(m.find("overflowed float32") != std::string::npos);
  std::vector<float> small(c.q.size(), 0.5f);
  auto g = cpu_backward<float>(c.p, c.m, c.in(), f, small.data());
  for (float x : g.dq) REQUIRE(std::isfinite(x));
}

TEST_CASE("SiLU scores that overflow are reported, not taken for masked pairs") {
  Case c(1e30f, 1e30f);
  c.p.score = ScoreFn::Silu;
  c.p.silu_n = 128;
  CHECK_THROWS_AS(cpu_forward<float>(c.p, c.m, c.in()), UsageError);
}

TEST_CASE("AttentionProblem::validate: scale must be finite, > 0 and within float32, or 0 for 1/sqrt(D) (case 10)") {
  Case c(1.f, 1.f);
  for (double bad : {std::numeric_limits<double>::infinity(), std::nan(""), 1e39, -1.0, -0.5}) {
    c.p.scale = bad;
    std::string m = message_of([&] { c.p.validate(c.m); });
    CHECK(m.find("--scale") != std::string::npos);
  }
  for (double good : {0.0, 0.125, 3e38}) {
    c.p.scale = good;
    CHECK_NOTHROW(c.p.validate(c.m));
  }
}

TEST_CASE("cpu_forward: finite V whose weighted sum overflows float32 is an error naming an element of O") {
  // Small scores (weights near 1 before normalisation) and V = 2e38 everywhere: the unnormalised sum over
  // 64 keys of a block passes float32's 3.4e38, so O is Inf; the forward checks O row by row as it writes
  // it and then names the first element.
  Case c(0.01f, 0.01f);
  std::fill(c.v.begin(), c.v.end(), 2e38f);
  std::string m = message_of([&] { cpu_forward<float>(c.p, c.m, c.in()); });
  CHECK(m.find("O is Inf at [b=0, s=0, h=0, d=0]") != std::string::npos);
  CHECK(m.find("overflowed float32") != std::string::npos);
  // float64 holds the sum: every element is V (2e38 rounded to float32) up to rounding
  auto f = cpu_forward<double>(c.p, c.m, c.in());
  CHECK(f.out[5] == doctest::Approx(double(2e38f)).epsilon(1e-9));
}
