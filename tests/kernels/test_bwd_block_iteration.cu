// Host-side checks of the backward's block iteration (kernels/bwd/block.cuh), no GPU needed: for random
// masks of every head type, block sizes 64/128, lengths with tails, q_len != kv_len, causal, mask batch
// 1 or B and varlen batches, the query tiles each KV tile's CTA walks (the column form: column CSR for
// sparse heads, a range derived from the head's definition for dense and streaming heads) equal the
// tiles the mask model says hold a computed pair, and so do the KV tiles the deterministic dQ pass
// walks per 64-row query tile (the forward's make_tile_list inside 128-row mask blocks).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/bwd/block.cuh"
#include "lib/mask.h"
#include "lib/rng.h"

using namespace bsattn;
using bsattn::cuda::BwdParams;

namespace {

constexpr int BM = 64, BN = 64;  // the backward's tiles (kernels/bwd/mainloop_sm80.cuh)

struct HostMask {
  BlockMask m;
  BlockCSR rows, cols;
  std::vector<uint8_t> types;
  std::vector<int32_t> sinks, locals, cu_q, cu_k;
};

// Heads cycle sparse (random bits), dense and streaming (random sink and local counts); the causal rule
// is applied to the bitmap as the library does, so the bitmap is the model of every head type.
HostMask make_mask(const MaskShape& s, bool causal, double density, Rng& rng) {
  HostMask h;
  h.m = BlockMask(s);
  h.m.causal = causal;
  const BlockGeometry g = h.m.geometry();
  for (int64_t hd = 0; hd < s.heads; ++hd) {
    HeadInfo info;
    info.type = hd % 3 == 0 ? HeadType::Sparse : hd % 3 == 1 ? HeadType::Dense : HeadType::Streaming;
    if (info.type == HeadType::Streaming) {
      info.sink_blocks = int64_t(rng.below(3));
      info.local_blocks = int64_t(rng.below(4));
    }
    h.m.heads[size_t(hd)] = info;
    for (int64_t b = 0; b < s.batch; ++b) {
      uint8_t* bits = h.m.head_bits(b, hd);
      if (info.type == HeadType::Streaming)
        fill_streaming(g, info.sink_blocks, info.local_blocks, bits);
      else
        for (int64_t c = 0; c < s.head_cells(); ++c) bits[c] = info.type == HeadType::Dense || rng.uniform() < density;
    }
  }
  if (causal) h.m.apply_causal();
  h.m.check_consistency();
  h.rows = row_csr(h.m);
  h.cols = column_csr(h.m);
  for (auto& info : h.m.heads) {
    h.types.push_back(uint8_t(info.type));
    h.sinks.push_back(int32_t(info.sink_blocks));
    h.locals.push_back(int32_t(info.local_blocks));
  }
  return h;
}

BwdParams params(const HostMask& h, int batch) {
  const MaskShape& s = h.m.shape;
  BwdParams p;
  p.batch = batch, p.heads_q = int(s.heads), p.heads_kv = int(s.heads);
  p.q_len = int(s.q_len), p.kv_len = int(s.kv_len);
  p.mask_batch = int(s.batch), p.block_q = int(s.block_q), p.block_kv = int(s.block_kv);
  p.mq = int(s.mq()), p.mk = int(s.mk()), p.causal = h.m.causal;
  p.head_type = h.types.data(), p.head_sink = h.sinks.data(), p.head_local = h.locals.data();
  p.kv_num_blocks = h.rows.num_blocks.data(), p.kv_indices = h.rows.indices.data();
  p.q_num_blocks = h.cols.num_blocks.data(), p.q_indices = h.cols.indices.data();
  if (!h.cu_q.empty()) p.cu_q = h.cu_q.data(), p.cu_k = h.cu_k.data();
  return p;
}

// Whether the 64-row query tile qt and the 64-key tile kt of sequence b, head hd share a computed pair:
// inside a kept block, both tokens existing, the key visible to the row.
bool computed(const HostMask& h, const bsattn::cuda::fwd::TileMask& tm, int b, int hd, int len_q, int qt, int kt) {
  const MaskShape& s = h.m.shape;
  const int64_t mb = s.batch == 1 ? 0 : b;
  for (int q = qt * BM; q < std::min((qt + 1) * BM, len_q); ++q)
    for (int k = kt * BN; k < std::min((kt + 1) * BN, tm.len_k); ++k)
      if (h.m.at(mb, hd, q / s.block_q, k / s.block_kv) && tm.visible(q, k)) return true;
  return false;
}

void check_problem(const HostMask& h, int batch) {
  const BwdParams p = params(h, batch);
  for (int b = 0; b < batch; ++b)
    for (int hd = 0; hd < p.heads_q; ++hd) {
      // Column form: each KV tile's query tiles.
      for (int kt = 0; kt * BN < p.kv_len; ++kt) {
        const auto kv = bsattn::cuda::bwd::kv_tile<BM, BN>(p, b, hd, kt);
        if (!kv.live()) continue;
        const auto L = bsattn::cuda::bwd::make_q_tile_list<BM>(p, b, hd, kv.j, kv.t_lo, kv.t_hi);
        std::vector<int> got, want;
        for (int t = 0; t < L.count; ++t) got.push_back(L.tile(t));
        for (int qt = 0; qt * BM < kv.len_q; ++qt)
          if (computed(h, kv.tm, b, hd, kv.len_q, qt, kt)) want.push_back(qt);
        CHECK_MESSAGE(got == want, "b " << b << " head " << hd << " (type " << int(h.types[hd]) << ") kv tile " << kt
                                        << ": " << got.size() << " query tiles listed, " << want.size()
                                        << " expected");
      }
      // Row form at 64-row tiles (the deterministic dQ pass).
      for (int i = 0; i * BM < p.q_len; ++i) {
        const auto qt = bsattn::cuda::fwd::query_tile<BM>(p, b, hd, i);
        if (!qt.live()) continue;
        const auto L = bsattn::cuda::fwd::make_tile_list<BN>(p, b, hd, qt.q0 / p.block_q, qt.kv_limit);
        std::vector<int> got, want;
        for (int t = 0; t < L.count; ++t) got.push_back(L.tile(t));
        for (int kt = 0; kt * BN < qt.len_k; ++kt)
          if (computed(h, qt.tm, b, hd, qt.len_q, i, kt)) want.push_back(kt);
        CHECK_MESSAGE(got == want, "b " << b << " head " << hd << " (type " << int(h.types[hd]) << ") query tile "
                                        << i << ": " << got.size() << " KV tiles listed, " << want.size()
                                        << " expected");
      }
    }
}

}  // namespace

