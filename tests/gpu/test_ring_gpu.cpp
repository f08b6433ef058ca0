// Ring attention (lib/ring) on the GPU: the CUDA engine with the loopback transport (N virtual ranks on one
// GPU) and, on a machine with 2 or more GPUs, the NCCL transport (one GPU per rank), against a float64
// reference written for the tests (gpu_test_util.h) on the same 16-bit inputs, and against the single-GPU
// forward on the same inputs.
//
// Tolerances (relative L2 over all elements): O 2e-2 (bf16) / 5e-3 (f16), the forward suite's bound; the
// ring rounds each step's partial O to the 16-bit type before the float32 merge, one more rounding of the
// size the bound already allows for P. LSE within 2e-2 / 5e-3 absolute, -inf exactly where the reference
// has empty rows. Gradients 3e-2 / 8e-3, the dilated suite's bound (the merged O is rounded to 16 bits
// before D_i = rowsum(dO * O) in each step's backward). Ring against the single GPU: both within the same
// bounds of the reference, so within twice of each other.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lib/backend.h"
#include "lib/ring/ring_attention.h"
#include "lib/ring/ring_gpu.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using namespace bsattn::ring;
using namespace gputest;

namespace {

struct Case {
  int64_t batch = 1, seq = 1024, hq = 4, hkv = 2, d = 64, block = 64;
  bool causal = false;
  double density = 0.3;
  ElemType dt = ElemType::BF16;
};

std::vector<float> as_float(const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); }

void check(const Case& c, int ranks, RingLayoutKind layout, TransportKind transport, bool grads, uint64_t seed) {
  const std::string label = "B=" + std::to_string(c.batch) + " S=" + std::to_string(c.seq) + " H=" + std::to_string(c.hq) +
                            "/" + std::to_string(c.hkv) + " D=" + std::to_string(c.d) + " block=" +
                            std::to_string(c.block) + (c.causal ? " causal " : " ") + elem_type_name(c.dt) + " ranks=" +
                            std::to_string(ranks) + " " + ring_layout_name(layout) + " " + transport_name(transport) +
                            (grads ? " +grads" : "");
  CAPTURE(label);
  AttentionProblem p;
  p.batch = c.batch, p.q_len = p.kv_len = c.seq, p.heads_q = c.hq, p.heads_kv = c.hkv, p.head_dim = c.d;
  p.dtype = c.dt;
  MaskShape s;
  s.batch = 1, s.heads = c.hq, s.q_len = s.kv_len = c.seq, s.block_q = s.block_kv = c.block;
  const BlockMask m = random_mask(s, c.causal, c.density, {HeadType::Sparse, HeadType::Dense, HeadType::Streaming}, seed);
  const size_t nq = size_t(c.batch * c.seq * c.hq * c.d), nk = size_t(c.batch * c.seq * c.hkv * c.d);
  const Tensor16 q = random_tensor(nq, c.dt, seed + 1), k = random_tensor(nk, c.dt, seed + 2),
                 v = random_tensor(nk, c.dt, seed + 3), dO = random_tensor(nq, c.dt, seed + 4);
  RingConfig cfg;
  cfg.ranks = ranks;
  cfg.layout = layout;
  cfg.transport = transport;
  cfg.attention.backend = Backend::Cuda;
  const std::vector<float> qf = as_float(q.vals), kf = as_float(k.vals), vf = as_float(v.vals), df = as_float(dO.vals);
  const RingResult r = ring_attention(p, m, qf.data(), kf.data(), vf.data(), grads ? df.data() : nullptr, cfg);
  const Ref ref = reference_f64(p, m, q.vals, k.vals, v.vals);
  const double tol = c.dt == ElemType::BF16 ? 2e-2 : 5e-3;
  CHECK(rel_l2(r.out, ref.out) < tol);
  size_t lse_bad = 0;
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    const bool ok = std::isinf(ref.lse[i]) ? (std::isinf(r.lse[i]) && r.lse[i] < 0)
                                           : std::fabs(double(r.lse[i]) - ref.lse[i]) <= tol;
    lse_bad += !ok;
  }
  CHECK(lse_bad == 0);
  // The single-GPU forward on the same inputs.
  AttentionOptions opt;
  opt.backend = Backend::Cuda;
  const AttentionResult one = attention_forward(p, m, AttentionInputs{q.raw.data(), k.raw.data(), v.raw.data(), nullptr}, opt);
  CHECK(rel_l2(r.out, std::vector<double>(one.out.begin(), one.out.end())) < 2 * tol);
  if (grads) {
    std::vector<double> dov(dO.vals.begin(), dO.vals.end());
    const RefGrads g = reference_backward_f64(p, m, q.vals, k.vals, v.vals, dov, ref, c.dt);
    const double gtol = c.dt == ElemType::BF16 ? 3e-2 : 8e-3;
    CHECK(rel_l2(r.dq, g.dq) < gtol);
    CHECK(rel_l2(r.dk, g.dk) < gtol);
    CHECK(rel_l2(r.dv, g.dv) < gtol);
  }
}

