// Host-side checks of the forward kernels' block iteration and masking (kernels/fwd/block.cuh, scheduler.cuh),
// no GPU needed: for random masks of every head type, block sizes, kernel tile widths, lengths and the
// causal rule, the tile list a query tile walks (query_tile's key reach, then make_tile_list) equals
// the tiles the mask model says hold a computed pair, and the masking shortcuts never skip a tile that
// has an invisible pair.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/fwd/scheduler.cuh"
#include "lib/mask.h"
#include "lib/rng.h"

using namespace bsattn;
using bsattn::cuda::FwdParams;
using bsattn::cuda::fwd::KvTileList;
using bsattn::cuda::fwd::QueryTile;
using bsattn::cuda::fwd::TileMask;

namespace {

struct HostMask {
  BlockMask m;
  BlockCSR csr;
  std::vector<uint8_t> types;
  std::vector<int32_t> sinks, locals;
};

// A mask over `heads` heads cycling sparse (random bits at `density`), dense and streaming, with the
// causal rule applied to the bitmap as the library does.
HostMask make_mask(const MaskShape& s, bool causal, double density, Rng& rng) {
  HostMask h;
  h.m = BlockMask(s);
  h.m.causal = causal;
  BlockGeometry g = h.m.geometry();
  for (int64_t hd = 0; hd < s.heads; ++hd) {
    HeadInfo info;
    info.type = hd % 3 == 0 ? HeadType::Sparse : hd % 3 == 1 ? HeadType::Dense : HeadType::Streaming;
    if (info.type == HeadType::Streaming) {
      info.sink_blocks = int64_t(rng.below(3));
      info.local_blocks = 1 + int64_t(rng.below(3));
    }
    h.m.heads[size_t(hd)] = info;
    for (int64_t b = 0; b < s.batch; ++b) {
      uint8_t* bits = h.m.head_bits(b, hd);
      if (info.type == HeadType::Streaming) {
        fill_streaming(g, info.sink_blocks, info.local_blocks, bits);
      } else {
        for (int64_t c = 0; c < s.head_cells(); ++c)
          bits[c] = info.type == HeadType::Dense || rng.uniform() < density;
      }
    }
  }
  if (causal) h.m.apply_causal();
  h.m.check_consistency();
  REQUIRE(h.m.heads.size() == size_t(s.heads));
  h.csr = row_csr(h.m);
  for (auto& info : h.m.heads) {
    h.types.push_back(uint8_t(info.type));
    h.sinks.push_back(int32_t(info.sink_blocks));
    h.locals.push_back(int32_t(info.local_blocks));
  }
  return h;
}

FwdParams params(const HostMask& h) {
  const MaskShape& s = h.m.shape;
  FwdParams p;
  p.batch = int(s.batch), p.heads_q = int(s.heads), p.heads_kv = int(s.heads);
  p.q_len = int(s.q_len), p.kv_len = int(s.kv_len);
  p.mask_batch = int(s.batch), p.block_q = int(s.block_q), p.block_kv = int(s.block_kv);
  p.mq = int(s.mq()), p.mk = int(s.mk()), p.causal = h.m.causal;
  p.head_type = h.types.data(), p.head_sink = h.sinks.data(), p.head_local = h.locals.data();
  p.kv_num_blocks = h.csr.num_blocks.data(), p.kv_indices = h.csr.indices.data();
  return p;
}

// Query tile i of a kernel with BM = block_q rows and BN-key tiles, against the mask model.
template <int BN>
void check_row(const HostMask& h, const FwdParams& p, int b, int hd, int i, int bm) {
  const MaskShape& s = h.m.shape;
  const int len_k = int(s.kv_len);
  // The kernels' prologue: the tile's rows, masking rule and key reach.
  const QueryTile qt =
      bm == 64 ? bsattn::cuda::fwd::query_tile<64>(p, b, hd, i) : bsattn::cuda::fwd::query_tile<128>(p, b, hd, i);
  REQUIRE(qt.live());
  const int q0 = qt.q0, q_rows = qt.q_rows;
  const TileMask tm = qt.tm;
  CHECK(q0 == i * bm);
  CHECK(q_rows == std::min<int64_t>(bm, s.q_len - q0));
  const KvTileList L = bsattn::cuda::fwd::make_tile_list<BN>(p, b, hd, i, qt.kv_limit);
  const KvTileList Ls = bsattn::cuda::fwd::make_tile_list<BN, true>(p, b, hd, i, qt.kv_limit);  // SKIP_TRIM
  CHECK(Ls.count == L.count);

  // The tiles with a computed pair: inside a kept block, with a key that exists and that some row of
  // the tile sees.
  std::vector<int> want;
  const int tiles = (len_k + BN - 1) / BN;
  for (int t = 0; t < tiles; ++t) {
    const int64_t j = int64_t(t) * BN / s.block_kv;
    if (!h.m.at(b, hd, i, j)) continue;
    bool any = false;
    for (int q = q0; q < q0 + q_rows && !any; ++q)
      for (int k = t * BN; k < std::min((t + 1) * BN, len_k) && !any; ++k) any = tm.visible(q, k);
    if (any) want.push_back(t);
  }
  std::vector<int> got, got_s;
  for (int t = 0; t < L.count; ++t) got.push_back(L.tile(t));
  for (int t = 0; t < Ls.count; ++t) got_s.push_back(Ls.tile(t));
  CHECK_MESSAGE(got == want, "b " << b << " head " << hd << " (type " << int(h.types[hd]) << ") row " << i
                                  << ": " << got.size() << " tiles listed, " << want.size() << " expected");
  CHECK(got_s == want);

  // Masking: a tile with an invisible pair in the tile's rows must be flagged by needed(), and
  // may_need() (which lets the wg-tma main loop skip the tile id) must hold wherever needed() does.
  for (int t = 0; t < L.count; ++t) {
    const int k0 = L.tile(t) * BN;
    bool invisible = false;
    for (int q = q0; q < q0 + q_rows && !invisible; ++q)
      for (int k = k0; k < k0 + BN && !invisible; ++k) invisible = !tm.visible(q, k);
    const bool needed = tm.needed(q0, k0, BN);
    if (invisible) CHECK_MESSAGE(needed, "tile " << k0 / BN << " of row " << i << " has an invisible pair");
    if (needed) {
      const bool may = bm == 64 ? tm.may_need<64, BN>(t, L.count) : tm.may_need<128, BN>(t, L.count);
      CHECK_MESSAGE(may, "row " << i << " tile " << t << " of " << L.count << " needs masking, may_need says no");
    }
  }
}

template <int BN>
void sweep(uint64_t seed) {
  Rng rng(seed);
  for (int n = 0; n < 60; ++n) {
    MaskShape s;
    s.batch = 1 + int64_t(rng.below(2));
    s.heads = 3;
    s.block_q = rng.below(2) ? 64 : 128;
    s.block_kv = BN * (1 + int64_t(rng.below(2)));  // the kernel's tile divides block_kv
    s.q_len = 1 + int64_t(rng.below(700));
    s.kv_len = rng.below(3) == 0 ? s.q_len : 1 + int64_t(rng.below(700));
    const bool causal = rng.below(2);
    const double density = 0.15 + 0.7 * rng.uniform();
    CAPTURE(s.str());
    CAPTURE(causal);
    HostMask h = make_mask(s, causal, density, rng);
    FwdParams p = params(h);
    for (int b = 0; b < int(s.batch); ++b)
      for (int hd = 0; hd < int(s.heads); ++hd)
        for (int i = 0; i < int(s.mq()); ++i) check_row<BN>(h, p, b, hd, i, int(s.block_q));
  }
}

}  // namespace

