// GPU forward kernel against a float64 reference written in the test and against the GPU dense
// reference (cuBLAS), over a seeded sweep: shapes with tails, head dims 64/128, block sizes 64/128 on
// each axis, densities (0 gives empty rows), head types, causal, GQA/MQA, varlen, batch with mask
// batch 1 or B, bf16/f16, softmax and SiLU. The runner poisons O and LSE (NaN) before every run.
//
// Tolerances: bf16 keeps 8 mantissa bits (relative rounding 2^-9 ~ 2e-3 per element of Q, K, V, P and O),
// so O is compared by ||O - ref|| / ||ref|| <= 1e-2 (bf16) and 3e-3 (f16, 11 bits); and by
// FlashAttention's rule, the kernel's error may be at most 2x that of the dense GPU reference (same
// precision, P rounded to the dtype) plus 1e-3 of slack for the rounding of O itself. LSE is computed
// in fp32 from exact-to-dtype inputs: |LSE - ref| <= 2e-2 (bf16) / 5e-3 (f16), and -inf exactly where
// the reference row is empty.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/attention_fwd.h"
#include "kernels/attention_runner.h"
#include "kernels/dense_reference.h"
#include "kernels/mask_build.h"
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
  std::string variant;  // the kernel ("" = the default for the problem and GPU)
  int max_ctas = 0;     // sm90-ws: CTAs started (0 = one per SM)
  std::string name() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "B%ld q%ld kv%ld H%ld/%ld D%ld blk%ldx%ld %s%s%s%s d=%.2f %s types=%zu %s ctas=%d",
                  long(batch), long(q_len), long(kv_len), long(hq), long(hkv), long(d), long(bq), long(bkv),
                  causal ? "causal " : "", varlen ? "varlen " : "", silu ? "silu " : "", mask_batch_b ? "maskB " : "",
                  density, elem_type_name(dt), types.size(), variant.c_str(), max_ctas);
    return buf;
  }
};

void run_case(const Case& c, uint64_t seed, bool compare_dense = true) {
  CAPTURE(c.name());
  CAPTURE(seed);
  AttentionProblem p;
  p.batch = c.batch;
  p.q_len = c.q_len;
  p.kv_len = c.kv_len;
  p.heads_q = c.hq;
  p.heads_kv = c.hkv;
  p.head_dim = c.d;
  p.dtype = c.dt;
  if (c.silu) p.score = ScoreFn::Silu, p.silu_n = double(c.kv_len);
  if (c.varlen) {
    // Lengths drawn in [1, max]; one sequence may be the maximum, one short (tails everywhere).
    Rng r(seed ^ 0x5eed);
    p.cu_seqlens_q = {0};
    p.cu_seqlens_k = {0};
    for (int64_t b = 0; b < c.batch; ++b) {
      int64_t lq = b == 0 ? c.q_len : 1 + int64_t(r.below(uint64_t(c.q_len)));
      int64_t lk = b == 0 ? c.kv_len : 1 + int64_t(r.below(uint64_t(c.kv_len)));
      p.cu_seqlens_q.push_back(p.cu_seqlens_q.back() + int32_t(lq));
      p.cu_seqlens_k.push_back(p.cu_seqlens_k.back() + int32_t(lk));
    }
  }
  MaskShape ms{c.mask_batch_b ? c.batch : 1, c.hq, c.q_len, c.kv_len, c.bq, c.bkv};
  BlockMask m = random_mask(ms, c.causal, c.density, c.types, seed * 7 + 1);
  double sd = c.silu ? 1.0 : 1.0;
  auto q = random_tensor(size_t(p.total_q() * c.hq * c.d), c.dt, seed * 3 + 11, sd);
  auto k = random_tensor(size_t(p.total_k() * c.hkv * c.d), c.dt, seed * 3 + 12, sd);
  auto v = random_tensor(size_t(p.total_k() * c.hkv * c.d), c.dt, seed * 3 + 13, sd);
  AttentionInputs in{q.raw.data(), k.raw.data(), v.raw.data(), nullptr};

  AttentionOptions opt;
  opt.backend = Backend::Cuda, opt.kernel = c.variant, opt.max_ctas = c.max_ctas;
  cuda::AttentionRunner runner(p, m, in, opt);
  runner.launch();
  AttentionResult got = runner.result();
  Ref ref = reference_f64(p, m, q.vals, k.vals, v.vals);

  REQUIRE(got.out.size() == ref.out.size());
  REQUIRE(got.lse.size() == ref.lse.size());
  size_t nonfinite = 0;
  for (float x : got.out) nonfinite += !std::isfinite(x);
  CHECK_MESSAGE(nonfinite == 0, "unwritten (poisoned) or non-finite O elements: " << nonfinite);
  double err = rel_l2(got.out, ref.out);
  double tol = c.dt == ElemType::BF16 ? 1e-2 : 3e-3;
  CHECK_MESSAGE(err <= tol, "relative L2 error of O " << err << " > " << tol);
  double lse_tol = c.dt == ElemType::BF16 ? 2e-2 : 5e-3;
  size_t lse_bad = 0, first_bad = size_t(-1);
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    bool ok = std::isinf(ref.lse[i]) ? (std::isinf(got.lse[i]) && got.lse[i] < 0)
                                     : std::fabs(double(got.lse[i]) - ref.lse[i]) <= lse_tol;
    if (!ok && lse_bad++ == 0) first_bad = i;
  }
  CHECK_MESSAGE(lse_bad == 0, lse_bad << " LSE mismatches, first at " << first_bad << ": got "
                                      << (first_bad < got.lse.size() ? got.lse[first_bad] : 0.f) << " want "
                                      << (first_bad < ref.lse.size() ? ref.lse[first_bad] : 0.0));
  if (compare_dense) {
    AttentionResult dense = cuda::gpu_dense_reference(p, m, in);
    double derr = rel_l2(dense.out, ref.out);
    CHECK_MESSAGE(err <= 2 * derr + 1e-3, "kernel error " << err << " > 2x dense GPU reference error " << derr
                                                          << " + 1e-3");
  }
}

}  // namespace

