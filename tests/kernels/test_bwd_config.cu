// select_bwd_config (kernels/bwd/config.h): what the backward runs, what it refuses (before anything is
// uploaded, without a GPU), and its agreement with the kernels' compile-time shapes.
#include <doctest/doctest.h>

#include "kernels/bwd/config.h"
#include "kernels/bwd/mainloop_sm80.cuh"
#include "kernels/bwd/mainloop_sm90.cuh"

#include <type_traits>
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

TEST_CASE("select_bwd_config: sm90 on sm_90 where 128 keys per CTA fit the mask's blocks, sm80 elsewhere") {
  for (int cc : {0, 80, 86, 89, 90, 100})
    for (int d : {64, 128})
      for (int bq : {64, 128})
        for (int bkv : {64, 128, 192, 256})
          for (bool det : {false, true})
            for (bool silu : {false, true}) {
              CAPTURE(cc);
              CAPTURE(bkv);
              const BwdParams p = problem(d, bq, bkv, det, silu);
              const BwdConfig c = select_bwd_config(p, cc);
              const bool sm90 = cc == 90 && bkv % 128 == 0;
              CHECK(c.loop == (sm90 ? BwdLoop::Sm90 : BwdLoop::Sm80));
              CHECK(c.name == (sm90 ? "sm90" : "sm80"));
              CHECK(c.dq_separate == det);  // deterministic: dQ by its own pass, no atomics
              // by name: sm80 runs everywhere; sm90 where the default would pick it (or no GPU is known)
              CHECK(select_bwd_config(p, cc, "sm80").loop == BwdLoop::Sm80);
              if (sm90 || (cc == 0 && bkv % 128 == 0))
                CHECK(select_bwd_config(p, cc, "sm90").loop == BwdLoop::Sm90);
              else
                CHECK_THROWS_AS(select_bwd_config(p, cc, "sm90"), UsageError);
            }
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, 128), 90, "fa3"), doctest::Contains("sm90 or sm80"), UsageError);
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, 64), 90, "sm90"), doctest::Contains("multiple of 128"), UsageError);
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, 128), 80, "sm90"), doctest::Contains("sm_90"), UsageError);
}

TEST_CASE("select_bwd_config: sizes and GPUs it refuses, with what is allowed") {
  // the kernels' head dims are 64 and 128 (the runner pads 1..128 to them: kernel_head_dim); 256 has the
  // forward only
  for (int d : {32, 96, 512})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(d, 128, 128), 90), doctest::Contains("head dims 64 and 128"), UsageError);
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(256, 128, 128), 90), doctest::Contains("up to 128"), UsageError);
  for (int bq : {16, 32, 256})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, bq, 128), 90), doctest::Contains("block_q 64 and 128"), UsageError);
  for (int bkv : {0, 32, 96, -64})
    CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, bkv), 90), doctest::Contains("multiples of 64"), UsageError);
  CHECK_THROWS_WITH_AS(select_bwd_config(problem(128, 128, 128), 75), doctest::Contains("sm_80 or newer"), UsageError);
  BwdParams many = problem(128, 128, 128);
  many.heads_q = 65536;
  CHECK_THROWS_WITH_AS(select_bwd_config(many, 90), doctest::Contains("at most 65535"), UsageError);
  many.heads_q = 4, many.batch = 65536;
  CHECK_THROWS_WITH_AS(select_bwd_config(many, 90), doctest::Contains("65536 sequences"), UsageError);
  many.batch = 65535;
  CHECK(select_bwd_config(many, 90).name == "sm90");
}

TEST_CASE("select_bwd_config: the host's shapes are the kernels' compile-time shapes") {
  using bsattn::cuda::bwd::BwdSm80Config;
  using bsattn::cuda::bwd::BwdSm90Config;
  auto same = [](const BwdConfig& c, auto cfg, int smem_limit) {
    using T = decltype(cfg);
    CHECK(c.block_m == T::BM);
    CHECK(c.block_n == T::BN);
    CHECK(c.threads == T::THREADS);
    CHECK(c.stages == T::STAGES);
    if constexpr (std::is_same_v<T, BwdSm80Config<typename T::Elem, T::D, T::SILU>>) {
      // within sm_80's 163 KiB (and the 227 KiB an sm_90 CTA may opt into)
      CHECK(T::SMEM_DKDV <= smem_limit);
      CHECK(T::SMEM_DQ <= smem_limit);
    } else {
      CHECK(T::SMEM_LAUNCH <= smem_limit);
    }
  };
  same(select_bwd_config(problem(64, 64, 64), 80), BwdSm80Config<__nv_bfloat16, 64, false>{}, 163 * 1024);
  same(select_bwd_config(problem(128, 128, 64), 90), BwdSm80Config<__half, 128, true>{}, 163 * 1024);
  same(select_bwd_config(problem(128, 128, 128, true), 90, "sm80"), BwdSm80Config<__nv_bfloat16, 128, false>{}, 163 * 1024);
  same(select_bwd_config(problem(128, 128, 128), 90), BwdSm90Config<__nv_bfloat16, 128, false>{}, 227 * 1024);
  same(select_bwd_config(problem(64, 64, 256, false, true), 90), BwdSm90Config<__half, 64, true>{}, 227 * 1024);
}