TEST_CASE("kernel block iteration: tile lists equal the mask model's computed tiles (BN 64)") { sweep<64>(11); }
TEST_CASE("kernel block iteration: tile lists equal the mask model's computed tiles (BN 128)") { sweep<128>(12); }

TEST_CASE("kernel masking: may_need is false away from the row's end and for untailed non-causal rows") {
  const TileMask plain{1024, 0, false}, tail{1000, 0, false}, causal{1024, 0, true};
  CHECK_FALSE(plain.may_need<128, 128>(7, 8));  // nothing to mask anywhere
  CHECK(tail.may_need<128, 128>(7, 8));
  CHECK_FALSE(tail.may_need<128, 128>(0, 8));
  CHECK(causal.may_need<128, 128>(6, 8));  // the last (128 + 127) / 128 + 1 = 2 tiles
  CHECK(causal.may_need<128, 128>(7, 8));
  CHECK_FALSE(causal.may_need<128, 128>(5, 8));
  CHECK(causal.may_need<64, 128>(6, 8));  // (64 + 127) / 128 + 1 = 2
  CHECK_FALSE(causal.may_need<64, 128>(5, 8));
  CHECK(causal.may_need<128, 64>(5, 8));  // (128 + 63) / 64 + 1 = 3
  CHECK_FALSE(causal.may_need<128, 64>(4, 8));
}

