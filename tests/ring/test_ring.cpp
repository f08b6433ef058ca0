// Ring attention (lib/ring) through the loopback transport on the CPU reference, against (a) the plain
// single-rank CPU reference on the same problem and mask and (b) a float64 dense computation written here:
// every (query, key) pair visited one by one, kept when its block is kept in the global bitmap and, under
// causal, the key does not follow the query. No ring code is shared with (b).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lib/attention.h"
#include "lib/error.h"
#include "lib/ring/loopback.h"
#include "lib/ring/rank_engine.h"
#include "lib/ring/ring_attention.h"
#include "lib/ring/ring_layout.h"
#include "lib/ring/ring_plan.h"
#include "lib/rng.h"

using namespace bsattn;
using namespace bsattn::ring;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Case {
  int64_t B = 1, S = 96, H = 2, Hkv = 1, D = 16, bq = 16, bk = 16, mask_batch = 1;
  bool causal = false;
  std::string kind = "random";  // random (density), local (band of blocks), dense, diagonal, holes
  double density = 0.4;
};

BlockMask make_mask(const Case& c, uint64_t seed) {
  MaskShape s;
  s.batch = c.mask_batch, s.heads = c.H, s.q_len = s.kv_len = c.S, s.block_q = c.bq, s.block_kv = c.bk;
  BlockMask m(s);
  m.causal = c.causal;
  Rng rng(seed);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.mq(); ++i)
        for (int64_t j = 0; j < s.mk(); ++j) {
          const double qi = (i + 0.5) * double(c.bq), kj = (j + 0.5) * double(c.bk);
          bool keep = false;
          if (c.kind == "random") keep = rng.uniform() < c.density;
          else if (c.kind == "local") keep = std::abs(qi - kj) <= 2.0 * double(std::max(c.bq, c.bk));
          else if (c.kind == "dense") keep = true;
          else if (c.kind == "diagonal") keep = std::abs(qi - kj) < 0.5 * double(std::max(c.bq, c.bk));
          else if (c.kind == "holes") keep = i % 3 != 1 && rng.uniform() < 0.5;  // rows i%3==1 are empty
          else if (c.kind == "headtypes") keep = rng.uniform() < 0.3;
          if (keep) m.set(b, h, i, j);
        }
  if (c.kind == "headtypes") {
    // Head 0 random (sparse), head 1 dense, head 2 streaming (1 sink block, 2 local blocks), cycling: the
    // single rank reads dense and streaming heads from their definition, the ring from the sliced bitmap.
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t kind = h % 3;
      m.heads[size_t(h)].type = kind == 1 ? HeadType::Dense : kind == 2 ? HeadType::Streaming : HeadType::Sparse;
      if (kind == 2) m.heads[size_t(h)].sink_blocks = 1, m.heads[size_t(h)].local_blocks = 2;
      for (int64_t b = 0; b < s.batch; ++b) {
        uint8_t* hb = m.head_bits(b, h);
        if (kind == 1) std::fill(hb, hb + s.head_cells(), uint8_t(1));
        if (kind == 2) fill_streaming(m.geometry(), 1, 2, hb);
      }
    }
  }
  if (c.causal) m.apply_causal();
  if (c.kind == "headtypes") m.check_consistency();
  return m;
}

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& e : x) e = float(rng.uniform() * 2 - 1);
  return x;
}

struct Dense {
  std::vector<double> out, lse, dq, dk, dv;
};

