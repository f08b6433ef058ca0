// select_bwd_config (kernels/bwd/config.h): what the backward runs, what it refuses (before anything is
// uploaded, without a GPU), and its agreement with the kernels' compile-time shapes.
#include <doctest/doctest.h>

#include "kernels/bwd/config.h"
#include "kernels/bwd/mainloop_sm80.cuh"
#include "lib/error.h"

using bsattn::UsageError;
using bsattn::cuda::BwdConfig;
using bsattn::cuda::BwdLoop;
using bsattn::cuda::BwdParams;
using bsattn::cuda::select_bwd_config;

namespace {
BwdParams problem(int head_dim, int block_q, int block_kv, bool deterministic = false, bool silu = false) {
  BwdParams p;
  p.head_dim = head_dim, p.block_q = block_q, p.block_kv = block_kv, p.deterministic = deterministic, p.silu = silu;
  p.q_len = p.kv_len = 1024;
  return p;
}
}  // namespace

TEST_CASE("select_bwd_config: the sm80 loop for every size the forward takes, on sm_80 and sm_90") {
  for (int cc : {0, 80, 86, 89, 90, 100})
    for (int d : {64, 128})
      for (int bq : {64, 128})
        for (int bkv : {64, 128, 192, 256})
          for (bool det : {false, true})
            for (bool silu : {false, true}) {
              const BwdConfig c = select_bwd_config(problem(d, bq, bkv, det, silu), cc);
              CHECK(c.loop == BwdLoop::Sm80);
              CHECK(c.name == "sm80");
              CHECK(c.dq_separate == det);  // deterministic: dQ by its own pass, no atomics
            }
}

TEST_CASE("select_bwd_config: sizes and GPUs it refuses, with what is allowed") {
  for (int d : {32, 96, 256})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(d, 128, 128), 90), doctest::Contains("head_dim 64 and 128"), UsageError);
  for (int bq : {16, 32, 256})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, bq, 128), 90), doctest::Contains("block_q 64 and 128"), UsageError);
  for (int bkv : {0, 32, 96, -64})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, bkv), 90), doctest::Contains("multiples of 64"), UsageError);
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, 128), 75), doctest::Contains("sm_80 or newer"), UsageError);
}

TEST_CASE("select_bwd_config: the host's shapes are the kernels' compile-time shapes") {
  using bsattn::cuda::bwd::BwdSm80Config;
  auto same = [](const BwdConfig& c, auto cfg) {
    using T = decltype(cfg);
    CHECK(c.block_m == T::BM);
    CHECK(c.block_n == T::BN);
    CHECK(c.threads == T::THREADS);
    CHECK(c.stages == T::STAGES);
    // Shared memory within the 227 KiB an sm_90 CTA may opt into (and sm_80's 163 KiB).
    CHECK(T::SMEM_DKDV <= 163 * 1024);
    CHECK(T::SMEM_DQ <= 163 * 1024);
  };
  same(select_bwd_config(problem(64, 64, 64), 80), BwdSm80Config<__nv_bfloat16, 64, false>{});
  same(select_bwd_config(problem(128, 128, 128), 90), BwdSm80Config<__half, 128, true>{});
  same(select_bwd_config(problem(128, 128, 128, true), 90), BwdSm80Config<__nv_bfloat16, 128, false>{});
}
