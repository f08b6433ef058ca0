// The FLOP/byte accounting and the timing statistics against hand-computed cases.
#include <doctest/doctest.h>

#include <cmath>

#include "lib/bench/accounting.h"
#include "lib/bench/stats.h"
#include "lib/error.h"

// FLOP and byte counts are integers far below 2^53: doubles hold them exactly, so they compare with ==.

using namespace bsattn;
using namespace bsattn::bench;

namespace {

BlockMask two_head_mask() {
  MaskShape s;
  s.heads = 2;
  s.q_len = s.kv_len = 256;
  s.block_q = s.block_kv = 128;
  BlockMask m(s);
  m.set(0, 0, 0, 0);
  m.set(0, 0, 1, 1);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) m.set(0, 1, i, j);
  return m;
}

AttentionProblem problem(int64_t batch, int64_t seq, int64_t hq, int64_t hkv, int64_t d) {
  AttentionProblem p;
  p.batch = batch;
  p.q_len = p.kv_len = seq;
  p.heads_q = hq;
  p.heads_kv = hkv;
  p.head_dim = d;
  p.dtype = ElemType::BF16;
  return p;
}

}  // namespace

TEST_CASE("attention_work: full blocks, two heads, broadcast batch") {
  BlockMask m = two_head_mask();
  // Head 0: 2 blocks of 128x128, head 1: 4 blocks -> 6 * 16384 = 98304 pairs; dense 2 * 256^2 = 131072.
  WorkCount w = attention_work(problem(1, 256, 2, 2, 64), m, Pass::Fwd);
  CHECK(w.computed_pairs == 98304);
  CHECK(w.dense_pairs == 131072);
  CHECK(w.flops_computed == (4.0 * 64 * 98304));
  CHECK(w.flops_dense_equiv == (4.0 * 64 * 131072));
  CHECK(w.pair_density() == doctest::Approx(0.75));
  // Bytes: Q, K, V, O of 256*2*64 = 32768 bf16 each (262144 B), LSE 2*256 f32 (2048 B), CSR 4 counts +
  // 6 indices as int32 (40 B).
  CHECK(w.bytes_min == (262144 + 2048 + 40));

  // A batch-1 mask broadcast over batch 3 counts three times.
  WorkCount w3 = attention_work(problem(3, 256, 2, 2, 64), m, Pass::Fwd);
  CHECK(w3.computed_pairs == 3 * 98304);
  CHECK(w3.flops_dense_equiv == (3 * 4.0 * 64 * 131072));

  // Backward is 2.5x forward, fwd+bwd 3.5x (DESIGN.md).
  CHECK(attention_work(problem(1, 256, 2, 2, 64), m, Pass::Bwd).flops_computed ==
        (2.5 * 4.0 * 64 * 98304));
  CHECK(attention_work(problem(1, 256, 2, 2, 64), m, Pass::FwdBwd).flops_computed ==
        (3.5 * 4.0 * 64 * 98304));

  // GQA: one KV head halves K and V: Q+O 2*32768 + K+V 2*16384 elements.
  WorkCount g = attention_work(problem(1, 256, 2, 1, 64), m, Pass::Fwd);
  CHECK(g.bytes_min == (2.0 * (2 * 32768 + 2 * 16384) + 2048 + 40));
}

TEST_CASE("attention_work: causal diagonal blocks and a sequence tail are exact") {
  MaskShape s;
  s.heads = 1;
  s.q_len = s.kv_len = 200;  // blocks of 128: a full block and a 72-token tail
  s.block_q = s.block_kv = 128;
  BlockMask m(s);
  m.causal = true;
  m.set(0, 0, 0, 0);
  m.set(0, 0, 1, 1);
  // (0,0): query t sees t+1 keys, sum 1..128 = 8256. (1,1): 72 queries, sum 1..72 = 2628.
  // Dense causal: 200*201/2 = 20100 (the missing block (1,0) holds 72*128 = 9216).
  WorkCount w = attention_work(problem(1, 200, 1, 1, 32), m, Pass::Fwd);
  CHECK(w.computed_pairs == 8256 + 2628);
  CHECK(w.dense_pairs == 20100);
  CHECK(w.flops_computed == (4.0 * 32 * 10884));
  CHECK(w.flops_dense_equiv == (4.0 * 32 * 20100));

  // The same mask without causal: (0,0) 128*128, (1,1) 72*72; dense 200*200.
  m.causal = false;
  WorkCount n = attention_work(problem(1, 200, 1, 1, 32), m, Pass::Fwd);
  CHECK(n.computed_pairs == 16384 + 5184);
  CHECK(n.dense_pairs == 40000);
}

TEST_CASE("element sizes the byte accounting uses") {
  // (Also makes this test reference lib/attention.cpp directly, so the static link pulls it in before
  // bsattn_kernels, which defines the CUDA backend it calls.)
  CHECK(elem_size(ElemType::BF16) == 2);
  CHECK(elem_size(ElemType::F16) == 2);
  CHECK(elem_size(ElemType::F32) == 4);
  CHECK(std::string(elem_type_name(ElemType::BF16)) == "bf16");
}