TEST_CASE("gpu present") { REQUIRE(cuda::gpu_present()); }

namespace {
// A sweep runs its cases with kernel v ("" = the default). A named kernel takes only some block sizes:
// the case is moved to the nearest it takes (sm90-ws: block_q 64 with any block_kv, block_q 128 with a
// multiple of 128; sm80: block_q 128), so that every sweep still covers tails, causal rows, head types,
// GQA and varlen with it.
struct Sweep {
  std::string kernel;
  int max_ctas = 0;
  void fit(Case& c) const {
    c.variant = kernel, c.max_ctas = max_ctas;
    if (kernel == "sm80") c.bq = 128, c.d = std::min<int64_t>(c.d, 128);  // sm80 runs head dims to 128
    if (kernel == "sm90-ws" && c.d == 256) c.bq = 128;  // 128-row items and 64-key tiles at D = 256
    if (kernel == "sm90-ws" && c.d <= 128 && c.bq == 128 && c.bkv % 128 != 0) c.bkv = 128;
  }
};
bool is_sm90() { return cuda::device_cc() == 90; }
void sweep_basic(const Sweep& v);
void sweep_causal_tails(const Sweep& v);
void sweep_heads(const Sweep& v);
void sweep_varlen(const Sweep& v);
void sweep_medium(const Sweep& v);
void sweep_all(const Sweep& v, bool medium) {
  sweep_basic(v);
  sweep_causal_tails(v);
  sweep_heads(v);
  sweep_varlen(v);
  if (medium) sweep_medium(v);
}
}  // namespace

TEST_CASE("forward small: basic shapes, both dtypes, head dims, block sizes") { sweep_basic({}); }
TEST_CASE("forward small: causal, tails, q_len != kv_len, empty rows") { sweep_causal_tails({}); }
TEST_CASE("forward small: head types, GQA/MQA, batches, mask batch") { sweep_heads({}); }
TEST_CASE("forward small: varlen") { sweep_varlen({}); }
TEST_CASE("forward medium: seeded random sweep against the GPU dense reference and float64") { sweep_medium({}); }

