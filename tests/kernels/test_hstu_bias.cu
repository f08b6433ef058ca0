// Host-side checks of the kernels' HSTU relative bias (kernels/fwd/bias.cuh), no GPU needed: the bucket
// edges lib/hstu computes (hstu_ts_bucket_bounds) against its own hstu_ts_bucket, at random differences
// and on both sides of every edge; the kernels' bucket from a guess one bucket off either way; and
// rab_value, compiled for the host, against hstu_rab element by element (bit-identical: the same float32
// terms added in the same order) over a jagged batch with per-head tables.
#include <doctest/doctest.h>

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
