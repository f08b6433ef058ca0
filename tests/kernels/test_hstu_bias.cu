// Host-side checks of the kernels' HSTU relative bias (kernels/fwd/bias.cuh), no GPU needed: the bucket
// edges lib/hstu computes (hstu_ts_bucket_bounds) against its own hstu_ts_bucket, at random differences
// and on both sides of every edge; the kernels' bucket from any guess (settled) and from a float guess
// off by up to 4.6e-4 either way (the device's guess errs by under 7e-5); rab_value, compiled for the
// host, against hstu_rab element by element (bit-identical: the same float32 terms added in the same
// order) over a jagged batch with per-head tables; and add_rab_tile, run for every lane of every warp of
// every query tile and KV tile (one past the sequence end too), every subset of the terms, against the
// mma.sync C layout written out here (row lane/4 + 8*(e/2) of each m16 tile, key 2*(lane%4) + e%2 of
// each n8 tile), with every table read checked to lie inside its table. Timestamps put many pairs'
// gaps exactly on a bucket edge or one double away from it, and some gaps past float's range.
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

constexpr double kInf = std::numeric_limits<double>::infinity();

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

// Timestamps whose pairwise gaps often sit on a bucket edge of `bounds` (a token at 0 against one at an
// edge, or one double either side of it, or its negative), and some gaps of ~1e300.
std::vector<double> edge_timestamps(int64_t n, const std::vector<double>& bounds, Rng& rng) {
  const int64_t nb = int64_t(bounds.size()) - 1;
  int64_t finite = 1;  // edges 1 .. finite - 1 are finite
  while (finite < nb && std::isfinite(bounds[size_t(finite)])) ++finite;
  std::vector<double> t;
  for (int64_t r = 0; r < n; ++r) {
    const double e = finite > 1 ? bounds[size_t(1 + rng.below(uint64_t(finite - 1)))] : 1.0;
    switch (rng.below(7)) {
      case 0: case 1: t.push_back(0.0); break;
      case 2: t.push_back(e); break;
      case 3: t.push_back(std::nextafter(e, 0.0)); break;
      case 4: t.push_back(-std::nextafter(e, kInf)); break;
      case 5: t.push_back(rng.below(2) ? 1e300 : -1e300); break;
      default: t.push_back(std::floor(std::exp(rng.uniform() * 20.0))); break;
    }
  }
  return t;
}

// Every table read of the bias functions, checked against the tables' extents (bias.cuh's host hook).
struct ReadCheck {
  struct Range {
    const char *begin, *end;
  };
  static inline std::vector<Range> ranges;
  static inline int64_t reads = 0, outside = 0;
  template <class X>
  static void table(const std::vector<X>& v) {
    if (!v.empty()) ranges.push_back({reinterpret_cast<const char*>(v.data()), reinterpret_cast<const char*>(v.data() + v.size())});
  }
  static void hook(const void* p, size_t bytes) {
    const char* c = static_cast<const char*>(p);
    ++reads;
    for (const Range& r : ranges)
      if (c >= r.begin && c + bytes <= r.end) return;
    ++outside;
  }
  ReadCheck() { ranges.clear(), reads = outside = 0, fwd::rab_host_read_hook = &ReadCheck::hook; }
  ~ReadCheck() { fwd::rab_host_read_hook = nullptr; }
};

}  // namespace

