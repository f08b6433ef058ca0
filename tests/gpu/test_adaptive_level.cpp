// GPU adaptive selection at the pooling level asked for (issue 23, case 11): the selection runs on units
// of level x level blocks, checked against a float64 selection on the host computed plainly here, and
// reached through the registry (lib/backend.h) as gen-mask --backend cuda does, and bench's timed mask
// build from synthetic Q/K.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "kernels/mask_build.h"
#include "lib/backend.h"
#include "lib/error.h"
#include "patterns/adaptive/gpu_select.h"
#include "tests/gpu/gpu_test_util.h"

using namespace bsattn;
using gputest::random_tensor;

namespace {

// The host float64 selection: Q/K mean-pooled over each unit's tokens (level x block tokens, the last
// unit partial), scores q_u.k_v, the `top_k` best visible units of each row plus the diagonal unit,
// expanded to blocks, blocks past the causal diagonal removed.
std::vector<uint8_t> host_selection(const AttentionProblem& p, const std::vector<double>& q, const std::vector<double>& k,
                                    int64_t block, int level, int top_k, bool causal, int64_t h) {
  const int64_t S = p.q_len, D = p.head_dim, H = p.heads_q, Hk = p.heads_kv, unit = block * level;
  const int64_t M = (S + block - 1) / block, U = (S + unit - 1) / unit;
  std::vector<std::vector<double>> pq(static_cast<size_t>(U), std::vector<double>(static_cast<size_t>(D)));
  std::vector<std::vector<double>> pk = pq;
  for (int64_t u = 0; u < U; ++u) {
    const int64_t t0 = u * unit, t1 = std::min(S, t0 + unit);
    for (int64_t d = 0; d < D; ++d) {
      double a = 0, b = 0;
      for (int64_t t = t0; t < t1; ++t) {
        a += q[size_t((t * H + h) * D + d)];
        b += k[size_t((t * Hk + h / (H / Hk)) * D + d)];
      }
      pq[size_t(u)][size_t(d)] = a / double(t1 - t0);
      pk[size_t(u)][size_t(d)] = b / double(t1 - t0);
    }
  }
  std::vector<uint8_t> bits(size_t(M * M), 0);
  for (int64_t u = 0; u < U; ++u) {
    // Units visible to the last query of row unit u (q_len = kv_len: key t visible iff t <= q).
    const int64_t last_q = std::min(S, (u + 1) * unit) - 1;
    const int64_t visible = causal ? last_q / unit + 1 : U;
    std::vector<std::pair<double, int64_t>> sc;
    for (int64_t v = 0; v < visible; ++v) {
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += pq[size_t(u)][size_t(d)] * pk[size_t(v)][size_t(d)];
      sc.push_back({s, v});
    }
    std::sort(sc.begin(), sc.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<int64_t> kept;
    for (int64_t r = 0; r < std::min<int64_t>(top_k, visible); ++r) kept.push_back(sc[size_t(r)].second);
    kept.push_back(causal ? visible - 1 : std::min(u, U - 1));
    for (int64_t v : kept)
      for (int64_t i = u * level; i < std::min(M, (u + 1) * level); ++i)
        for (int64_t j = v * level; j < std::min(M, (v + 1) * level); ++j)
          if (!causal || j * block <= std::min(S, (i + 1) * block) - 1) bits[size_t(i * M + j)] = 1;
  }
  return bits;
}

}  // namespace

TEST_CASE("mask build: adaptive selection at pooling levels 2, 4 and 8 equals a float64 selection on the host") {
  for (int level : {2, 4, 8})
    for (bool causal : {false, true}) {
      CAPTURE(level);
      CAPTURE(causal);
      AttentionProblem p;
      p.batch = 1, p.q_len = 1000, p.kv_len = 1000, p.heads_q = 2, p.heads_kv = 1, p.head_dim = 64;
      p.dtype = ElemType::BF16;
      auto q = random_tensor(size_t(1000 * 2 * 64), ElemType::BF16, 191 + level);
      auto k = random_tensor(size_t(1000 * 1 * 64), ElemType::BF16, 292 + level);
      GpuAdaptiveConfig cfg;
      cfg.block_q = cfg.block_kv = 32;
      cfg.level = level;
      cfg.levels = {1, 2, 4, 8};
      cfg.top_k = 2;
      cfg.mass = 1e-6;  // exactly top_k units, plus the diagonal unit
      cfg.causal = causal;
      GpuAdaptiveTiming t;
      // Through the registry, as gen-mask --backend cuda reaches it.
      BlockMask m = gpu_adaptive_mask(p, AttentionInputs{q.raw.data(), k.raw.data(), k.raw.data(), nullptr}, cfg, &t);
      const int64_t M = m.shape.mq();
      int mismatched_rows = 0;
      for (int64_t h = 0; h < 2; ++h) {
        std::vector<uint8_t> want = host_selection(p, q.vals, k.vals, 32, level, 2, causal, h);
        for (int64_t i = 0; i < M; ++i)
          if (!std::equal(want.begin() + i * M, want.begin() + (i + 1) * M, m.head_bits(0, h) + i * M)) ++mismatched_rows;
      }
      CHECK(mismatched_rows == 0);
      CHECK(m.spec["level"] == level);
      CHECK(t.total_ms > 0);
    }
}

TEST_CASE("mask build: the selection level changes the mask (level 1 and level 4 differ)") {
  AttentionProblem p;
  p.batch = 1, p.q_len = 2048, p.kv_len = 2048, p.heads_q = 1, p.heads_kv = 1, p.head_dim = 64;
  p.dtype = ElemType::BF16;
  auto q = random_tensor(size_t(2048 * 64), ElemType::BF16, 5);
  auto k = random_tensor(size_t(2048 * 64), ElemType::BF16, 6);
  AttentionInputs in{q.raw.data(), k.raw.data(), k.raw.data(), nullptr};
  GpuAdaptiveConfig cfg;
  cfg.block_q = cfg.block_kv = 64;
  cfg.top_k = 1;
  cfg.mass = 1e-6;
  cfg.level = 1;
  BlockMask a = gpu_adaptive_mask(p, in, cfg);
  cfg.level = 4;
  BlockMask b = gpu_adaptive_mask(p, in, cfg);
  CHECK(a.bits != b.bits);
  // Level 4 keeps whole 4x4 groups of blocks: every kept block's group is fully kept.
  const int64_t M = b.shape.mq();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < M; ++j)
      if (b.at(0, 0, i, j)) CHECK(b.at(0, 0, (i / 4) * 4, (j / 4) * 4));
}