TEST_CASE("attention_work rejects mismatched shapes; varlen counts each sequence") {
  BlockMask m = two_head_mask();
  CHECK_THROWS_AS(attention_work(problem(1, 512, 2, 2, 64), m, Pass::Fwd), UsageError);
  // One sequence of 256 tokens as a varlen batch: the same work as the fixed-length problem.
  AttentionProblem p = problem(1, 256, 2, 2, 64);
  p.cu_seqlens_q = {0, 256};
  p.cu_seqlens_k = {0, 256};
  const WorkCount wv = attention_work(p, m, Pass::Fwd), wf = attention_work(problem(1, 256, 2, 2, 64), m, Pass::Fwd);
  CHECK(wv.computed_pairs == wf.computed_pairs);
  CHECK(wv.dense_pairs == wf.dense_pairs);
  CHECK(wv.flops_computed == wf.flops_computed);
  CHECK_THROWS_AS(parse_pass("backward"), UsageError);
  CHECK(parse_pass("fwd+bwd") == Pass::FwdBwd);
}

TEST_CASE("tflops and bandwidth units") {
  CHECK(tflops(2e12, 1000.0) == doctest::Approx(2.0));   // 2e12 FLOPs in 1 s
  CHECK(tflops(1e9, 1.0) == doctest::Approx(1.0));       // 1e9 FLOPs in 1 ms
  CHECK(gbytes_per_s(4e9, 2000.0) == doctest::Approx(2.0));
  CHECK(tflops(1e9, 0) == 0);
}

TEST_CASE("summarize: hand-computed statistics") {
  TimingStats s = summarize({3, 1, 2, 4});
  CHECK(s.samples == 4);
  CHECK(s.median_ms == doctest::Approx(2.5));
  CHECK(s.mean_ms == doctest::Approx(2.5));
  CHECK(s.min_ms == 1);
  CHECK(s.max_ms == 4);
  // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
  CHECK(s.stddev_ms == doctest::Approx(std::sqrt(5.0 / 3.0)));
  CHECK(s.rel_noise == doctest::Approx(std::sqrt(5.0 / 3.0) / 2.5));
  CHECK_FALSE(s.noise_met);

  TimingStats odd = summarize({5, 1, 3}, 1.0);
  CHECK(odd.median_ms == 3);
  CHECK(odd.noise_met);
  TimingStats one = summarize({7});
  CHECK(one.median_ms == 7);
  CHECK(one.rel_noise == 0);
  CHECK_THROWS(summarize({}));
  CHECK_THROWS(summarize({1.0, NAN}));
}

TEST_CASE("measure: stops on the noise target, the time limit and the sample cap") {
  double clock = 0;
  auto now = [&]() { return clock; };
  TimingOptions opt;
  opt.warmup = 2;
  opt.min_samples = 5;
  opt.noise_target = 0.01;
  opt.max_time_s = 1.0;

  // Steady samples: noise 0, so the loop stops at min_samples (warm-up samples are not counted).
  int calls = 0;
  TimingStats s = measure([&]() { ++calls; clock += 0.01; return 2.0; }, opt, now);
  CHECK(calls == 7);
  CHECK(s.samples == 5);
  CHECK(s.median_ms == 2.0);
  CHECK(s.noise_met);

  // Alternating 1, 3 (noise ~50%): never meets the target; 0.125 s per sample (exact in binary), timed
  // samples start after the 2 warm-ups -> the 1 s limit is reached after 8 samples.
  clock = 0;
  int k = 0;
  TimingStats n = measure([&]() { clock += 0.125; return (k++ % 2) ? 3.0 : 1.0; }, opt, now);
  CHECK_FALSE(n.noise_met);
  CHECK(n.samples == 8);
  CHECK(n.median_ms == doctest::Approx(2.0));

  // max_samples caps the count.
  clock = 0;
  k = 0;
  opt.max_samples = 6;
  opt.max_time_s = 100;
  TimingStats c = measure([&]() { clock += 0.125; return (k++ % 2) ? 3.0 : 1.0; }, opt, now);
  CHECK(c.samples == 6);

  // The hard limit stops before min_samples (a configuration too slow to sample fully).
  clock = 0;
  opt.max_samples = 100;
  opt.min_samples = 50;
  opt.hard_limit_s = 0.5;
  TimingStats h = measure([&]() { clock += 0.125; return 1.0; }, opt, now);
  CHECK(h.samples == 2);  // 2 warm-ups + 2 samples reach 0.5 s

  TimingOptions bad;
  bad.min_samples = 0;
  CHECK_THROWS_AS(measure([]() { return 1.0; }, bad), UsageError);
  TimingOptions ok;
  ok.min_samples = 1;
  ok.warmup = 0;
  CHECK_THROWS_AS(measure([]() { return -1.0; }, ok), RuntimeFailure);
}