TEST_CASE("hstu_ts_bucket_bounds: the edges of hstu_ts_bucket, at random gaps and on both sides of each edge") {
  for (int64_t nb : {1, 2, 7, 33, 129, 293, 294, 400, 3000}) {
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
      CHECK(fwd::ts_bucket(std::nextafter(e, kInf), int(nb), bounds.data()) == b);
    }
    Rng rng(uint64_t(nb) * 7919);
    int mismatches = 0;
    for (int n = 0; n < 20000; ++n) {
      const double g = random_gap(rng);
      const int64_t want = hstu_ts_bucket(g, nb);
      if (fwd::ts_bucket(g, int(nb), bounds.data()) != want) ++mismatches;
      // Settling from any guess: one bucket off either side, the ends of the table, out of range.
      for (int guess : {int(want) - 1, int(want), int(want) + 1, 0, int(nb) - 1, -5, int(nb) + 5})
        if (fwd::ts_bucket_settle(g, guess, int(nb), bounds.data()) != want) ++mismatches;
      // hstu_ts_bucket takes the difference's sign off.
      if (hstu_ts_bucket(-g, nb) != want) ++mismatches;
    }
    CHECK(mismatches == 0);
    // Gaps around the end of float's range and past it, and the largest ones.
    for (double g : {0x1p126, 0x1p127, 0x1.fffffep127, 0x1p128, 0x1p300, std::numeric_limits<double>::max(), kInf})
      CHECK(fwd::ts_bucket(g, int(nb), bounds.data()) == hstu_ts_bucket(g, nb));
  }
  CHECK(fwd::ts_bucket(kInf, 129, hstu_ts_bucket_bounds(129).data()) == 128);
  CHECK(hstu_ts_bucket(kInf, 129) == 128);
  CHECK(hstu_ts_bucket(0.5, 129) == 0);
  CHECK(hstu_ts_bucket(2.0, 129) == 2);  // ln 2 / 0.301 = 2.30
}