// Float64 softmax attention from the bitmap, pair by pair (and its gradients when dO is given).
Dense dense_reference(const Case& c, const BlockMask& m, const std::vector<float>& q, const std::vector<float>& k,
                      const std::vector<float>& v, const std::vector<float>* dout) {
  const int64_t B = c.B, S = c.S, H = c.H, Hkv = c.Hkv, D = c.D, G = H / Hkv;
  const double scale = 1.0 / std::sqrt(double(D));
  Dense r;
  r.out.assign(size_t(B * S * H * D), 0.0);
  r.lse.assign(size_t(B * H * S), -kInf);
  r.dq.assign(r.out.size(), 0.0);
  r.dk.assign(size_t(B * S * Hkv * D), 0.0);
  r.dv.assign(r.dk.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / G, mb = m.shape.batch == 1 ? 0 : b;
      for (int64_t i = 0; i < S; ++i) {
        std::vector<double> s(size_t(S), -kInf);
        double mx = -kInf;
        for (int64_t j = 0; j < S; ++j) {
          if (!m.at(mb, h, i / c.bq, j / c.bk) || (c.causal && j > i)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(q[size_t(((b * S + i) * H + h) * D + d)]) * double(k[size_t(((b * S + j) * Hkv + g) * D + d)]);
          s[size_t(j)] = dot * scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        if (mx == -kInf) continue;
        double sum = 0;
        for (int64_t j = 0; j < S; ++j)
          if (s[size_t(j)] > -kInf) sum += std::exp(s[size_t(j)] - mx);
        const double L = mx + std::log(sum);
        r.lse[size_t((b * H + h) * S + i)] = L;
        double* o = &r.out[size_t(((b * S + i) * H + h) * D)];
        for (int64_t j = 0; j < S; ++j)
          if (s[size_t(j)] > -kInf)
            for (int64_t d = 0; d < D; ++d)
              o[d] += std::exp(s[size_t(j)] - L) * double(v[size_t(((b * S + j) * Hkv + g) * D + d)]);
        if (!dout) continue;
        const float* dO = &(*dout)[size_t(((b * S + i) * H + h) * D)];
        double Di = 0;
        for (int64_t d = 0; d < D; ++d) Di += double(dO[d]) * o[d];
        for (int64_t j = 0; j < S; ++j) {
          if (s[size_t(j)] == -kInf) continue;
          const double pj = std::exp(s[size_t(j)] - L);
          double dp = 0;
          for (int64_t d = 0; d < D; ++d) dp += double(dO[d]) * double(v[size_t(((b * S + j) * Hkv + g) * D + d)]);
          const double ds = pj * (dp - Di);
          for (int64_t d = 0; d < D; ++d) {
            r.dv[size_t(((b * S + j) * Hkv + g) * D + d)] += pj * double(dO[d]);
            r.dq[size_t(((b * S + i) * H + h) * D + d)] += scale * ds * double(k[size_t(((b * S + j) * Hkv + g) * D + d)]);
            r.dk[size_t(((b * S + j) * Hkv + g) * D + d)] += scale * ds * double(q[size_t(((b * S + i) * H + h) * D + d)]);
          }
        }
      }
    }
  return r;
}

// max |got - want| over max(1, max |want|); -inf must match exactly.
double worst(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double scale = 1, err = 0;
  for (double w : want)
    if (std::isfinite(w)) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(want[i])) {
      if (double(got[i]) != want[i]) return kInf;
      continue;
    }
    if (!std::isfinite(got[i])) return kInf;
    err = std::max(err, std::abs(double(got[i]) - want[i]));
  }
  return err / scale;
}

