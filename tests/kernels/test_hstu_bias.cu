// Host-side checks of the kernels' HSTU relative bias (kernels/fwd/bias.cuh), no GPU needed: the bucket
// edges lib/hstu computes (hstu_ts_bucket_bounds) against its own hstu_ts_bucket, at random differences
// and on both sides of every edge; the kernels' bucket from a guess one bucket off either way; and
// rab_value, compiled for the host, against hstu_rab element by element (bit-identical: the same float32
// terms added in the same order) over a jagged batch with per-head tables; and add_rab_tile, run for every
// lane of every warp of every query tile and KV tile, against the mma.sync C layout written out here
// (row lane/4 + 8*(e/2) of each m16 tile, key 2*(lane%4) + e%2 of each n8 tile).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/fwd/bias.cuh"
#include "lib/hstu/hstu.h"
#include "lib/rng.h"

using namespace bsattn;
using bsattn::cuda::RabParams;
namespace fwd = bsattn::cuda::fwd;

namespace {

// |dt| values that stress the buckets: 0, below 1, integers, log-uniform up to 1e12, huge ones.
double random_gap(Rng& rng) {
  switch (rng.below(5)) {
    case 0: return 0.0;
    case 1: return rng.uniform();
    case 2: return double(rng.below(100000));
    case 3: return std::exp(rng.uniform() * std::log(1e12));
    default: return std::exp(rng.uniform() * 700.0);
  }
}

}  // namespace

TEST_CASE("hstu_ts_bucket_bounds: the edges of hstu_ts_bucket, at random gaps and on both sides of each edge") {
  for (int64_t nb : {1, 2, 7, 33, 129, 3000}) {
    CAPTURE(nb);
    const std::vector<double> bounds = hstu_ts_bucket_bounds(nb);
    REQUIRE(bounds.size() == size_t(nb + 1));
    CHECK(bounds[0] == 0.0);
    CHECK(std::isinf(bounds[size_t(nb)]));
    for (int64_t b = 1; b < nb; ++b) {
      CHECK(bounds[size_t(b)] >= bounds[size_t(b - 1)]);
      const double e = bounds[size_t(b)];
      if (std::isinf(e)) continue;  // a bucket no finite gap reaches
      CAPTURE(b);
      CAPTURE(e);
      // Hand check of the first edges: ln(x)/0.301 reaches b at x = exp(0.301 b).
      CHECK(std::fabs(e / std::exp(0.301 * double(b)) - 1.0) < 1e-12);
      CHECK(hstu_ts_bucket(e, nb) == b);
      CHECK(hstu_ts_bucket(std::nextafter(e, 0.0), nb) == b - 1);
      CHECK(fwd::ts_bucket(e, int(nb), bounds.data()) == b);
      CHECK(fwd::ts_bucket(std::nextafter(e, 0.0), int(nb), bounds.data()) == b - 1);
    }
    Rng rng(uint64_t(nb) * 7919);
    int mismatches = 0;
    for (int n = 0; n < 20000; ++n) {
      const double g = random_gap(rng);
      const int64_t want = hstu_ts_bucket(g, nb);
      if (fwd::ts_bucket(g, int(nb), bounds.data()) != want) ++mismatches;
      // Settling from a guess one bucket off either side, as the device's float log2 may give.
      for (int off = -1; off <= 1; ++off)
        if (fwd::ts_bucket_settle(g, int(want) + off, int(nb), bounds.data()) != want) ++mismatches;
      // hstu_ts_bucket takes the difference's sign off.
      if (hstu_ts_bucket(-g, nb) != want) ++mismatches;
    }
    CHECK(mismatches == 0);
  }
  CHECK(fwd::ts_bucket(std::numeric_limits<double>::infinity(), 129, hstu_ts_bucket_bounds(129).data()) == 128);
  CHECK(hstu_ts_bucket(std::numeric_limits<double>::infinity(), 129) == 128);
  CHECK(hstu_ts_bucket(0.5, 129) == 0);
  CHECK(hstu_ts_bucket(2.0, 129) == 2);  // ln 2 / 0.301 = 2.30
}

