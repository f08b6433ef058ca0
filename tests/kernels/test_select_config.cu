// select_config (kernels/fwd/config.h), the one place that decides which forward kernel runs a problem:
// its choices per problem and GPU, its refusals, and its agreement with the kernels' compile-time shapes.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "kernels/fwd/config.h"
#include "kernels/fwd/mainloop_sm80.cuh"
#include "kernels/fwd/mainloop_sm90.cuh"
#include "lib/error.h"

using bsattn::UsageError;
using bsattn::cuda::FwdConfig;
using bsattn::cuda::FwdLoop;
using bsattn::cuda::FwdParams;
using bsattn::cuda::fwd_kernel_names;
using bsattn::cuda::select_config;

namespace {
FwdParams problem(int head_dim, int block_q, int block_kv, bool silu = false, float scale = 0.125f) {
  FwdParams p;
  p.head_dim = head_dim, p.block_q = block_q, p.block_kv = block_kv, p.silu = silu, p.scale = scale;
  p.q_len = p.kv_len = 1024;
  return p;
}
}  // namespace

TEST_CASE("select_config: the default per problem and GPU") {
  CHECK(select_config(problem(128, 128, 128), 90).name == "sm90-ws");
  CHECK(select_config(problem(64, 128, 256), 90).name == "sm90-ws");
  CHECK(select_config(problem(128, 128, 64), 90).name == "sm80");  // sm90-ws's K/V tile is 128 keys
  CHECK(select_config(problem(128, 128, 128), 80).name == "sm80");
  CHECK(select_config(problem(128, 128, 128), 89).name == "sm80");
  CHECK(select_config(problem(128, 128, 128), 100).name == "sm80");  // sm90a code runs on sm_90 only
  CHECK(select_config(problem(128, 64, 128), 90).name == "sm90-ws");   // 64-row items, two pipelines
  CHECK(select_config(problem(128, 64, 128), 90).block_m == 64);
  CHECK(select_config(problem(64, 64, 64), 90).block_n == 64);
  CHECK(select_config(problem(128, 64, 64, true), 90).name == "sm90-ws");                // SiLU, block 64
  CHECK(select_config(problem(128, 64, 128), 80).name == "sm80-general");
  CHECK(select_config(problem(64, 128, 128, true), 90).name == "sm90-ws");               // SiLU
  CHECK(select_config(problem(64, 128, 128, true, -0.5f), 90).name == "sm90-ws");        // SiLU, any scale
  CHECK(select_config(problem(64, 128, 64, true), 90).name == "sm80-general");           // SiLU, block_kv 64
  CHECK(select_config(problem(128, 128, 128, true), 80).name == "sm80-general");         // SiLU off Hopper
  CHECK(select_config(problem(256, 128, 128), 90).name == "sm90-ws");                    // head dim 256
  CHECK(select_config(problem(256, 128, 128), 90).block_n == 64);                        // 64-key tiles
  CHECK(select_config(problem(256, 128, 64), 90).name == "sm90-ws");                     // so any block_kv
  CHECK(select_config(problem(256, 128, 128, true), 90).name == "sm90-ws");              // SiLU
  CHECK(select_config(problem(256, 64, 128, true), 90).name == "sm80-general");          // block_q 64
  CHECK(select_config(problem(256, 128, 128), 80).name == "sm80-general");               // off Hopper
  CHECK(select_config(problem(256, 128, 128, false, -0.5f), 90).name == "sm80-general"); // scale <= 0
  CHECK(select_config(problem(64, 128, 128, false, -0.5f), 90).name == "sm80-general");  // scale <= 0
  CHECK(select_config(problem(128, 128, 128), 0).name == "sm80");  // no GPU known: no sm90 code assumed
}

TEST_CASE("select_config: every listed kernel is the default for some problem, and no other is") {
  std::set<std::string> picked;
  for (int cc : {80, 86, 89, 90})
    for (int d : {64, 128, 256})
      for (int bq : {64, 128})
        for (int bkv : {64, 128, 256})
          for (bool silu : {false, true})
            for (float scale : {0.1f, -1.f}) picked.insert(select_config(problem(d, bq, bkv, silu, scale), cc).name);
  const auto names = fwd_kernel_names();
  CHECK(picked == std::set<std::string>(names.begin(), names.end()));
}