TEST_CASE("wg-tma-ws items: every query tile once, and the consumers' rebuild from the slot equals the producer's") {
  using bsattn::cuda::fwd::ItemSlot;
  using bsattn::cuda::fwd::WorkItem;
  Rng rng(13);
  for (int n = 0; n < 40; ++n) {
    MaskShape s;
    s.batch = 1 + int64_t(rng.below(3));
    s.heads = 3;
    s.block_q = rng.below(2) ? 64 : 128;
    s.block_kv = 128 * (1 + int64_t(rng.below(2)));
    s.q_len = 1 + int64_t(rng.below(900));
    s.kv_len = rng.below(3) == 0 ? s.q_len : 1 + int64_t(rng.below(900));
    const bool causal = rng.below(2);
    CAPTURE(s.str());
    CAPTURE(causal);
    HostMask h = make_mask(s, causal, 0.1 + 0.8 * rng.uniform(), rng);
    FwdParams p = params(h);
    p.heads_kv = n % 3 == 0 ? 1 : n % 3 == 1 ? 3 : p.heads_q;  // MQA, one group of 3, MHA
    const bsattn::cuda::fwd::ItemDivs divs =
        s.block_q == 64 ? bsattn::cuda::fwd::ItemDivs::of<64>(p) : bsattn::cuda::fwd::ItemDivs::of<128>(p);
    const int n_items = int(s.batch * s.heads * s.mq());  // query tiles of block_q rows x heads x sequences
    std::vector<int> seen(size_t(n_items), 0);
    for (int w = 0; w < n_items; ++w) {
      const WorkItem a = s.block_q == 64 ? bsattn::cuda::fwd::work_item<64, 128>(p, w)
                                         : bsattn::cuda::fwd::work_item<128, 128>(p, w);
      REQUIRE(a.live());
      seen[size_t((int64_t(a.b) * s.heads + a.h) * s.mq() + a.i)]++;
      const ItemSlot slot = bsattn::cuda::fwd::item_slot(w, a.tiles);
      const WorkItem c = s.block_q == 64 ? bsattn::cuda::fwd::work_item<64, 128>(p, slot)
                                         : bsattn::cuda::fwd::work_item<128, 128>(p, slot);
      CHECK(c.b == a.b);
      CHECK(c.h == a.h);
      CHECK(c.i == a.i);
      CHECK(c.kv_limit == a.kv_limit);
      // wg-tma-ws-ppf's decode by precomputed divisors: the same query tile
      const QueryTile f = s.block_q == 64 ? bsattn::cuda::fwd::item_tile<64>(p, w, divs)
                                          : bsattn::cuda::fwd::item_tile<128>(p, w, divs);
      CHECK(f.b == a.b);
      CHECK(f.h == a.h);
      CHECK(f.hk == a.hk);
      CHECK(f.i == a.i);
      CHECK(f.q0 == a.q0);
      CHECK(f.kv_limit == a.kv_limit);
      REQUIRE(c.tiles.count == a.tiles.count);
      for (int t = 0; t < a.tiles.count; ++t) CHECK(c.tiles.tile(t) == a.tiles.tile(t));
      // causal: each head's longest rows come first in the natural order
      if (causal && w % s.mq() == 0) CHECK(a.i == int(s.mq()) - 1);
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == n_items);
  }
}

TEST_CASE("FastDiv: multiply-and-shift division equals integer division for divisors and dividends below 2^31") {
  using bsattn::cuda::fwd::FastDiv;
  Rng rng(29);
  std::vector<int> divisors;
  for (int d = 1; d <= 300; ++d) divisors.push_back(d);
  for (int e = 8; e <= 30; ++e)  // powers of two and their neighbours, up to 2^31 - 1
    for (int off : {-1, 0, 1}) divisors.push_back(int((int64_t(1) << e) + off));
  divisors.push_back(2147483647);
  for (int n = 0; n < 200; ++n) divisors.push_back(1 + int(rng.below(2147483647u)));
  for (int d : divisors) {
    CAPTURE(d);
    const FastDiv f(d);
    std::vector<int> ns = {0, 1, d - 1, d, 2147483647, 2147483646};
    if (d < 1073741824) ns.push_back(2 * d - 1), ns.push_back(2 * d);
    for (int k = 0; k < 64; ++k) ns.push_back(int(rng.below(2147483648u)));
    for (int k = 0; k < 16; ++k) ns.push_back(int(rng.below(4096)));
    for (int n : ns) {
      if (n < 0) continue;
      CAPTURE(n);
      REQUIRE(f.div(n) == n / d);
    }
  }
  CHECK(FastDiv(0).div(7) == 7);  // no divisor (no work items): taken as 1, never a host division by 0
}