TEST_CASE("rab_value (the kernels' per-pair bias) equals hstu_rab on a jagged batch, every term alone and together") {
  const int64_t H = 3;
  const std::vector<int64_t> lens = {1, 37, 130, 64};
  std::vector<int64_t> starts = {0};
  for (int64_t l : lens) starts.push_back(starts.back() + l);
  const int64_t total = starts.back(), lmax = 130;
  Rng rng(20261203);
  HstuBias full;
  full.pos_len = 50;  // shorter than the longest sequence: distances clamp to the last entry
  full.ts_buckets = 40;
  for (int64_t e = 0; e < H * full.pos_len; ++e) full.pos.push_back(float(rng.uniform() * 2 - 1));
  for (int64_t e = 0; e < H * full.ts_buckets; ++e) full.ts.push_back(float(rng.uniform() * 2 - 1));
  // Timestamps: random gaps over many buckets (seconds to years), some equal, some decreasing.
  double t = 1.7e9;
  for (int64_t r = 0; r < total; ++r) {
    full.timestamps.push_back(t);
    const uint64_t kind = rng.below(4);
    t += kind == 0 ? 0.0 : kind == 1 ? -double(rng.below(1000)) : std::floor(std::exp(rng.uniform() * 18.0));
  }
  for (int64_t e = 0; e < H * lmax * lmax; ++e) full.dense.push_back(float(rng.uniform() * 2 - 1));
  const std::vector<double> bounds = hstu_ts_bucket_bounds(full.ts_buckets);

  for (int terms = 1; terms < 8; ++terms) {
    CAPTURE(terms);
    HstuBias b;
    if (terms & 1) b.pos = full.pos, b.pos_len = full.pos_len;
    if (terms & 2) b.ts = full.ts, b.ts_buckets = full.ts_buckets, b.timestamps = full.timestamps;
    if (terms & 4) b.dense = full.dense;
    RabParams r;
    if (terms & 1) r.pos = b.pos.data(), r.pos_len = int(b.pos_len);
    if (terms & 2) r.ts = b.ts.data(), r.ts_buckets = int(b.ts_buckets), r.timestamps = b.timestamps.data(),
                   r.ts_bounds = bounds.data();
    if (terms & 4) r.dense = b.dense.data(), r.dense_q = int(lmax), r.dense_k = int(lmax);
    int64_t mismatches = 0, pairs = 0;
    for (size_t s = 0; s < lens.size(); ++s) {
      const int64_t len = lens[s], start = starts[s];
      const std::vector<float> want = hstu_rab(b, H, start, len, lmax, lmax);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < len; ++i) {
          const double tq = fwd::rab_query_time(r, int(start), int(len), int(i));
          for (int64_t j = 0; j < len; ++j) {
            const double tk = r.ts ? b.timestamps[size_t(start + j)] : 0.0;
            const float got = fwd::rab_value(r, int(h), int(i), int(j), tq, tk);
            mismatches += got != want[size_t((h * len + i) * len + j)];
            ++pairs;
          }
        }
    }
    CHECK(pairs == H * (1 + 37 * 37 + 130 * 130 + 64 * 64));
    CHECK(mismatches == 0);
  }
}

