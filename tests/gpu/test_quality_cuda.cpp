// analyze --backend cuda (gpu_evaluate_mask of lib/backend.h: the registered
// kernels/quality_cuda.h) against the CPU quality report (lib/quality/quality.h) on the same
// bf16/f16-exact inputs: per-head density equal, recall (exp of the LSE difference on the GPU, an
// online float64 log-sum-exp over S x S scores on the CPU) within 2e-3 on the mean and 1e-2 on the
// worst row, and the sparse-vs-dense output error within 1.5e-2 absolute (both GPU passes round P
// to 16 bits: ~4e-3 relative each). Both dense paths (cuBLAS reference, fused kernel with dense
// heads) are checked; the masks drop enough mass (error > 0.05) that the comparisons are not
// trivial.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "lib/backend.h"
#include "lib/error.h"
#include "lib/quality/quality.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace gputest;

namespace {

struct QCase {
  int64_t batch, len, heads, d, block;
  bool causal;
  ElemType dt;
  std::vector<HeadType> types;
};

void check_case(const QCase& c, uint64_t seed) {
  CAPTURE(c.len);
  CAPTURE(c.d);
  CAPTURE(c.block);
  CAPTURE(c.causal);
  CAPTURE(seed);
  AttentionProblem p;
  p.batch = c.batch;
  p.q_len = p.kv_len = c.len;
  p.heads_q = p.heads_kv = c.heads;
  p.head_dim = c.d;
  p.dtype = c.dt;
  MaskShape ms{1, c.heads, c.len, c.len, c.block, c.block};
  BlockMask m = random_mask(ms, c.causal, 0.4, c.types, seed * 5 + 3);
  const size_t n = size_t(c.batch * c.len * c.heads * c.d);
  auto q = random_tensor(n, c.dt, seed * 3 + 1), k = random_tensor(n, c.dt, seed * 3 + 2), v = random_tensor(n, c.dt, seed * 3 + 3);
  std::vector<float> qf(q.vals.begin(), q.vals.end()), kf(k.vals.begin(), k.vals.end()), vf(v.vals.begin(), v.vals.end());
  QualityReport cpu = evaluate_mask(p, m, qf.data(), kf.data(), vf.data());
  REQUIRE(cpu.error.rel_l2 > 0.05);  // the mask drops mass: the error comparison below means something

  AttentionInputs in{q.raw.data(), k.raw.data(), v.raw.data(), nullptr};
  for (size_t limit : {size_t(8) << 30, size_t(0)}) {
    GpuQualityOptions o;
    o.max_dense_reference_bytes = limit;
    GpuQuality g = gpu_evaluate_mask(p, m, in, o);
    CAPTURE(g.dense_path);
    CHECK(g.dense_path == (limit ? "cublas-reference" : "fused-dense"));
    REQUIRE(g.report.heads.size() == cpu.heads.size());
    for (size_t h = 0; h < cpu.heads.size(); ++h) {
      CAPTURE(h);
      CHECK(g.report.heads[h].density == cpu.heads[h].density);
      CHECK(std::fabs(g.report.heads[h].recall_mean - cpu.heads[h].recall_mean) <= 2e-3);
      CHECK(std::fabs(g.report.heads[h].recall_min - cpu.heads[h].recall_min) <= 1e-2);
      CHECK(std::fabs(g.report.heads[h].error.rel_l2 - cpu.heads[h].error.rel_l2) <= 1.5e-2);
      CHECK(std::fabs(g.report.heads[h].error.cosine - cpu.heads[h].error.cosine) <= 1e-2);
    }
    CHECK(std::isfinite(g.report.recall_mean));
    CHECK(std::fabs(g.report.recall_mean - cpu.recall_mean) <= 2e-3);
    CHECK(std::fabs(g.report.error.rel_l2 - cpu.error.rel_l2) <= 1.5e-2);
    CHECK(g.report.mask.empty_rows == cpu.mask.empty_rows);
  }
}

}  // namespace

TEST_CASE("analyze --backend cuda: quality report equals the CPU report on the same inputs") {
  uint64_t seed = 1;
  check_case({1, 512, 2, 64, 64, false, ElemType::BF16, {HeadType::Sparse}}, seed++);
  check_case({1, 640, 2, 128, 128, true, ElemType::BF16, {HeadType::Sparse, HeadType::Streaming}}, seed++);
  check_case({2, 384, 2, 128, 128, false, ElemType::F16, {HeadType::Sparse}}, seed++);
  check_case({1, 1000, 3, 128, 128, true, ElemType::BF16, {HeadType::Sparse, HeadType::Dense, HeadType::Streaming}}, seed++);
}

TEST_CASE("analyze --backend cuda: refuses what the LSE recall cannot give") {
  AttentionProblem p;
  p.q_len = p.kv_len = 256;
  p.head_dim = 64;
  p.dtype = ElemType::BF16;
  BlockMask m = random_mask(MaskShape{1, 1, 256, 256, 128, 128}, false, 0.5, {HeadType::Sparse}, 9);
  auto q = random_tensor(256 * 64, ElemType::BF16, 1);
  AttentionInputs in{q.raw.data(), q.raw.data(), q.raw.data(), nullptr};
  AttentionProblem silu = p;
  silu.score = ScoreFn::Silu;
  silu.silu_n = 256;
  CHECK_THROWS_AS(gpu_evaluate_mask(silu, m, in), UsageError);
  AttentionProblem f32 = p;
  f32.dtype = ElemType::F32;
  CHECK_THROWS_AS(gpu_evaluate_mask(f32, m, in), UsageError);
}