std::vector<double> widen(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

std::string label(const Case& c, int ranks, RingLayoutKind layout) {
  return "B=" + std::to_string(c.B) + " S=" + std::to_string(c.S) + " H=" + std::to_string(c.H) + "/" +
         std::to_string(c.Hkv) + " D=" + std::to_string(c.D) + " block=" + std::to_string(c.bq) + "x" +
         std::to_string(c.bk) + " mask_batch=" + std::to_string(c.mask_batch) + " " + c.kind +
         (c.kind == "random" ? "(" + std::to_string(c.density) + ")" : "") + (c.causal ? " causal" : "") +
         " ranks=" + std::to_string(ranks) + " " + ring_layout_name(layout);
}

AttentionProblem problem_of(const Case& c) {
  AttentionProblem p;
  p.batch = c.B, p.q_len = p.kv_len = c.S, p.heads_q = c.H, p.heads_kv = c.Hkv, p.head_dim = c.D;
  p.dtype = ElemType::F32;
  return p;
}

// f32 tolerance: the ring merges N partial softmaxes in float32 where the single rank runs one online
// softmax; both are float32 accumulations of O(S) terms of size O(1), well under 1e-5 relative here.
constexpr double kTol = 2e-5;

RingResult check_case(const Case& c, int ranks, RingLayoutKind layout, uint64_t seed, bool grads = false) {
  CAPTURE(label(c, ranks, layout));
  const AttentionProblem p = problem_of(c);
  const BlockMask m = make_mask(c, seed);
  const auto q = random_values(c.B * c.S * c.H * c.D, seed + 1), k = random_values(c.B * c.S * c.Hkv * c.D, seed + 2),
             v = random_values(c.B * c.S * c.Hkv * c.D, seed + 3), dO = random_values(c.B * c.S * c.H * c.D, seed + 4);
  RingConfig cfg;
  cfg.ranks = ranks;
  cfg.layout = layout;
  cfg.threads = 2;
  RingResult r = ring_attention(p, m, q.data(), k.data(), v.data(), grads ? dO.data() : nullptr, cfg);
  const AttentionInputs in{q.data(), k.data(), v.data(), nullptr};
  const AttentionResult one = cpu_attention_forward(p, m, in);
  const Dense ref = dense_reference(c, m, q, k, v, grads ? &dO : nullptr);
  CHECK(worst(r.out, widen(one.out)) < kTol);
  CHECK(worst(r.lse, widen(one.lse)) < kTol);
  CHECK(worst(r.out, ref.out) < kTol);
  CHECK(worst(r.lse, ref.lse) < kTol);
  if (grads) {
    const AttentionGradients g1 = cpu_attention_backward(p, m, in, one, dO.data());
    // Gradients sum N steps' float32 contributions (and dK/dV over the GQA group): a few times the forward's.
    CHECK(worst(r.dq, widen(g1.dq)) < 5 * kTol);
    CHECK(worst(r.dk, widen(g1.dk)) < 5 * kTol);
    CHECK(worst(r.dv, widen(g1.dv)) < 5 * kTol);
    CHECK(worst(r.dq, ref.dq) < 5 * kTol);
    CHECK(worst(r.dk, ref.dk) < 5 * kTol);
    CHECK(worst(r.dv, ref.dv) < 5 * kTol);
  }
  REQUIRE(int(r.ranks.size()) == ranks);
  int64_t pairs = 0;
  const RingLayout L = make_ring_layout(ranks, layout, c.S, c.bq, c.bk);
  for (const RankReport& rr : r.ranks) {
    CHECK(rr.steps_computed + rr.steps_skipped == ranks);
    // Bytes sent: the forward passes on the shards of ranks r, r-1, ..., r-N+2 (float32 K and V); the
    // backward passes every shard once with its dK and dV (four float32 tensors).
    int64_t want = 0;
    for (int s = 0; s + 1 < ranks; ++s) want += 2 * 4 * c.B * c.Hkv * c.D * L.shard_len((rr.rank - s + ranks) % ranks);
    if (grads && ranks > 1)
      for (int s = 0; s < ranks; ++s) want += 4 * 4 * c.B * c.Hkv * c.D * L.shard_len((rr.rank - s + ranks) % ranks);
    CHECK(rr.bytes_sent == want);
    pairs += rr.computed_pairs;
  }
  // Every kept pair is computed by exactly one step.
  int64_t want_pairs = 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.S; ++i)
        for (int64_t j = 0; j < c.S; ++j)
          want_pairs += m.at(m.shape.batch == 1 ? 0 : b, h, i / c.bq, j / c.bk) && !(c.causal && j > i);
  CHECK(pairs == want_pairs);
  return r;
}

const RingLayoutKind kLayouts[] = {RingLayoutKind::Contiguous, RingLayoutKind::Zigzag};

}  // namespace