TEST_CASE("select_config: a named kernel runs only what it can, and says so before anything runs") {
  CHECK(select_config(problem(128, 128, 128), 90, "sm90-ws").loop == FwdLoop::Sm90Ws);
  CHECK(select_config(problem(128, 128, 128), 90, "sm80").loop == FwdLoop::Sm80);
  CHECK(select_config(problem(128, 64, 64, true), 90, "sm80-general").block_m == 64);
  CHECK_THROWS_AS(select_config(problem(128, 128, 64), 90, "sm90-ws"), UsageError);  // block_kv 64
  CHECK_THROWS_AS(select_config(problem(128, 128, 64), 0, "sm90-ws"), UsageError);   // without a GPU too
  CHECK_THROWS_AS(select_config(problem(128, 128, 128), 80, "sm90-ws"), UsageError);
  CHECK(select_config(problem(128, 64, 128), 90, "sm90-ws").block_m == 64);
  CHECK_THROWS_AS(select_config(problem(128, 64, 128), 80, "sm90-ws"), UsageError);
  CHECK(select_config(problem(128, 128, 128, true), 90, "sm90-ws").loop == FwdLoop::Sm90Ws);  // SiLU
  CHECK_THROWS_AS(select_config(problem(128, 128, 128, false, -1.f), 90, "sm90-ws"), UsageError);
  CHECK(select_config(problem(256, 128, 128), 90, "sm90-ws").block_n == 64);
  CHECK_THROWS_WITH_AS(select_config(problem(256, 64, 128), 90, "sm90-ws"),
                       doctest::Contains("head dim 256 with block_q 128 only"), UsageError);
  CHECK_THROWS_AS(select_config(problem(256, 128, 128), 80, "sm90-ws"), UsageError);
  CHECK_THROWS_AS(select_config(problem(256, 128, 128), 90, "sm80"), UsageError);
  CHECK_THROWS_AS(select_config(problem(128, 64, 128), 80, "sm80"), UsageError);
  CHECK_THROWS_AS(select_config(problem(128, 128, 128, false, 0.f), 80, "sm80"), UsageError);
  CHECK_THROWS_WITH_AS(select_config(problem(128, 128, 128), 90, "wg-tma-ws-ppo"),
                       "unknown kernel 'wg-tma-ws-ppo' (allowed: sm90-ws, sm80, sm80-general)", UsageError);
  // the earlier names of the three kernels
  CHECK(select_config(problem(128, 128, 128), 90, "wg-tma-ws-ppf").name == "sm90-ws");
  CHECK(select_config(problem(128, 128, 128), 90, "fa2-v4-w4-h").name == "sm80");
  CHECK(select_config(problem(128, 128, 128), 90, "fa2-w8").name == "sm80-general");
}

TEST_CASE("select_config: HSTU's relative bias runs where SiLU runs (sm90-ws on Hopper at block 128)") {
  float table = 0.f;  // any non-null table turns the bias on; select_config reads no values
  FwdParams p = problem(128, 128, 128, true);
  CHECK(select_config(p, 90).name == "sm90-ws");
  p.rab.pos = &table;
  CHECK(select_config(p, 90).name == "sm90-ws");
  CHECK(select_config(p, 90, "sm90-ws").name == "sm90-ws");
  CHECK(select_config(p, 90, "sm80-general").name == "sm80-general");
  CHECK(select_config(p, 80).name == "sm80-general");
  CHECK_THROWS_AS(select_config(p, 90, "sm80"), UsageError);  // sm80 runs the softmax only
  FwdParams b64 = problem(64, 64, 64, true);
  b64.rab.pos = &table;
  CHECK(select_config(b64, 90).name == "sm80-general");
  FwdParams wide = problem(256, 128, 128, true);
  wide.rab.pos = &table;
  CHECK(select_config(wide, 90).name == "sm80-general");  // the bias runs on sm90-ws up to D = 128
  CHECK_THROWS_WITH_AS(select_config(wide, 90, "sm90-ws"), doctest::Contains("relative bias"), UsageError);
  p.rab.pos = nullptr, p.rab.dense = &table;
  CHECK(select_config(p, 90).name == "sm90-ws");
}