// Each kernel by name through every sweep (the default above mixes them by problem). BSATTN_TEST_KERNEL
// runs one of them, BSATTN_TEST_SMALL leaves out the medium sweep (scripts/gpu-check.sh sets both under
// compute-sanitizer).
TEST_CASE("forward kernels: each kernel over the same sweeps") {
  std::vector<std::string> kernels;
  if (const char* one = std::getenv("BSATTN_TEST_KERNEL")) {
    kernels.push_back(one);
  } else {
    kernels = cuda::AttentionRunner::kernel_variants();
  }
  const bool medium = !std::getenv("BSATTN_TEST_SMALL");
  for (auto& k : kernels) {
    CAPTURE(k);
    if (k == "sm90-ws" && !is_sm90()) {
      MESSAGE("not an sm_90 GPU: sm90-ws is not run");
      continue;
    }
    sweep_all(Sweep{k, 0}, medium);
    if (k == "sm90-ws") {
      // Two CTAs take every item: the item slots, Q buffers and K/V ring wrap many times, across empty
      // rows, head types, tails and sequences.
      sweep_all(Sweep{k, 2}, false);
    }
  }
}

namespace {

void sweep_basic(const Sweep& v) {
  uint64_t seed = 1;
  for (ElemType dt : {ElemType::BF16, ElemType::F16})
    for (int64_t d : {64, 128, 256})
      for (int64_t bq : {64, 128})
        for (int64_t bkv : {64, 128}) {
          Case c;
          c.dt = dt, c.d = d, c.bq = bq, c.bkv = bkv, c.q_len = 320, c.kv_len = 448, c.density = 0.5;
          v.fit(c);
          run_case(c, seed++);
        }
}

void sweep_causal_tails(const Sweep& v) {
  uint64_t seed = 100;
  for (bool causal : {false, true})
    for (auto [lq, lk] : std::vector<std::pair<int64_t, int64_t>>{{257, 257}, {200, 450}, {450, 200}, {1, 130}, {129, 1}})
      for (double dens : {0.0, 0.3, 1.0})
        for (int64_t d : {64, 256}) {  // D=256: block_q 128 on sm90-ws (one Q buffer, O from registers)
          Case c;
          c.causal = causal, c.q_len = lq, c.kv_len = lk, c.density = dens, c.d = d, c.bkv = 128;
          c.bq = d == 256 ? 128 : 64;
          v.fit(c);
          run_case(c, seed++);
        }
}

void sweep_heads(const Sweep& v) {
  uint64_t seed = 200;
  std::vector<HeadType> mix = {HeadType::Dense, HeadType::Sparse, HeadType::Streaming, HeadType::Sparse};
  for (auto [hq, hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {4, 2}, {4, 1}})
    for (bool causal : {false, true})
      for (bool mb : {false, true}) {
        Case c;
        c.batch = 2, c.hq = hq, c.hkv = hkv, c.types = mix, c.causal = causal, c.mask_batch_b = mb;
        c.q_len = 384, c.kv_len = 520, c.d = 128, c.density = 0.4;
        v.fit(c);
        run_case(c, seed++);
        if (hq / hkv == 2) {  // head dim 256 (one Q buffer per CTA on sm90-ws) over the same rows
          c.d = 256, c.dt = mb ? ElemType::F16 : ElemType::BF16;
          v.fit(c);
          run_case(c, seed++);
        }
      }
}

void sweep_varlen(const Sweep& v) {
  uint64_t seed = 300;
  std::vector<HeadType> mix = {HeadType::Sparse, HeadType::Dense, HeadType::Streaming};
  for (bool causal : {false, true})
    for (int64_t bq : {64, 128}) {
      Case c;
      c.batch = 3, c.varlen = true, c.hq = 3, c.hkv = 1, c.types = mix, c.causal = causal, c.bq = bq, c.bkv = 64;
      c.q_len = 300, c.kv_len = 333, c.d = 64, c.density = 0.5;
      v.fit(c);
      run_case(c, seed++);
    }
}

TEST_CASE("forward small: SiLU (HSTU)") {
  // Blocks 128 and 64: sm90-ws on Hopper (128-row items, or 64-row items with 64-key tiles; sm80-general
  // elsewhere); by name: sm80-general.
  const std::vector<HeadType> mix = {HeadType::Dense, HeadType::Sparse, HeadType::Streaming, HeadType::Sparse};
  uint64_t seed = 400;
  for (const char* kernel : {"", "sm80-general"})
    for (bool causal : {false, true})
      for (int64_t d : {64, 128})
      for (int64_t bq : {128, 64}) {
        Case c;
        c.silu = true, c.causal = causal, c.d = d, c.q_len = 300, c.kv_len = 300, c.density = 0.6;
        c.bq = bq, c.bkv = bq == 64 ? (causal ? 64 : 128) : 128;  // block_q 64 with block_kv 64 and 128
        c.variant = kernel;
        run_case(c, seed++);
        // GQA, head types, q_len != kv_len, f16, longer rows (several K/V tiles per item, both halves
        // of the ring), a mask batch
        c.hq = 4, c.hkv = 2, c.types = mix, c.q_len = 700, c.kv_len = 900, c.dt = ElemType::F16, c.batch = 2;
        c.mask_batch_b = true;
        run_case(c, seed++);
        // varlen with tails
        Case v;
        v.silu = true, v.causal = causal, v.d = d, v.batch = 3, v.varlen = true, v.q_len = 500, v.kv_len = 500;
        v.hq = 2, v.hkv = 1, v.density = 0.5, v.variant = kernel, v.bq = bq, v.bkv = c.bkv;
        run_case(v, seed++);
      }
  if (is_sm90()) {  // the default for SiLU at blocks 128 and 64 on Hopper is the Hopper loop
    AttentionProblem p;
    p.q_len = p.kv_len = 256, p.heads_q = p.heads_kv = 2, p.head_dim = 128, p.score = ScoreFn::Silu, p.silu_n = 256;
    std::vector<uint16_t> x(256 * 2 * 128, 0x3f80);
    AttentionInputs in{x.data(), x.data(), x.data(), nullptr};
    for (int64_t b : {128, 64}) {
      BlockMask m(MaskShape{1, 2, 256, 256, b, b});
      CHECK(cuda::AttentionRunner(p, m, in).kernel_name() == "sm90-ws");
    }
  }
}

TEST_CASE("forward small: head dims other than 64 and 128 (256 natively, the others padded)") {
  const std::vector<HeadType> mix = {HeadType::Dense, HeadType::Sparse, HeadType::Streaming, HeadType::Sparse};
  uint64_t seed = 500;
  for (int64_t d : {8, 32, 80, 96, 160, 192, 256})
    for (bool causal : {false, true}) {
      Case c;
      c.d = d, c.causal = causal, c.q_len = 333, c.kv_len = 333, c.hq = 4, c.hkv = 2, c.types = mix;
      c.dt = d % 64 == 32 ? ElemType::F16 : ElemType::BF16;
      run_case(c, seed++);
      c.bq = 64, c.bkv = 64;
      run_case(c, seed++);
      Case v;  // varlen, SiLU
      v.d = d, v.causal = causal, v.batch = 3, v.varlen = true, v.q_len = 400, v.kv_len = 400, v.silu = true;
      run_case(v, seed++);
    }
}

void sweep_medium(const Sweep& v) {
  // Larger shapes where the float64 reference still takes well under a second per case.
  Rng r(2026);
  for (int n = 0; n < 12; ++n) {
    Case c;
    c.dt = r.below(2) ? ElemType::BF16 : ElemType::F16;
    c.d = r.below(2) ? 64 : 128;
    c.bq = r.below(2) ? 64 : 128;
    c.bkv = r.below(2) ? 64 : 128;
    c.q_len = 256 + int64_t(r.below(1024));
    c.kv_len = r.below(2) ? c.q_len : 256 + int64_t(r.below(1024));
    c.hq = 4;
    c.hkv = int64_t(1) << r.below(3);
    c.causal = r.below(2);
    c.density = 0.1 + 0.8 * r.uniform();
    c.types = {HeadType::Sparse, HeadType::Streaming, HeadType::Sparse, HeadType::Dense};
    c.batch = 1 + int64_t(r.below(2));
    c.varlen = c.batch > 1 && r.below(2);
    v.fit(c);
    run_case(c, 1000 + uint64_t(n));
  }
}

}  // namespace