TEST_CASE("mask build: adaptive selection refuses a level outside 1, 2, 4, 8 before any GPU work") {
  AttentionProblem p;
  p.batch = 1, p.q_len = 256, p.kv_len = 256, p.heads_q = 1, p.heads_kv = 1, p.head_dim = 64;
  p.dtype = ElemType::BF16;
  GpuAdaptiveConfig cfg;
  cfg.level = 3;
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, cfg), UsageError);
}

TEST_CASE("bench --synthetic on a GPU: the energy selection at its level is the timed mask build") {
  bench::BenchConfig c;
  c.shape.batch = 1;
  c.shape.q_len = c.shape.kv_len = 4096;
  c.shape.heads_q = c.shape.heads_kv = 2;
  c.shape.head_dim = 64;
  c.block = 64;
  c.dtype = ElemType::BF16;
  c.pattern = c.spec = "energy:tau=0.8,pool=2";
  BlockMask m = adaptive::bench_mask(c, 3, "decay", true);
  CHECK(m.spec["mask_build"]["kind"] == "gpu_adaptive_select");
  CHECK(m.spec["mask_build"]["ms"].get<double>() > 0);
  CHECK(m.spec["gpu_selection"]["level"] == 2);
  // level 2: kept blocks come in whole 2x2 units
  const int64_t M = m.shape.mq();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < M; ++j)
        if (m.at(0, h, i, j)) CHECK(m.at(0, h, i ^ 1, j ^ 1));
}