namespace {
// Fragment counts of two warp shapes: sm80-general's 16 rows per warp and a 32-row warp (two m16 tiles).
struct Warp16 {
  static constexpr int MT = 1, NT = 8, BM = 64, NWARPS = 4;
};
struct Warp32 {
  static constexpr int MT = 2, NT = 4, BM = 128, NWARPS = 4;
};

template <class T>
void check_tiles(const HstuBias& b, const RabParams& r, const std::vector<int32_t>& cu, int H) {
  constexpr int BN = T::NT * 8;
  bsattn::cuda::FwdParams p;
  p.cu_q = cu.data(), p.cu_k = cu.data();
  p.heads_q = p.heads_kv = H;
  int lmax = 0;
  for (size_t s = 0; s + 1 < cu.size(); ++s) lmax = std::max(lmax, cu[s + 1] - cu[s]);
  p.q_len = p.kv_len = lmax;
  const float scale = 0.375f;
  auto raw = [](int q, int k) { return 0.125f * float(q) - 0.0625f * float(k) + 1.f; };  // a score per pair
  int64_t checked = 0, bad = 0;
  for (size_t seq = 0; seq + 1 < cu.size(); ++seq) {
    const int len = cu[seq + 1] - cu[seq];
    const std::vector<float> want = hstu_rab(b, H, cu[seq], len, lmax, lmax);
    for (int h = 0; h < H; ++h)
      for (int i = 0; i * T::BM < len; ++i) {
        const fwd::QueryTile qt = fwd::query_tile<T::BM>(p, int(seq), h, h, i);
        for (int k0 = 0; k0 < len + BN; k0 += BN)  // one KV tile past the end: keys beyond it read nothing
          for (int w = 0; w < T::NWARPS; ++w)
            for (int lane = 0; lane < 32; ++lane) {
              const int warp_row = w * 16 * T::MT;
              float s[T::MT][T::NT][4];
              auto row = [&](int mt, int e) { return qt.q0 + warp_row + mt * 16 + lane / 4 + 8 * (e / 2); };
              auto key = [&](int nt, int e) { return k0 + nt * 8 + 2 * (lane % 4) + e % 2; };
              for (int mt = 0; mt < T::MT; ++mt)
                for (int nt = 0; nt < T::NT; ++nt)
                  for (int e = 0; e < 4; ++e) s[mt][nt][e] = raw(row(mt, e), key(nt, e));
              const fwd::RabRows<T> rows(r, qt, warp_row, lane);
              fwd::add_rab_tile<T>(s, scale, r, rows, qt, k0, lane);
              for (int mt = 0; mt < T::MT; ++mt)
                for (int nt = 0; nt < T::NT; ++nt)
                  for (int e = 0; e < 4; ++e) {
                    const int q = row(mt, e), k = key(nt, e);
                    const float bias = q < len && k < len ? want[size_t((int64_t(h) * len + q) * len + k)] : 0.f;
                    const float expect = raw(q, k) * scale + bias;
                    bad += std::fabs(s[mt][nt][e] - expect) > 1e-6f * (1.f + std::fabs(expect));
                    ++checked;
                  }
            }
      }
  }
  CHECK(checked > 0);
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("add_rab_tile: every lane's S fragments get the bias of their own (query, key) pair, nothing past the ends") {
  const int H = 2;
  const std::vector<int32_t> cu = {0, 70, 71, 71 + 200};  // lengths 70, 1, 200: tails in rows and keys
  const int64_t total = cu.back(), lmax = 200;
  Rng rng(77);
  HstuBias b;
  b.pos_len = 90;
  b.ts_buckets = 60;
  for (int64_t e = 0; e < H * b.pos_len; ++e) b.pos.push_back(float(rng.uniform() * 2 - 1));
  for (int64_t e = 0; e < H * b.ts_buckets; ++e) b.ts.push_back(float(rng.uniform() * 2 - 1));
  double t = 1e9;
  for (int64_t r = 0; r < total; ++r) b.timestamps.push_back(t), t += std::floor(std::exp(rng.uniform() * 16.0));
  for (int64_t e = 0; e < H * lmax * lmax; ++e) b.dense.push_back(float(rng.uniform() * 2 - 1));
  const std::vector<double> bounds = hstu_ts_bucket_bounds(b.ts_buckets);
  RabParams r;
  r.pos = b.pos.data(), r.pos_len = int(b.pos_len);
  r.ts = b.ts.data(), r.ts_buckets = int(b.ts_buckets), r.timestamps = b.timestamps.data(), r.ts_bounds = bounds.data();
  r.dense = b.dense.data(), r.dense_q = r.dense_k = int(lmax);
  check_tiles<Warp16>(b, r, cu, H);
  check_tiles<Warp32>(b, r, cu, H);
}