TEST_CASE("select_config: sizes no kernel takes") {
  for (int d : {32, 96, 192, 512}) CHECK_THROWS_AS(select_config(problem(d, 128, 128), 90), UsageError);
  for (int bq : {16, 32, 256}) CHECK_THROWS_AS(select_config(problem(128, bq, 128), 90), UsageError);
  for (int bkv : {0, 32, 96, -64}) CHECK_THROWS_AS(select_config(problem(128, 128, bkv), 90), UsageError);
  CHECK_THROWS_AS(select_config(problem(128, 128, 128), 75), UsageError);
}

TEST_CASE("select_config: more heads or sequences than a grid dimension, on the loops that launch a CTA row each") {
  FwdParams p = problem(128, 128, 128);
  p.heads_q = p.heads_kv = 65535;
  CHECK(select_config(p, 80).name == "sm80");
  p.heads_q = p.heads_kv = 65536;
  CHECK_THROWS_WITH_AS(select_config(p, 80), doctest::Contains("at most 65535"), UsageError);
  CHECK_THROWS_WITH_AS(select_config(p, 90, "sm80-general"), doctest::Contains("65536 heads"), UsageError);
  CHECK(select_config(p, 90).name == "sm90-ws");  // persistent: any number of work items
  p.heads_q = p.heads_kv = 4;
  p.batch = 70000;
  CHECK_THROWS_WITH_AS(select_config(p, 80), doctest::Contains("70000 sequences"), UsageError);
  CHECK(select_config(p, 90).name == "sm90-ws");
}

TEST_CASE("kernel_head_dim: the native head dims, and the padding of the others") {
  using bsattn::cuda::kernel_head_dim;
  CHECK(kernel_head_dim(64) == 64);
  CHECK(kernel_head_dim(128) == 128);
  CHECK(kernel_head_dim(256) == 256);
  CHECK(kernel_head_dim(1) == 64);
  CHECK(kernel_head_dim(32) == 64);
  CHECK(kernel_head_dim(65) == 128);
  CHECK(kernel_head_dim(96) == 128);
  CHECK(kernel_head_dim(129) == 256);
  CHECK(kernel_head_dim(192) == 256);
  for (int d : {0, -1, 257, 512}) CHECK_THROWS_AS(kernel_head_dim(d), UsageError);
  for (int d = 1; d <= 256; ++d) {  // every head dim runs: its kernel dim is selectable
    const int k = kernel_head_dim(d);
    CHECK(k >= d);
    CHECK_NOTHROW(select_config(problem(k, 128, 128), 90));
    CHECK_NOTHROW(select_config(problem(k, 64, 64, true), 80));
  }
}

TEST_CASE("select_config: the host's shapes are the kernels' compile-time shapes") {
  using namespace bsattn::cuda::fwd;
  auto same = [](const FwdConfig& c, auto cfg) {
    using T = decltype(cfg);
    CHECK(c.block_m == T::BM);
    CHECK(c.block_n == T::BN);
    CHECK(c.threads == T::THREADS);
    CHECK(c.stages == T::STAGES);
  };
  for (int d : {64, 128}) {
    const FwdConfig ws = select_config(problem(d, 128, 128), 90);
    CHECK(ws.persistent);
    if (d == 64) same(ws, Sm90WsConfig<__nv_bfloat16, 64>{}); else same(ws, Sm90WsConfig<__nv_bfloat16, 128>{});
    const FwdConfig ws64 = select_config(problem(d, 64, 64), 90);
    CHECK(ws64.persistent);
    if (d == 64)
      same(ws64, Sm90WsConfig<__nv_bfloat16, 64, false, false, 64>{});
    else
      same(ws64, Sm90WsConfig<__nv_bfloat16, 128, false, false, 64>{});
    same(select_config(problem(d, 128, 128), 80), Sm80Config<__half, 128>{});
    same(select_config(problem(d, 64, 128), 80), Sm80GeneralConfig<__half, 128, 64, false>{});
    same(select_config(problem(d, 128, 128, true), 80), Sm80GeneralConfig<__nv_bfloat16, 64, 128, true>{});
  }
  const FwdConfig wide = select_config(problem(256, 128, 128), 90);
  CHECK(wide.persistent);
  same(wide, Sm90WsConfig<__nv_bfloat16, 256>{});
  same(select_config(problem(256, 128, 128, true), 90), Sm90WsConfig<__half, 256, true>{});
}
