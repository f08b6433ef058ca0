// GPU backward (dQ, dK, dV) against a float64 backward written in the test (gpu_test_util.h), over the
// feature matrix: bf16/f16, head dims 64/128, blocks 64/128 (and a block_kv of 192), causal
// (bottom-right), tails, q_len != kv_len, empty rows (density 0), head types dense/sparse/streaming,
// GQA/MQA, batches with mask batch 1 or B, varlen, SiLU (HSTU). Each case runs the GPU forward, then the
// backward on the resident problem twice: dQ by fp32 atomics, and --deterministic (dQ by its own pass).
// The runner poisons dQ, dK, dV (NaN) before each backward, so an unwritten element fails.
//
// Tolerances, per gradient, relative L2 over all elements (||got - ref|| / ||ref||):
//   - at most 2e-2 (bf16) / 5e-3 (f16): P and dS are rounded to the 16-bit type before their matrix
//     products (2^-9 / 2^-11 relative per element), and dS = P (dP - D_i) subtracts two nearly equal
//     numbers, so gradients carry a few times the forward's 1e-2 / 3e-3;
//   - and, FlashAttention's rule, at most 2x the error of a float64 reference that rounds O (for D_i), P
//     and dS to the same 16-bit type where the kernels do, plus 1e-3 for the fp32 accumulation orders.
// A failure names the case, the gradient, the error, the tolerance and the worst element with its
// position (row, head, d), the kernel's value and the reference's.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "kernels/attention_runner.h"
#include "lib/attention.h"
#include "lib/error.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace gputest;

namespace {

struct Case {
  int64_t batch = 1, q_len = 256, kv_len = 256, hq = 2, hkv = 2, d = 64, bq = 128, bkv = 128;
  bool causal = false, varlen = false, silu = false, mask_batch_b = false;
  double density = 0.5;
  ElemType dt = ElemType::BF16;
  std::vector<HeadType> types = {HeadType::Sparse};
  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "B%ld q%ld kv%ld H%ld/%ld D%ld blk%ldx%ld %s%s%s%sd=%.2f %s types=%zu", long(batch),
                  long(q_len), long(kv_len), long(hq), long(hkv), long(d), long(bq), long(bkv), causal ? "causal " : "",
                  varlen ? "varlen " : "", silu ? "silu " : "", mask_batch_b ? "maskB " : "", density,
                  elem_type_name(dt), types.size());
    return buf;
  }
};

// The worst element of one gradient and the verdict, as one line.
struct Verdict {
  bool ok = true;
  std::string line;
};
Verdict judge(const char* what, const std::vector<float>& got, const std::vector<double>& ref,
              const std::vector<double>& ref_lp, int64_t heads, int64_t d, double tol) {
  Verdict v;
  size_t nonfinite = 0, worst = 0;
  double worst_diff = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      if (nonfinite++ == 0) worst = i, worst_diff = INFINITY;
      continue;
    }
    const double diff = std::fabs(double(got[i]) - ref[i]);
    if (worst_diff < INFINITY && diff > worst_diff) worst_diff = diff, worst = i;
  }
  const double err = rel_l2(got, ref);
  std::vector<float> lp(ref_lp.begin(), ref_lp.end());
  const double err_lp = rel_l2(lp, ref);
  const double rule = 2 * err_lp + 1e-3;
  v.ok = nonfinite == 0 && err <= tol && err <= rule;
  std::ostringstream o;
  o << what << ": rel L2 " << err << " (tolerance " << tol << "; 2x same-precision reference " << err_lp
    << " + 1e-3 = " << rule << ")";
  if (nonfinite) o << ", " << nonfinite << " non-finite (unwritten) elements";
  if (!ref.empty()) {
    const int64_t row = int64_t(worst) / (heads * d), h = int64_t(worst) / d % heads, x = int64_t(worst) % d;
    o << "; worst at [row " << row << ", head " << h << ", d " << x << "]: got " << got[worst] << " want "
      << ref[worst];
  }
  v.line = o.str();
  return v;
}

struct Prepared {
  AttentionProblem p;
  BlockMask m;
  Tensor16 q, k, v, dout;
  std::vector<float> dout_f32;
};