TEST_CASE("forward: unsupported shapes are usage errors") {
  AttentionProblem p;
  p.q_len = p.kv_len = 128;
  p.head_dim = 264;
  BlockMask m(MaskShape{1, 1, 128, 128, 128, 128});
  std::vector<uint16_t> x(128 * 264, 0x3f80);
  AttentionInputs in{x.data(), x.data(), x.data(), nullptr};
  CHECK_THROWS_AS(cuda::AttentionRunner(p, m, in), UsageError);
  p.head_dim = 64;
  BlockMask m2(MaskShape{1, 1, 128, 128, 32, 128});
  CHECK_THROWS_AS(cuda::AttentionRunner(p, m2, in), UsageError);
  CHECK_THROWS_AS(cuda::AttentionRunner(p, m, in, "no-such-kernel"), UsageError);
  // a named kernel that cannot run the problem is refused before anything is uploaded
  BlockMask m3(MaskShape{1, 1, 128, 128, 128, 64});
  CHECK_THROWS_AS(cuda::AttentionRunner(p, m3, in, "sm90-ws"), UsageError);
}

TEST_CASE("mask build: GPU row and column CSR equal the CPU ones") {
  uint64_t seed = 7;
  for (auto [lq, lk, bq, bkv] : std::vector<std::array<int64_t, 4>>{{1000, 3000, 64, 128}, {4096, 4096, 128, 128}, {130, 70, 64, 64}})
    for (bool causal : {false, true}) {
      BlockMask m = random_mask(MaskShape{2, 3, lq, lk, bq, bkv}, causal, 0.37,
                                {HeadType::Sparse, HeadType::Dense, HeadType::Streaming}, seed++);
      BlockCSR a = cuda::gpu_row_csr(m), b = row_csr(m);
      CHECK(a.counts_shape == b.counts_shape);
      CHECK(a.num_blocks == b.num_blocks);
      CHECK(a.indices == b.indices);
      BlockCSR ca = cuda::gpu_column_csr(m), cb = column_csr(m);
      CHECK(ca.num_blocks == cb.num_blocks);
      CHECK(ca.indices == cb.indices);
    }
}