const RingLayoutKind kLayouts[] = {RingLayoutKind::Contiguous, RingLayoutKind::Zigzag};

}  // namespace

TEST_CASE("ring on one GPU (loopback, cuda engine) equals the float64 reference and the single-GPU forward") {
  REQUIRE(gpu_available());
  uint64_t seed = 10;
  for (ElemType dt : {ElemType::BF16, ElemType::F16})
    for (bool causal : {false, true})
      for (int ranks : {2, 3, 4})
        for (RingLayoutKind layout : kLayouts) {
          Case c;
          c.dt = dt, c.causal = causal;
          check(c, ranks, layout, TransportKind::Loopback, false, ++seed);
        }
  Case tail;  // 1000 tokens: partial last block and a shorter last shard; B = 2; D = 128; block 128; MQA
  tail.seq = 1000, tail.batch = 2, tail.d = 128, tail.block = 128, tail.hkv = 1, tail.causal = true;
  check(tail, 3, RingLayoutKind::Zigzag, TransportKind::Loopback, false, 50);
  check(tail, 2, RingLayoutKind::Contiguous, TransportKind::Loopback, false, 51);
  Case eight;  // 8 ranks: 16 zigzag chunks of 2 blocks
  eight.seq = 2048, eight.causal = true, eight.density = 0.5;
  check(eight, 8, RingLayoutKind::Zigzag, TransportKind::Loopback, false, 52);
}

TEST_CASE("ring backward on one GPU (loopback, cuda engine) equals the float64 gradients") {
  REQUIRE(gpu_available());
  uint64_t seed = 100;
  for (bool causal : {false, true})
    for (RingLayoutKind layout : kLayouts) {
      Case c;
      c.causal = causal, c.block = 128, c.seq = 1024, c.d = 128;
      check(c, 2, layout, TransportKind::Loopback, true, ++seed);
      check(c, 4, layout, TransportKind::Loopback, true, ++seed);
    }
}

TEST_CASE("ring over NCCL (one GPU per rank) equals the float64 reference") {
  RingGpu* g = ring_gpu();
  REQUIRE(g != nullptr);
  std::string why;
  if (g->device_count() < 2 || !g->nccl_available(&why)) {
    MESSAGE("skipped: needs 2 or more GPUs and NCCL (" << g->device_count() << " GPU(s)" << (why.empty() ? "" : "; " + why)
                                                       << ")");
    return;
  }
  const int n = std::min(4, g->device_count());
  uint64_t seed = 200;
  for (bool causal : {false, true})
    for (RingLayoutKind layout : kLayouts) {
      Case c;
      c.causal = causal, c.seq = 2048, c.block = 128, c.d = 128;
      check(c, 2, layout, TransportKind::Nccl, false, ++seed);
      if (n > 2) check(c, n, layout, TransportKind::Nccl, false, ++seed);
      check(c, 2, layout, TransportKind::Nccl, true, ++seed);
    }
}