Prepared prepare(const Case& c, uint64_t seed) {
  Prepared r;
  AttentionProblem& p = r.p;
  p.batch = c.batch, p.q_len = c.q_len, p.kv_len = c.kv_len, p.heads_q = c.hq, p.heads_kv = c.hkv, p.head_dim = c.d;
  p.dtype = c.dt;
  if (c.silu) p.score = ScoreFn::Silu, p.silu_n = double(c.kv_len);
  if (c.varlen) {
    Rng rr(seed ^ 0x5eed);
    p.cu_seqlens_q = {0};
    p.cu_seqlens_k = {0};
    for (int64_t b = 0; b < c.batch; ++b) {
      int64_t lq = b == 0 ? c.q_len : 1 + int64_t(rr.below(uint64_t(c.q_len)));
      int64_t lk = b == 0 ? c.kv_len : 1 + int64_t(rr.below(uint64_t(c.kv_len)));
      p.cu_seqlens_q.push_back(p.cu_seqlens_q.back() + int32_t(lq));
      p.cu_seqlens_k.push_back(p.cu_seqlens_k.back() + int32_t(lk));
    }
  }
  MaskShape ms{c.mask_batch_b ? c.batch : 1, c.hq, c.q_len, c.kv_len, c.bq, c.bkv};
  r.m = random_mask(ms, c.causal, c.density, c.types, seed * 7 + 1);
  r.q = random_tensor(size_t(p.total_q() * c.hq * c.d), c.dt, seed * 3 + 11);
  r.k = random_tensor(size_t(p.total_k() * c.hkv * c.d), c.dt, seed * 3 + 12);
  r.v = random_tensor(size_t(p.total_k() * c.hkv * c.d), c.dt, seed * 3 + 13);
  r.dout = random_tensor(size_t(p.total_q() * c.hq * c.d), c.dt, seed * 3 + 14);
  r.dout_f32.assign(r.dout.vals.begin(), r.dout.vals.end());  // exact in the dtype: the kernels read the same
  return r;
}

// Runs case c: the GPU forward, then the backward with atomics and deterministic, each against the
// float64 references, with the default backward kernel and, where that is sm90, with sm80 too.
void run_case(const Case& c, uint64_t seed) {
  CAPTURE(c.name());
  CAPTURE(seed);
  Prepared x = prepare(c, seed);
  const AttentionProblem& p = x.p;
  AttentionInputs in{x.q.raw.data(), x.k.raw.data(), x.v.raw.data(), nullptr};
  const Ref f = reference_f64(p, x.m, x.q.vals, x.k.vals, x.v.vals);
  const RefGrads ref = reference_backward_f64(p, x.m, x.q.vals, x.k.vals, x.v.vals, x.dout.vals, f, ElemType::F32);
  const RefGrads lp = reference_backward_f64(p, x.m, x.q.vals, x.k.vals, x.v.vals, x.dout.vals, f, c.dt);
  const double tol = c.dt == ElemType::BF16 ? 2e-2 : 5e-3;
  for (const char* kernel : {"", "sm80"}) {
    AttentionOptions opt;
    opt.backend = Backend::Cuda;
    opt.bwd_kernel = kernel;
    cuda::AttentionRunner runner(p, x.m, in, opt);
    runner.launch();  // the GPU forward: its O and LSE are what the backward reads
    for (bool det : {false, true}) {
      runner.prepare_backward(x.dout_f32.data(), det);
      runner.launch_backward();
      const AttentionGradients g = runner.gradients();
      REQUIRE(g.dq.size() == ref.dq.size());
      REQUIRE(g.dk.size() == ref.dk.size());
      REQUIRE(g.dv.size() == ref.dv.size());
      const Verdict vq = judge("dQ", g.dq, ref.dq, lp.dq, c.hq, c.d, tol);
      const Verdict vk = judge("dK", g.dk, ref.dk, lp.dk, c.hkv, c.d, tol);
      const Verdict vv = judge("dV", g.dv, ref.dv, lp.dv, c.hkv, c.d, tol);
      const std::string mode = runner.backward_name();
      CHECK_MESSAGE(vq.ok, c.name() << " [" << mode << "] " << vq.line);
      CHECK_MESSAGE(vk.ok, c.name() << " [" << mode << "] " << vk.line);
      CHECK_MESSAGE(vv.ok, c.name() << " [" << mode << "] " << vv.line);
      if (std::getenv("BSATTN_TEST_VERBOSE"))
        MESSAGE(c.name() << " [" << mode << "] " << vq.line << " | " << vk.line << " | " << vv.line);
    }
    if (runner.backward_name().find("sm90") == std::string::npos) break;  // the default was sm80 already
  }
}

}  // namespace

TEST_CASE("backward: gpu present") { REQUIRE(cuda::gpu_present()); }