TEST_CASE("backward block iteration: column tile lists and 64-row dQ tile lists equal the mask model") {
  Rng rng(181);
  for (int n = 0; n < 80; ++n) {
    MaskShape s;
    const int batch = 1 + int(rng.below(2));
    s.batch = rng.below(2) ? batch : 1;
    s.heads = 3;
    s.block_q = rng.below(2) ? 64 : 128;
    s.block_kv = 64 * (1 + int64_t(rng.below(3)));  // 64, 128, 192: any multiple of the 64-key tile
    s.q_len = 1 + int64_t(rng.below(700));
    s.kv_len = rng.below(3) == 0 ? s.q_len : 1 + int64_t(rng.below(700));
    const bool causal = rng.below(2);
    CAPTURE(s.str());
    CAPTURE(causal);
    CAPTURE(batch);
    HostMask h = make_mask(s, causal, 0.1 + 0.8 * rng.uniform(), rng);
    check_problem(h, batch);
  }
}

TEST_CASE("backward block iteration: varlen sequences (rows relative to each sequence, its own causal frontier)") {
  Rng rng(182);
  for (int n = 0; n < 40; ++n) {
    MaskShape s;
    const int batch = 2 + int(rng.below(2));
    s.batch = rng.below(2) ? batch : 1;
    s.heads = 3;
    s.block_q = rng.below(2) ? 64 : 128;
    s.block_kv = rng.below(2) ? 64 : 128;
    s.q_len = 1 + int64_t(rng.below(500));
    s.kv_len = rng.below(2) ? s.q_len : 1 + int64_t(rng.below(500));
    const bool causal = rng.below(2);
    CAPTURE(s.str());
    CAPTURE(causal);
    HostMask h = make_mask(s, causal, 0.2 + 0.6 * rng.uniform(), rng);
    h.cu_q = {0};
    h.cu_k = {0};
    for (int b = 0; b < batch; ++b) {  // one sequence at the maxima, the others shorter (0 allowed)
      h.cu_q.push_back(h.cu_q.back() + int32_t(b == 0 ? s.q_len : rng.below(uint64_t(s.q_len) + 1)));
      h.cu_k.push_back(h.cu_k.back() + int32_t(b == 0 ? s.kv_len : rng.below(uint64_t(s.kv_len) + 1)));
    }
    check_problem(h, batch);
  }
}

TEST_CASE("backward block iteration: diag_block and first_row_reaching by hand") {
  // q_len 300, kv_len 200, blocks 128 x 64: off = -100; mq = 3, mk = 4.
  BwdParams p;
  p.q_len = 300, p.kv_len = 200, p.block_q = 128, p.block_kv = 64, p.mq = 3, p.mk = 4;
  CHECK(bsattn::cuda::bwd::diag_block(p, 0) == 0);  // last row 127 reaches key 27
  CHECK(bsattn::cuda::bwd::diag_block(p, 1) == 2);  // row 255 reaches key 155
  CHECK(bsattn::cuda::bwd::diag_block(p, 2) == 3);  // row 299 reaches key 199
  CHECK(bsattn::cuda::bwd::first_row_reaching(p, 0) == 0);
  CHECK(bsattn::cuda::bwd::first_row_reaching(p, 1) == 1);
  CHECK(bsattn::cuda::bwd::first_row_reaching(p, 3) == 2);
  CHECK(bsattn::cuda::bwd::first_row_reaching(p, 4) == 3);  // no row: mq
  p.q_len = 300, p.kv_len = 100, p.mk = 2;  // off = -200: block row 0 sees nothing
  CHECK(bsattn::cuda::bwd::diag_block(p, 0) == -1);
  CHECK(bsattn::cuda::bwd::first_row_reaching(p, 0) == 1);
}