TEST_CASE("ring layout: chunks on lcm(block) boundaries, balanced, tail in the last chunk") {
  RingLayout L = make_ring_layout(3, RingLayoutKind::Contiguous, 1000, 64, 128);  // unit 128, 8 units
  CHECK(L.unit == 128);
  REQUIRE(L.chunks.size() == 3);
  // 8 units over 3 chunks: 3, 3, 2 (the last one partial: 1000 - 768 = 232 tokens).
  CHECK(L.chunks[0].begin == 0);
  CHECK(L.chunks[0].end == 384);
  CHECK(L.chunks[1].end == 768);
  CHECK(L.chunks[2].end == 1000);
  CHECK(L.shard_len(2) == 232);
  CHECK(L.max_shard_len() == 384);
  RingLayout Z = make_ring_layout(2, RingLayoutKind::Zigzag, 512, 64, 64);  // 8 units, 4 chunks of 128
  CHECK(Z.rank_chunks(0) == std::vector<int>{0, 3});
  CHECK(Z.rank_chunks(1) == std::vector<int>{1, 2});
  const std::vector<int64_t> t0 = Z.shard_tokens(0);
  REQUIRE(t0.size() == 256);
  CHECK(t0[127] == 127);
  CHECK(t0[128] == 384);
  CHECK(t0[255] == 511);
  // Too few blocks for the chunks.
  CHECK_THROWS_AS(make_ring_layout(4, RingLayoutKind::Zigzag, 448, 64, 64), UsageError);  // 7 units < 8 chunks
  CHECK_THROWS_AS(make_ring_layout(0, RingLayoutKind::Contiguous, 448, 64, 64), UsageError);
  CHECK_THROWS_AS(parse_ring_layout("striped"), UsageError);
  CHECK_THROWS_AS(parse_transport("mpi"), UsageError);
}

TEST_CASE("ring steps: causal contiguous skips the future shards; zigzag balances the pairs") {
  Case c;
  c.S = 256, c.H = 1, c.bq = c.bk = 16, c.causal = true, c.kind = "dense";
  const BlockMask m = make_mask(c, 1);
  const RingLayout L = make_ring_layout(4, RingLayoutKind::Contiguous, c.S, 16, 16);
  for (int r = 0; r < 4; ++r)
    for (int o = 0; o < 4; ++o) {
      const RingStep st = ring_step(m, L, r, o);
      CHECK(st.empty == (o > r));
      CHECK(st.mask.causal == (o == r));
      // 64-token shards: a past shard is 64*64 pairs, the own one 64*65/2.
      if (o < r) CHECK(st.computed_pairs == 64 * 64);
      if (o == r) CHECK(st.computed_pairs == 64 * 65 / 2);
    }
  const RingLayout Z = make_ring_layout(4, RingLayoutKind::Zigzag, c.S, 16, 16);
  for (int r = 0; r < 4; ++r) {
    int64_t pairs = 0;
    for (int o = 0; o < 4; ++o) pairs += ring_step(m, Z, r, o).computed_pairs;
    // 8 chunks of 32 tokens; rank r holds chunks r and 7-r: (r*32*32 + 32*33/2) + ((7-r)*32*32 + 32*33/2).
    CHECK(pairs == 7 * 32 * 32 + 32 * 33);
  }
}

TEST_CASE("loopback transport: a shift delivers each rank its predecessor's bytes; a failing rank stops the rest") {
  const int n = 3;
  LoopbackHub hub(n);
  auto copy = [](void* d, const void* s, size_t b) { std::memcpy(d, s, b); };
  std::vector<std::vector<int>> send(n), recv(n, std::vector<int>(4, -1));
  for (int r = 0; r < n; ++r) send[size_t(r)] = {r, r * 10, r * 100, r * 1000};
  std::vector<int64_t> sent(n);
  {
    std::vector<std::thread> th;
    for (int r = 0; r < n; ++r)
      th.emplace_back([&, r] {
        LoopbackTransport t(hub, r, copy);
        t.start_shift(send[size_t(r)].data(), 16, recv[size_t(r)].data(), 16);
        t.finish_shift();
        sent[size_t(r)] = t.bytes_sent();
      });
    for (auto& x : th) x.join();
  }
  for (int r = 0; r < n; ++r) {
    CHECK(recv[size_t(r)] == send[size_t((r + n - 1) % n)]);
    CHECK(sent[size_t(r)] == 16);
  }
  // Rank 1 expects other sizes than rank 0 sends: it fails, aborts the hub, and ranks 0 and 2 are released.
  LoopbackHub hub2(n);
  std::vector<int> failed(n, 0);
  {
    std::vector<std::thread> th;
    for (int r = 0; r < n; ++r)
      th.emplace_back([&, r] {
        LoopbackTransport t(hub2, r, copy);
        try {
          t.start_shift(send[size_t(r)].data(), 16, recv[size_t(r)].data(), r == 1 ? 8 : 16);
          t.barrier();
        } catch (...) {
          failed[size_t(r)] = 1;
          t.abort();
        }
      });
    for (auto& x : th) x.join();
  }
  CHECK(failed[1] == 1);
  CHECK(hub2.aborted());
}