TEST_CASE("backward small: both dtypes, head dims 64/128, blocks 64/128 on each axis") {
  uint64_t seed = 1;
  for (ElemType dt : {ElemType::BF16, ElemType::F16})
    for (int64_t d : {64, 128})
      for (int64_t bq : {64, 128})
        for (int64_t bkv : {64, 128}) {
          Case c;
          c.dt = dt, c.d = d, c.bq = bq, c.bkv = bkv, c.q_len = 320, c.kv_len = 448, c.density = 0.5;
          run_case(c, seed++);
        }
  Case c;  // a block_kv that is a multiple of 64 other than 64 and 128
  c.bq = 64, c.bkv = 192, c.q_len = 300, c.kv_len = 700, c.causal = true;
  run_case(c, seed++);
}

TEST_CASE("backward small: causal, tails, q_len != kv_len, empty rows") {
  uint64_t seed = 100;
  for (bool causal : {false, true})
    for (auto [lq, lk] : std::vector<std::pair<int64_t, int64_t>>{{257, 257}, {200, 450}, {450, 200}, {1, 130}, {129, 1}})
      for (double dens : {0.0, 0.3, 1.0}) {
        Case c;
        c.causal = causal, c.q_len = lq, c.kv_len = lk, c.density = dens, c.d = 64, c.bq = 64, c.bkv = 128;
        run_case(c, seed++);
      }
}

TEST_CASE("backward small: head types, GQA/MQA (dK, dV summed over the group), batches, mask batch") {
  uint64_t seed = 200;
  std::vector<HeadType> mix = {HeadType::Dense, HeadType::Sparse, HeadType::Streaming, HeadType::Sparse};
  for (auto [hq, hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {4, 2}, {4, 1}})
    for (bool causal : {false, true})
      for (bool mb : {false, true}) {
        Case c;
        c.batch = 2, c.hq = hq, c.hkv = hkv, c.types = mix, c.causal = causal, c.mask_batch_b = mb;
        c.q_len = 384, c.kv_len = 520, c.d = 128, c.density = 0.4;
        run_case(c, seed++);
      }
}

TEST_CASE("backward small: varlen") {
  uint64_t seed = 300;
  std::vector<HeadType> mix = {HeadType::Sparse, HeadType::Dense, HeadType::Streaming};
  for (bool causal : {false, true})
    for (int64_t bq : {64, 128})
      for (int64_t bkv : {64, 128}) {  // 128: sm90 on sm_90 (its TMA boxes cross sequence ends)
        Case c;
        c.batch = 3, c.varlen = true, c.hq = 3, c.hkv = 1, c.types = mix, c.causal = causal, c.bq = bq, c.bkv = bkv;
        c.q_len = 300, c.kv_len = 333, c.d = bkv == 128 ? 128 : 64, c.density = 0.5;
        run_case(c, seed++);
      }
}

TEST_CASE("backward small: SiLU (HSTU)") {
  uint64_t seed = 400;
  for (bool causal : {false, true})
    for (int64_t d : {64, 128}) {
      Case c;
      c.silu = true, c.causal = causal, c.d = d, c.q_len = 300, c.kv_len = 300, c.density = 0.6;
      c.types = {HeadType::Sparse, HeadType::Streaming};
      run_case(c, seed++);
    }
}

TEST_CASE("backward small: head dims other than 64 and 128 (padded to them)") {
  uint64_t seed = 450;
  for (int64_t d : {16, 40, 96, 112})
    for (bool causal : {false, true}) {
      Case c;
      c.d = d, c.causal = causal, c.q_len = 300, c.kv_len = 300, c.hq = 4, c.hkv = 2, c.density = 0.5;
      c.types = {HeadType::Sparse, HeadType::Dense, HeadType::Streaming, HeadType::Sparse};
      run_case(c, seed++);
      c.bq = 64, c.bkv = 64, c.dt = ElemType::F16;
      run_case(c, seed++);
    }
  Case v;
  v.d = 96, v.batch = 3, v.varlen = true, v.q_len = 300, v.kv_len = 333, v.hq = 3, v.hkv = 1, v.causal = true;
  run_case(v, seed++);
}

TEST_CASE("backward: head dims above 128 are refused with one line, before any GPU work") {
  AttentionProblem p;
  p.q_len = p.kv_len = 128, p.head_dim = 256;
  BlockMask m(MaskShape{1, 1, 128, 128, 128, 128});
  AttentionOptions opt;
  opt.backend = Backend::Cuda;
  CHECK_THROWS_AS(cuda::AttentionRunner::check_backward_supported(p, m, opt), UsageError);
  p.head_dim = 96;
  CHECK_NOTHROW(cuda::AttentionRunner::check_backward_supported(p, m, opt));
}