TEST_CASE("ts_bucket_of_guess: the exact bucket from a float guess off by up to 4.6e-4 (the device's errs by 7e-5)") {
  for (int64_t nb : {1, 2, 60, 129, 293, 294, 400, 3000}) {
    CAPTURE(nb);
    const std::vector<double> bounds = hstu_ts_bucket_bounds(nb);
    const float gmax = fwd::ts_guess_max(int(nb));
    std::vector<double> gaps;
    Rng rng(uint64_t(nb) * 31 + 5);
    for (int n = 0; n < 20000; ++n) gaps.push_back(random_gap(rng));
    for (int64_t b = 1; b < nb; ++b)
      if (std::isfinite(bounds[size_t(b)]))
        for (double e : {bounds[size_t(b)], std::nextafter(bounds[size_t(b)], 0.0), std::nextafter(bounds[size_t(b)], kInf)})
          gaps.push_back(e);
    int64_t mismatches = 0, checked = 0;
    for (double adt : gaps) {
      const int64_t want = hstu_ts_bucket(adt, nb);
      const double exact = std::log(std::max(adt, 1.0)) / 0.301;  // the value hstu_ts_bucket floors
      for (double off : {-4.6e-4, -2.3e-4, -7e-5, 0.0, 7e-5, 2.3e-4, 4.6e-4}) {
        const float g = float(std::min(std::max(exact + off, 0.5), double(gmax)));  // the device's clamps
        mismatches += fwd::ts_bucket_of_guess(adt, g, int(nb), bounds.data()) != want;
        ++checked;
      }
    }
    CHECK(checked > 0);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("rab_value (the kernels' per-pair bias) equals hstu_rab on a jagged batch, every term alone and together") {
  const int64_t H = 3;
  const std::vector<int64_t> lens = {1, 37, 130, 64};
  std::vector<int64_t> starts = {0};
  for (int64_t l : lens) starts.push_back(starts.back() + l);
  const int64_t total = starts.back(), lmax = 130;
  for (int64_t buckets : {40, 400}) {  // 400: edges past float's range
    CAPTURE(buckets);
    Rng rng(20261203 + uint64_t(buckets));
    const std::vector<double> bounds = hstu_ts_bucket_bounds(buckets);
    HstuBias full;
    full.pos_len = 50;  // shorter than the longest sequence: distances clamp to the last entry
    full.ts_buckets = buckets;
    for (int64_t e = 0; e < H * full.pos_len; ++e) full.pos.push_back(float(rng.uniform() * 2 - 1));
    for (int64_t e = 0; e < H * full.ts_buckets; ++e) full.ts.push_back(float(rng.uniform() * 2 - 1));
    // Timestamps: half of the sequences with random gaps over many buckets (seconds to years, some equal,
    // some decreasing), half with gaps on the bucket edges.
    double t = 1.7e9;
    for (int64_t r = 0; r < total; ++r) {
      full.timestamps.push_back(t);
      const uint64_t kind = rng.below(4);
      t += kind == 0 ? 0.0 : kind == 1 ? -double(rng.below(1000)) : std::floor(std::exp(rng.uniform() * 18.0));
    }
    const std::vector<double> edgy = edge_timestamps(total, bounds, rng);
    for (size_t s = 1; s < lens.size(); s += 2)
      std::copy(edgy.begin() + starts[s], edgy.begin() + starts[s + 1], full.timestamps.begin() + starts[s]);
    for (int64_t e = 0; e < H * lmax * lmax; ++e) full.dense.push_back(float(rng.uniform() * 2 - 1));

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
}

namespace {
// Fragment counts of three warp shapes: sm80-general's 16 rows per warp x 64 keys, sm90-ws's 16 rows x
// 128 keys, and a 32-row warp (two m16 tiles).
struct Warp16 {
  static constexpr int MT = 1, NT = 8, BM = 64, NWARPS = 4;
};
struct Warp16x128 {
  static constexpr int MT = 1, NT = 16, BM = 128, NWARPS = 8;
};
struct Warp32 {
  static constexpr int MT = 2, NT = 4, BM = 128, NWARPS = 4;
};

// The form rab_pos_pass takes for a warp's tile: 0 i >= j within the table, 1 i <= j within it, 2 all
// past its end, 3 mixed.
template <class T>
int pos_form(int first, int k0, int pos_len) {
  const int lo = first - (k0 + T::NT * 8 - 1), hi = first + 16 * T::MT - 1 - k0, last = pos_len - 1;
  if (lo >= 0 && hi <= last) return 0;
  if (hi <= 0 && -lo <= last) return 1;
  if (lo >= last || -hi >= last) return 2;
  return 3;
}

template <class T>
void check_tiles(const HstuBias& full, const std::vector<double>& bounds, const std::vector<int32_t>& cu, int H) {
  constexpr int BN = T::NT * 8;
  bsattn::cuda::FwdParams p;
  p.cu_q = cu.data(), p.cu_k = cu.data();
  p.heads_q = p.heads_kv = H;
  int lmax = 0;
  for (size_t s = 0; s + 1 < cu.size(); ++s) lmax = std::max(lmax, cu[s + 1] - cu[s]);
  p.q_len = p.kv_len = lmax;
  const float scale = 0.375f;
  auto raw = [](int q, int k) { return 0.125f * float(q) - 0.0625f * float(k) + 1.f; };  // a score per pair
  int64_t forms[4] = {0, 0, 0, 0};
  for (int terms = 0; terms < 8; ++terms) {
    CAPTURE(terms);
    HstuBias b;
    RabParams r;
    if (terms & 1) b.pos = full.pos, b.pos_len = full.pos_len, r.pos = b.pos.data(), r.pos_len = int(b.pos_len);
    if (terms & 2) {
      b.ts = full.ts, b.ts_buckets = full.ts_buckets, b.timestamps = full.timestamps;
      r.ts = b.ts.data(), r.ts_buckets = int(b.ts_buckets), r.timestamps = b.timestamps.data(), r.ts_bounds = bounds.data();
    }
    if (terms & 4) b.dense = full.dense, r.dense = b.dense.data(), r.dense_q = r.dense_k = lmax;
    ReadCheck reads;
    ReadCheck::table(b.pos), ReadCheck::table(b.ts), ReadCheck::table(b.timestamps), ReadCheck::table(bounds);
    ReadCheck::table(b.dense);
    int64_t checked = 0, bad = 0, past_end = 0, nonfinite = 0;
    for (size_t seq = 0; seq + 1 < cu.size(); ++seq) {
      const int len = cu[seq + 1] - cu[seq];
      const std::vector<float> want = b.any() ? hstu_rab(b, H, cu[seq], len, lmax, lmax) : std::vector<float>{};
      for (int h = 0; h < H; ++h)
        for (int i = 0; i * T::BM < len; ++i) {
          const fwd::QueryTile qt = fwd::query_tile<T::BM>(p, int(seq), h, h, i);
          for (int k0 = 0; k0 < len + BN; k0 += BN)  // one KV tile past the end as well
            for (int w = 0; w < T::NWARPS; ++w) {
              const int warp_row = w * 16 * T::MT;
              if (terms & 1) ++forms[pos_form<T>(qt.q0 + warp_row, k0, r.pos_len)];
              for (int lane = 0; lane < 32; ++lane) {
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
                      const float got = s[mt][nt][e];
                      if (q >= len || k >= len) {  // any finite value: the kernels mask or drop the pair
                        nonfinite += !std::isfinite(got);
                        ++past_end;
                        continue;
                      }
                      const float bias = b.any() ? want[size_t((int64_t(h) * len + q) * len + k)] : 0.f;
                      const float expect = raw(q, k) * scale + bias;
                      bad += std::fabs(got - expect) > 1e-6f * (1.f + std::fabs(expect));
                      ++checked;
                    }
              }
            }
        }
    }
    CHECK(checked > 0);
    CHECK(bad == 0);
    CHECK(past_end > 0);
    CHECK(nonfinite == 0);
    CHECK((terms == 0 || ReadCheck::reads > 0));
    CHECK(ReadCheck::outside == 0);
  }
  for (int f = 0; f < 4; ++f) {
    CAPTURE(f);
    CHECK(forms[f] > 0);  // each form of the position pass ran
  }
}
}  // namespace

TEST_CASE("add_rab_tile: every lane's S fragments get the bias of their own (query, key) pair, reads stay in the tables") {
  const int H = 2;
  const std::vector<int32_t> cu = {0, 70, 71, 71 + 300, 371 + 150};  // lengths 70, 1, 300, 150: tails in rows and keys
  const int64_t total = cu.back(), lmax = 300;
  for (int64_t buckets : {60, 400}) {
    CAPTURE(buckets);
    Rng rng(77 + uint64_t(buckets));
    const std::vector<double> bounds = hstu_ts_bucket_bounds(buckets);
    HstuBias b;
    b.pos_len = 150;  // shorter than the longest sequence, longer than a 128-key tile: every form of the position pass
    b.ts_buckets = buckets;
    for (int64_t e = 0; e < H * b.pos_len; ++e) b.pos.push_back(float(rng.uniform() * 2 - 1));
    for (int64_t e = 0; e < H * b.ts_buckets; ++e) b.ts.push_back(float(rng.uniform() * 2 - 1));
    double t = 1e9;  // sequence 2 (300 tokens): random increasing gaps; the others: gaps on bucket edges
    for (int64_t r = 0; r < total; ++r) b.timestamps.push_back(t), t += std::floor(std::exp(rng.uniform() * 16.0));
    const std::vector<double> edgy = edge_timestamps(total, bounds, rng);
    for (int s : {0, 1, 3}) std::copy(edgy.begin() + cu[s], edgy.begin() + cu[s + 1], b.timestamps.begin() + cu[s]);
    for (int64_t e = 0; e < H * lmax * lmax; ++e) b.dense.push_back(float(rng.uniform() * 2 - 1));
    check_tiles<Warp16>(b, bounds, cu, H);
    check_tiles<Warp16x128>(b, bounds, cu, H);
    check_tiles<Warp32>(b, bounds, cu, H);
  }
}