TEST_CASE("mask build: adaptive selection equals a float64 selection on the host") {
  // Pooled means and scores in float64; the rows' top-k sets (mass tiny: exactly top_k blocks, plus the
  // diagonal) must agree. Random data: gaps between neighbouring scores are far above fp32 rounding.
  for (bool causal : {false, true}) {
    AttentionProblem p;
    p.batch = 1, p.q_len = 1000, p.kv_len = 1000, p.heads_q = 2, p.heads_kv = 1, p.head_dim = 64;
    auto q = random_tensor(size_t(1000 * 2 * 64), ElemType::BF16, 91);
    auto k = random_tensor(size_t(1000 * 1 * 64), ElemType::BF16, 92);
    // Give blocks distinct directions so pooling keeps signal.
    AttentionInputs in{q.raw.data(), k.raw.data(), k.raw.data(), nullptr};
    cuda::AdaptiveSelectConfig cfg;
    cfg.block_q = cfg.block_kv = 64;
    cfg.top_k = 3;
    cfg.mass = 1e-6;
    cfg.causal = causal;
    cuda::AdaptiveSelectTiming t;
    BlockMask m = cuda::gpu_adaptive_mask(p, in, cfg, &t);
    int64_t M = m.shape.mq();
    auto g = m.geometry();
    int mismatched_rows = 0;
    for (int64_t h = 0; h < 2; ++h) {
      std::vector<std::vector<double>> pq(size_t(M), std::vector<double>(64)), pk = pq;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t x = 0; x < 64; ++x) {
          double a = 0, b = 0;
          for (int64_t t2 = g.q_begin(i); t2 < g.q_end(i); ++t2) {
            a += q.vals[size_t((t2 * 2 + h) * 64 + x)];
            b += k.vals[size_t(t2 * 64 + x)];
          }
          pq[i][x] = a / double(g.q_end(i) - g.q_begin(i));
          pk[i][x] = b / double(g.q_end(i) - g.q_begin(i));
        }
      for (int64_t i = 0; i < M; ++i) {
        int64_t vis = causal ? i + 1 : M;
        std::vector<std::pair<double, int64_t>> sc;
        for (int64_t j = 0; j < vis; ++j) {
          double s = 0;
          for (int64_t x = 0; x < 64; ++x) s += pq[i][x] * pk[j][x];
          sc.push_back({s, j});
        }
        std::sort(sc.begin(), sc.end(), [](auto& a, auto& b) { return a.first > b.first; });
        std::vector<uint8_t> want(size_t(M), 0);
        for (int64_t r2 = 0; r2 < std::min<int64_t>(3, vis); ++r2) want[size_t(sc[r2].second)] = 1;
        want[size_t(causal ? i : i)] = 1;  // diagonal (block sizes equal)
        if (!std::equal(want.begin(), want.end(), m.head_bits(0, h) + i * M)) ++mismatched_rows;
      }
    }
    CHECK(mismatched_rows == 0);
    CHECK(t.total_ms > 0);
  }
}
