// HSTU's relative attention bias (docs/hstu.md) computed in the kernel, on a warp's S fragments: for
// query position i and key position j of one sequence (positions within it),
//   rab = pos[h, min(|i - j|, Np - 1)] + ts[h, bucket(|t[min(i + 1, L - 1)] - t[j]|)] + dense[h, i, j],
// each term only when its table is given, added in that order in float32 as lib/hstu's hstu_rab does.
// The timestamp bucket floor(ln(max(|dt|, 1)) / 0.301) is guessed from a float32 logarithm and then
// settled against the exact edges lib/hstu computes in double precision (RabParams::ts_bounds), so the
// bucket is the CPU reference's, not an approximation of it.
// Everything here also compiles for the host: tests/kernels checks rab_value against lib/hstu's hstu_rab,
// and add_rab_tile's fragment indexing for every lane of a warp, on the CPU.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/fwd/block.cuh"
#include "kernels/fwd_params.h"

namespace bsattn::cuda::fwd {

template <class X>
__host__ __device__ __forceinline__ X rab_load(const X* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// The exact bucket of |dt| = adt from a guess at most one bucket off: bucket b holds [bounds[b], bounds[b+1]).
__host__ __device__ __forceinline__ int ts_bucket_settle(double adt, int guess, int buckets, const double* bounds) {
  int b = guess < 0 ? 0 : guess > buckets - 1 ? buckets - 1 : guess;
  if (b + 1 < buckets && adt >= rab_load(bounds + b + 1)) ++b;
  else if (b > 0 && adt < rab_load(bounds + b)) --b;
  return b;
}

// HSTU's timestamp bucket of |dt| = adt: log2 in float32 (ln x / 0.301 = log2 x * (ln 2 / 0.301)). The
// float value g is within 1e-3 of ln(adt) / 0.301 (the roundings of adt to float, of log2 and of the
// product add up to under 3e-4 for any g below 2400, the largest a double reaches), so its floor is the
// bucket unless g lies within 1/64 of an integer; only then (about 3% of pairs) are the exact edges read.
__host__ __device__ __forceinline__ int ts_bucket(double adt, int buckets, const double* bounds) {
  // Past float's range (gaps over 2^100, which real timestamps never have) log2 goes by the exponent.
  float x = fmaxf(float(adt), 1.f), e = 0.f;
  if (adt >= 0x1p100) {
    int ex = 0;
    x = float(frexp(adt, &ex));  // adt = x * 2^ex, x in [0.5, 1) (an infinite adt stays infinite)
    e = float(ex);
  }
#ifdef __CUDA_ARCH__
  const float l = __log2f(x) + e;
#else
  const float l = std::log2(x) + e;
#endif
  const float g = fminf(l * 2.30281455f, float(buckets));  // also bounds an infinite adt before the int conversion
  const float f = g - floorf(g);
  if (f > 1.f / 64 && f < 63.f / 64) return int(g) < buckets - 1 ? int(g) : buckets - 1;
  return ts_bucket_settle(adt, int(g), buckets, bounds);
}

// rab of one pair: query head h, positions i (query) and j (key) in the sequence, tq the timestamp the
// query is scored with (t[min(i + 1, L - 1)]) and tk the key's (unread without a timestamp table).
__host__ __device__ __forceinline__ float rab_value(const RabParams& r, int h, int i, int j, double tq, double tk) {
  float x = 0.f;
  if (r.pos) {
    const int d = i > j ? i - j : j - i;
    x += rab_load(r.pos + int64_t(h) * r.pos_len + (d < r.pos_len - 1 ? d : r.pos_len - 1));
  }
  if (r.ts) x += rab_load(r.ts + int64_t(h) * r.ts_buckets + ts_bucket(fabs(tq - tk), r.ts_buckets, r.ts_bounds));
  if (r.dense) x += rab_load(r.dense + (int64_t(h) * r.dense_q + i) * r.dense_k + j);
  return x;
}

// The timestamp query position i (of a sequence of length len starting at packed row start) is scored with.
__host__ __device__ __forceinline__ double rab_query_time(const RabParams& r, int start, int len, int i) {
  return r.ts ? rab_load(r.timestamps + start + (i + 1 < len ? i + 1 : len - 1)) : 0.0;
}

// A thread's rows of one query tile (the mma.sync C layout: row lane/4 + 8r of each m16 tile, from
// warp_row), read once per tile: each row's position in its sequence and its query timestamp.
template <class T>
struct RabRows {
  int i[T::MT][2];     // position in the sequence; >= len_q for rows past the sequence end
  double tq[T::MT][2];
  __host__ __device__ __forceinline__ RabRows(const RabParams& r, const QueryTile& qt, int warp_row, int lane) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        i[mt][h] = qt.q0 + warp_row + mt * 16 + (lane >> 2) + h * 8;
        tq[mt][h] = i[mt][h] < qt.len_q ? rab_query_time(r, qt.q_start, qt.len_q, i[mt][h]) : 0.0;
      }
  }
};

// s = scale * s + rab on a warp's S fragments (MT m16 tiles of rows, NT n8 tiles of keys from key k0; the
// mma.sync C layout, which is also each warp's part of a wgmma accumulator), for self-attention: the
// keys are the sequence's own tokens (qt.k_start == qt.q_start). Pairs past the sequence end (rows or
// keys) get scale * s only and read nothing; the caller masks them, and causally hidden pairs, after.
template <class T>
__host__ __device__ __forceinline__ void add_rab_tile(float (&s)[T::MT][T::NT][4], float scale, const RabParams& r,
                                                      const RabRows<T>& rows, const QueryTile& qt, int k0, int lane) {
#pragma unroll
  for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int j = k0 + nt * 8 + ((lane & 3) << 1) + c;
      const bool key_ok = j < qt.len_k;
      const double tk = r.ts && key_ok ? rab_load(r.timestamps + qt.k_start + j) : 0.0;
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float& x = s[mt][nt][2 * h + c];
          x *= scale;
          if (key_ok && rows.i[mt][h] < qt.len_q) x += rab_value(r, qt.h, rows.i[mt][h], j, rows.tq[mt][h], tk);
        }
    }
}

}  // namespace bsattn::cuda::fwd