TEST_CASE("merge_partial: log-sum-exp weights and empty rows") {
  const float ninf = -std::numeric_limits<float>::infinity();
  // Two rows, one head, D=2. Row 0: both partials; row 1: only the second.
  std::vector<float> o = {1, 2, 0, 0}, l = {std::log(1.f), ninf};
  const std::vector<float> po = {3, 4, 5, 6}, pl = {std::log(3.f), std::log(2.f)};
  merge_partial(o.data(), l.data(), po.data(), pl.data(), 1, 2, 1, 2);
  // Row 0: weights 1/4 and 3/4 -> (1*1+3*3)/4 = 2.5, (2+12)/4 = 3.5; LSE log 4.
  CHECK(o[0] == doctest::Approx(2.5));
  CHECK(o[1] == doctest::Approx(3.5));
  CHECK(l[0] == doctest::Approx(std::log(4.0)));
  CHECK(o[2] == 5);
  CHECK(o[3] == 6);
  CHECK(l[1] == doctest::Approx(std::log(2.0)));
  // An empty partial leaves the row unchanged, and an empty row stays empty.
  std::vector<float> o2 = {7, 8}, l2 = {ninf};
  const std::vector<float> eo = {0, 0}, el = {ninf};
  merge_partial(o2.data(), l2.data(), eo.data(), el.data(), 1, 1, 1, 2);
  CHECK(o2 == std::vector<float>{7, 8});
  CHECK(l2[0] == ninf);
}

TEST_CASE("ring forward equals the single rank: N = 2, 3, 4, 8, causal and not, densities, both layouts") {
  uint64_t seed = 100;
  for (const char* kind : {"random", "local", "dense"})
    for (bool causal : {false, true})
      for (int ranks : {2, 3, 4, 8})
        for (RingLayoutKind layout : kLayouts) {
          Case c;
          c.kind = kind;
          c.causal = causal;
          c.S = 256;  // 16 blocks of 16: 2N chunks fit for N = 8
          c.density = ranks % 2 ? 0.15 : 0.5;
          check_case(c, ranks, layout, ++seed);
        }
}

TEST_CASE("ring forward: GQA, tails, batches, unequal block sizes, a mask per batch entry") {
  uint64_t seed = 500;
  for (RingLayoutKind layout : kLayouts)
    for (bool causal : {false, true}) {
      Case gqa;
      gqa.H = 4, gqa.Hkv = 2, gqa.causal = causal, gqa.S = 192;
      check_case(gqa, 3, layout, ++seed);
      Case mqa = gqa;
      mqa.Hkv = 1;
      check_case(mqa, 4, layout, ++seed);
      Case tail;  // 203 tokens: the last block and the last shard are partial
      tail.S = 203, tail.causal = causal, tail.H = 2, tail.Hkv = 2;
      check_case(tail, 3, layout, ++seed);
      Case batch;  // B = 2 with a mask per entry, block_q != block_kv (unit 32)
      batch.B = 2, batch.mask_batch = 2, batch.S = 250, batch.bq = 16, batch.bk = 32, batch.causal = causal;
      check_case(batch, 2, layout, ++seed);
      Case broadcast = batch;
      broadcast.mask_batch = 1;
      check_case(broadcast, 3, layout, ++seed);
    }
}

TEST_CASE("ring forward and backward: dense and streaming heads as well as sparse ones") {
  uint64_t seed = 700;
  for (RingLayoutKind layout : kLayouts)
    for (bool causal : {false, true}) {
      Case c;
      c.kind = "headtypes", c.H = 6, c.Hkv = 3, c.S = 224, c.causal = causal;
      check_case(c, 3, layout, ++seed, true);
    }
}

TEST_CASE("ring forward: empty steps are skipped and empty rows stay empty") {
  for (RingLayoutKind layout : kLayouts) {
    Case diag;  // diagonal blocks only: every step but the own one is empty
    diag.kind = "diagonal", diag.S = 256;
    const RingResult r = check_case(diag, 4, layout, 900);
    for (const RankReport& rr : r.ranks) {
      CHECK(rr.steps_computed == 1);
      CHECK(rr.steps_skipped == 3);
    }
    Case holes;  // every third block row keeps nothing: O = 0 and LSE = -inf there
    holes.kind = "holes", holes.S = 240, holes.causal = true;
    const RingResult h = check_case(holes, 3, layout, 901);
    int64_t empty = 0;
    for (float l : h.lse) empty += std::isinf(l);
    CHECK(empty > 0);
  }
}

