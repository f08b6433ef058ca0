// Dilated attention (lib/dilated) on the GPU backend against the same computation on the CPU reference in
// float64 (which tests/dilated checks against the LongNet definition), on the same 16-bit inputs, over
// issue 20's matrix: 1 to 4 branches, rates 1/2/4/8, causal and not, tails (S not a multiple of the
// segments), GQA, D = 64 and 128, B > 1, blocks 64 and 128, 8 heads (every offset of rate 8), forward and
// gradients.
//
// Tolerance, relative L2 over all elements: 2e-2 (bf16) / 5e-3 (f16) for O, as the forward suite (P is
// rounded to the 16-bit type before P V); 3e-2 / 8e-3 for dQ, dK, dV, the backward suite's bound plus the
// merged O rounded to 16 bits before D_i = rowsum(dO * O) in each branch's backward.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/attention_runner.h"
#include "lib/dilated/dilated.h"
#include "lib/dilated/dilated_gpu.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace bsattn::dilated;
using namespace gputest;

namespace {

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double d = 0, w = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]) && got[i] == want[i]) continue;
    d += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    w += double(want[i]) * want[i];
  }
  return std::sqrt(d / std::max(w, 1e-300));
}

struct Case {
  int64_t batch, seq, hq, hkv, d, block;
  std::vector<Branch> branches;
  bool causal;
  ElemType dt;
  bool grads = true;  // the backward kernels take head_dim up to 128
};

void check(const Case& c, uint64_t seed) {
  std::string label = "B=" + std::to_string(c.batch) + " S=" + std::to_string(c.seq) + " H=" + std::to_string(c.hq) +
                      "/" + std::to_string(c.hkv) + " D=" + std::to_string(c.d) + " block=" + std::to_string(c.block) +
                      (c.causal ? " causal " : " ") + elem_type_name(c.dt) + " branches=";
  for (auto& b : c.branches) label += std::to_string(b.segment) + ":" + std::to_string(b.rate) + " ";
  CAPTURE(label);
  AttentionProblem p;
  p.batch = c.batch, p.q_len = p.kv_len = c.seq, p.heads_q = c.hq, p.heads_kv = c.hkv, p.head_dim = c.d;
  p.dtype = c.dt;
  const size_t nq = size_t(c.batch * c.seq * c.hq * c.d), nk = size_t(c.batch * c.seq * c.hkv * c.d);
  Tensor16 q = random_tensor(nq, c.dt, seed + 1), k = random_tensor(nk, c.dt, seed + 2), v = random_tensor(nk, c.dt, seed + 3);
  std::vector<float> dout(nq);
  Rng r(seed + 4);
  for (float& x : dout) x = float(r.normal());
  DilatedSpec spec;
  spec.branches = c.branches;
  spec.causal = c.causal;
  DilatedOptions gpu, cpu;
  gpu.block_q = gpu.block_kv = cpu.block_q = cpu.block_kv = c.block;
  gpu.attention.backend = Backend::Cuda;
  cpu.f64 = true;
  const AttentionInputs in{q.raw.data(), k.raw.data(), v.raw.data(), nullptr};
  const float* d_o = c.grads ? dout.data() : nullptr;
  DilatedResult got = dilated_attention(p, spec, in, d_o, gpu);
  DilatedResult want = dilated_attention(p, spec, in, d_o, cpu);
  const bool bf = c.dt == ElemType::BF16;
  CHECK(rel_l2(got.out, want.out) <= (bf ? 2e-2 : 5e-3));
  for (size_t i = 0; i < want.lse.size(); ++i)
    if (std::isinf(want.lse[i]) != std::isinf(got.lse[i])) {
      FAIL_CHECK("LSE -inf differs at " << i);
      break;
    }
  CHECK(rel_l2(got.lse, want.lse) <= 1e-3);
  if (!c.grads) return;
  CHECK(rel_l2(got.dq, want.dq) <= (bf ? 3e-2 : 8e-3));
  CHECK(rel_l2(got.dk, want.dk) <= (bf ? 3e-2 : 8e-3));
  CHECK(rel_l2(got.dv, want.dv) <= (bf ? 3e-2 : 8e-3));
}

}  // namespace

TEST_CASE("dilated attention on the GPU: branches, rates, tails, causal, GQA, D, batch, blocks, offsets") {
  REQUIRE(cuda::gpu_present());
  const std::vector<Case> cases = {
      {1, 512, 8, 8, 64, 128, {{256, 1}}, false, ElemType::BF16},
      {1, 600, 8, 2, 128, 128, {{128, 1}, {256, 2}}, true, ElemType::BF16},
      {2, 700, 8, 4, 64, 64, {{128, 1}, {256, 2}, {512, 4}}, false, ElemType::F16},
      {1, 1000, 8, 1, 128, 128, {{128, 1}, {256, 2}, {512, 4}, {1024, 8}}, true, ElemType::BF16},
      {2, 777, 8, 8, 64, 128, {{512, 8}, {96, 2}}, false, ElemType::BF16},
      {1, 300, 4, 2, 128, 64, {{64, 4}, {200, 1}}, true, ElemType::F16},
      // Head dims the kernels run padded (36: element-wise gathers, the merge's any-D path) and 256 (its
      // 8-element vectors); forward only (the backward takes head_dim up to 128).
      {1, 500, 4, 2, 36, 64, {{128, 1}, {256, 2}}, true, ElemType::BF16, false},
      {2, 400, 4, 4, 256, 64, {{64, 2}, {200, 1}}, false, ElemType::F16, false},
  };
  uint64_t seed = 2000;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_CASE("dilated attention on the GPU: the timed pipeline runs every part (bench --dilated's path)") {
  REQUIRE(cuda::gpu_present());
  REQUIRE(dilated_gpu() != nullptr);
  AttentionProblem p;
  // S = 1022: the rate-4 branch is in residue form (gathered), the others strided.
  p.batch = 1, p.q_len = p.kv_len = 1022, p.heads_q = 8, p.heads_kv = 2, p.head_dim = 128;
  p.dtype = ElemType::BF16;
  const size_t nq = size_t(1022 * 8 * 128), nk = size_t(1022 * 2 * 128);
  Tensor16 q = random_tensor(nq, p.dtype, 31), k = random_tensor(nk, p.dtype, 32), v = random_tensor(nk, p.dtype, 33);
  std::vector<BranchPlan> plans;
  for (Branch b : std::vector<Branch>{{256, 1}, {512, 2}, {1024, 4}}) plans.push_back(plan_branch(p, b, false, 128, 128));
  AttentionOptions opt;
  opt.backend = Backend::Cuda;
  bench::TimingOptions t;
  t.warmup = 1, t.min_samples = 3, t.max_time_s = 0.05;
  const DilatedGpuTiming r = dilated_gpu()->time(p, plans, {q.raw.data(), k.raw.data(), v.raw.data(), nullptr}, opt, t);
  CHECK(r.total.samples >= 3);
  CHECK(r.total.median_ms > 0);
  CHECK((plans[0].strided && plans[1].strided && !plans[2].strided));
  CHECK(r.gather.median_ms > 0);
  CHECK(r.branches.median_ms > 0);
  CHECK(r.merge.median_ms > 0);
  CHECK(r.total.median_ms > r.merge.median_ms);
  CHECK(!r.kernel.empty());
}