TEST_CASE("backward medium: seeded random shapes") {
  Rng r(2027);
  for (int n = 0; n < 8; ++n) {
    Case c;
    c.dt = r.below(2) ? ElemType::BF16 : ElemType::F16;
    c.d = r.below(2) ? 64 : 128;
    c.bq = r.below(2) ? 64 : 128;
    c.bkv = r.below(2) ? 64 : 128;
    c.q_len = 256 + int64_t(r.below(768));
    c.kv_len = r.below(2) ? c.q_len : 256 + int64_t(r.below(768));
    c.hq = 4;
    c.hkv = int64_t(1) << r.below(3);
    c.causal = r.below(2);
    c.density = 0.1 + 0.8 * r.uniform();
    c.types = {HeadType::Sparse, HeadType::Streaming, HeadType::Sparse, HeadType::Dense};
    c.batch = 1 + int64_t(r.below(2));
    c.varlen = c.batch > 1 && r.below(2);
    c.silu = r.below(4) == 0;
    run_case(c, 2000 + uint64_t(n));
  }
}

TEST_CASE("backward deterministic: three runs give bit-identical dQ, dK, dV") {
  Case c;
  c.batch = 2, c.hq = 4, c.hkv = 1, c.q_len = 700, c.kv_len = 900, c.d = 128, c.causal = true, c.density = 0.6;
  c.types = {HeadType::Sparse, HeadType::Dense, HeadType::Streaming, HeadType::Sparse};
  CAPTURE(c.name());
  Prepared x = prepare(c, 77);
  AttentionInputs in{x.q.raw.data(), x.k.raw.data(), x.v.raw.data(), nullptr};
  AttentionOptions opt;
  opt.backend = Backend::Cuda;
  cuda::AttentionRunner runner(x.p, x.m, in, opt);
  runner.launch();
  runner.prepare_backward(x.dout_f32.data(), true);
  std::vector<AttentionGradients> runs;
  for (int i = 0; i < 3; ++i) {
    runner.launch_backward();
    runs.push_back(runner.gradients());
  }
  for (int i = 1; i < 3; ++i) {
    CHECK_MESSAGE(std::memcmp(runs[i].dq.data(), runs[0].dq.data(), runs[0].dq.size() * 4) == 0, "dQ of run " << i);
    CHECK_MESSAGE(std::memcmp(runs[i].dk.data(), runs[0].dk.data(), runs[0].dk.size() * 4) == 0, "dK of run " << i);
    CHECK_MESSAGE(std::memcmp(runs[i].dv.data(), runs[0].dv.data(), runs[0].dv.size() * 4) == 0, "dV of run " << i);
  }
}

TEST_CASE("backward through the library: attention_backward on cuda agrees with the CPU reference backend") {
  Case c;
  c.hq = 4, c.hkv = 2, c.q_len = 300, c.kv_len = 260, c.causal = true, c.density = 0.5, c.bq = 64, c.bkv = 64;
  c.types = {HeadType::Sparse, HeadType::Streaming};
  CAPTURE(c.name());
  Prepared x = prepare(c, 91);
  AttentionInputs in{x.q.raw.data(), x.k.raw.data(), x.v.raw.data(), nullptr};
  AttentionOptions gpu;
  gpu.backend = Backend::Cuda;
  gpu.deterministic = true;
  const AttentionResult f = attention_forward(x.p, x.m, in, gpu);
  const AttentionGradients g = attention_backward(x.p, x.m, in, f, x.dout_f32.data(), gpu);
  const AttentionGradients cpu = attention_backward(x.p, x.m, in, f, x.dout_f32.data(), AttentionOptions{});
  auto as_double = [](const std::vector<float>& a) { return std::vector<double>(a.begin(), a.end()); };
  CHECK_MESSAGE(rel_l2(g.dq, as_double(cpu.dq)) <= 2e-2, "dQ " << rel_l2(g.dq, as_double(cpu.dq)));
  CHECK_MESSAGE(rel_l2(g.dk, as_double(cpu.dk)) <= 2e-2, "dK " << rel_l2(g.dk, as_double(cpu.dk)));
  CHECK_MESSAGE(rel_l2(g.dv, as_double(cpu.dv)) <= 2e-2, "dV " << rel_l2(g.dv, as_double(cpu.dv)));
  // What the backward cannot run is refused before any upload.
  AttentionProblem p96 = x.p;
  p96.head_dim = 96;
  CHECK_THROWS_AS(attention_backward(p96, x.m, in, f, x.dout_f32.data(), gpu), UsageError);
}