TEST_CASE("ring backward equals the single rank and the float64 gradients") {
  uint64_t seed = 1200;
  for (RingLayoutKind layout : kLayouts)
    for (bool causal : {false, true}) {
      Case c;
      c.causal = causal, c.S = 176, c.H = 4, c.Hkv = 2, c.density = 0.5;  // 11 blocks, partial none; GQA
      check_case(c, 2, layout, ++seed, true);
      Case t;
      t.causal = causal, t.S = 203, t.B = 2, t.kind = "local";  // tails, batch
      check_case(t, 3, layout, ++seed, true);
      Case e;
      e.causal = causal, e.kind = "holes", e.S = 240;  // empty rows and skipped steps
      check_case(e, 4, layout, ++seed, true);
    }
  Case eight;
  eight.S = 256, eight.causal = true;
  check_case(eight, 8, RingLayoutKind::Zigzag, 1300, true);
}

TEST_CASE("ring: steps taken in turns (bench) give the same bits as steps computed at once") {
  Case c;
  c.S = 256, c.causal = true, c.H = 4, c.Hkv = 2;
  const AttentionProblem p = problem_of(c);
  const BlockMask m = make_mask(c, 31);
  const auto q = random_values(c.B * c.S * c.H * c.D, 32), k = random_values(c.B * c.S * c.Hkv * c.D, 33),
             v = random_values(c.B * c.S * c.Hkv * c.D, 34);
  RingConfig cfg;
  cfg.ranks = 4;
  cfg.layout = RingLayoutKind::Zigzag;
  const RingResult a = ring_attention(p, m, q.data(), k.data(), v.data(), nullptr, cfg);
  cfg.serialize_steps = true;
  const RingResult b = ring_attention(p, m, q.data(), k.data(), v.data(), nullptr, cfg);
  CHECK(a.out == b.out);
  CHECK(a.lse == b.lse);
  for (const RankReport& r : b.ranks) CHECK(r.step_seconds > 0);
}

TEST_CASE("ring: one rank is the single-rank attention; bad problems are usage errors before any work") {
  Case c;
  check_case(c, 1, RingLayoutKind::Contiguous, 7);
  const AttentionProblem p = problem_of(c);
  const BlockMask m = make_mask(c, 7);
  const auto x = random_values(c.B * c.S * c.H * c.D, 8);
  RingConfig cfg;
  cfg.ranks = 4;
  cfg.layout = RingLayoutKind::Zigzag;  // 6 blocks < 8 chunks
  CHECK_THROWS_AS(ring_attention(p, m, x.data(), x.data(), x.data(), nullptr, cfg), UsageError);
  cfg.layout = RingLayoutKind::Contiguous;
  AttentionProblem silu = p;
  silu.score = ScoreFn::Silu, silu.silu_n = 1;
  CHECK_THROWS_AS(ring_attention(silu, m, x.data(), x.data(), x.data(), nullptr, cfg), UsageError);
  cfg.transport = TransportKind::Nccl;  // the CPU reference has no GPU memory to send
  CHECK_THROWS_AS(ring_attention(p, m, x.data(), x.data(), x.data(), nullptr, cfg), UsageError);
  // Cross-attention lengths: one sequence is sharded for Q and K/V.
  Case cross = c;
  MaskShape s = m.shape;
  s.kv_len = 128;
  BlockMask mc(s);
  AttentionProblem pc = p;
  pc.kv_len = 128;
  cfg.transport = TransportKind::Loopback;
  const auto kx = random_values(c.B * 128 * c.Hkv * c.D, 9);
  CHECK_THROWS_AS(ring_attention(pc, mc, x.data(), kx.data(), kx.data(), nullptr, cfg), UsageError);
  // A NaN in Q is found by the first step that reads it, and every rank stops (no hang).
  auto bad = x;
  bad[size_t(c.S / 2 * c.H * c.D)] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(ring_attention(p, m, bad.data(), x.data(), x.data(), nullptr, cfg), UsageError);
}
