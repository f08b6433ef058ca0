// HSTU's relative attention bias (docs/hstu.md) computed in the kernel, on a warp's S fragments: for
// query position i and key position j of one sequence (positions within it),
//   rab = pos[h, min(|i - j|, Np - 1)] + ts[h, bucket(|t[min(i + 1, L - 1)] - t[j]|)] + dense[h, i, j],
// each term only when its table is given. Each term is one pass over the fragment, chosen once per tile
// (a uniform branch outside the unrolled pair loops): s = m * s + term, with m the launch's scale in the
// first pass and 1 in the others, so the scores come out as scale * s + pos + ts + dense (rounded per
// add, where lib/hstu's hstu_rab sums the terms first: the same float32 values to within a few ulp).
// The timestamp bucket floor(ln(max(|dt|, 1)) / 0.301) is guessed from a float32 logarithm and, only
// when the guess lies near a bucket edge, settled against the exact edges lib/hstu computes in double
// precision (RabParams::ts_bounds), so the bucket is the CPU reference's, not an approximation of it.
// Every load stays inside its table for every pair of a tile, also for rows and keys past the sequence
// end (their indices are clamped, or their distances are, which are in range anyway); such pairs get a
// finite, meaningless bias, and the callers zero them after the SiLU (keys past the end: the boundary
// tile's mask) or never store them (rows past the end).
// Everything here also compiles for the host: tests/kernels checks ts_bucket against lib/hstu's
// hstu_ts_bucket, rab_value against hstu_rab, and add_rab_tile's fragment indexing for every lane of a
// warp, on the CPU.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fwd/block.cuh"
#include "kernels/fwd_params.h"

namespace bsattn::cuda::fwd {

// Host code only: when set, called with the address and size of every table read (tests/kernels checks
// that each lies inside its table).
inline void (*rab_host_read_hook)(const void* p, size_t bytes) = nullptr;

template <class X>
__host__ __device__ __forceinline__ X rab_load(const X* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  if (rab_host_read_hook) rab_host_read_hook(p, sizeof(X));
  return *p;
#endif
}

// p, opaque to the compiler: a table's base stays one 64-bit pointer, so that an index costs one
// IMAD.WIDE per load rather than 64-bit index arithmetic redone for each; and it is formed where the
// pass runs, once per tile, rather than kept in registers across the main loop.
template <class X>
__host__ __device__ __forceinline__ const X* rab_base(const X* p) {
#ifdef __CUDA_ARCH__
  asm volatile("" : "+l"(p));
#endif
  return p;
}

// x, fixed where it is: the compiler may not move the computation of x past this point (the timestamp
// pass's branches would otherwise collect every pair's add, and its table value, to the pass's end).
__host__ __device__ __forceinline__ void rab_pin(float& x) {
#ifdef __CUDA_ARCH__
  asm volatile("" : "+f"(x));
#else
  (void)x;
#endif
}

__host__ __device__ __forceinline__ int rab_float_bits(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_int(x);
#else
  int i;
  std::memcpy(&i, &x, sizeof i);
  return i;
#endif
}

__host__ __device__ __forceinline__ int rab_iabs(int x) {
#ifdef __CUDA_ARCH__
  return abs(x);
#else
  return x < 0 ? -x : x;
#endif
}

// The exact bucket of |dt| = adt from any guess: bucket b holds [bounds[b], bounds[b + 1]) (bounds is
// non-decreasing, bounds[0] = 0 and bounds[buckets] = +inf), found by stepping from the guess.
__host__ __device__ __forceinline__ int ts_bucket_settle(double adt, int guess, int buckets, const double* bounds) {
  int b = guess < 0 ? 0 : guess > buckets - 1 ? buckets - 1 : guess;
  while (b + 1 < buckets && adt >= rab_load(bounds + b + 1)) ++b;
  while (b > 0 && adt < rab_load(bounds + b)) --b;
  return b;
}

// Bucket counts up to TS_FAST_BUCKETS have their last finite edge (the lower edge of the last bucket,
// at most exp(0.301 * 292) < 2^127) inside float's range: a gap whose float is infinite, or whose guess
// reaches the last bucket, is in the last bucket. More buckets put edges past float's range; their
// guess is capped at TS_FAST_BUCKETS - 1 and settled there against the exact edges.
constexpr int TS_FAST_BUCKETS = 293;

// The largest guess ts_bucket takes as it is: half a bucket into the last one (its floor is the last
// bucket and its fraction is far from an edge), or TS_FAST_BUCKETS - 1 (an integer: settled).
__host__ __device__ __forceinline__ float ts_guess_max(int buckets) {
  return buckets <= TS_FAST_BUCKETS ? float(buckets) - 0.5f : float(TS_FAST_BUCKETS - 1);
}

// The guess of HSTU's timestamp bucket of |dt| = adt (gmax = ts_guess_max(buckets)):
//   g = log2(float(adt)) * (ln 2 / 0.301), clamped to [1/2, gmax],
// within 7e-5 of ln(max(adt, 1)) / 0.301 below gmax: the rounding of adt to float moves log2 by under
// 1e-7, lg2.approx errs by at most 2 ulp of a result below 128 (1.6e-5; 2^-22 absolute below 2), the
// constant's and the product's roundings add 1.7e-5 and half an ulp of a g below 512 (1.6e-5). A gap
// below 1 clamps to g = 1/2 (bucket 0), an infinite float to gmax.
__host__ __device__ __forceinline__ float ts_guess(double adt, float gmax) {
#ifdef __CUDA_ARCH__
  float l;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(l) : "f"(float(adt)));
#else
  const float l = std::log2(float(adt));
#endif
  return fminf(fmaxf(l * 2.30281455f, 0.5f), gmax);
}

// The exact bucket of adt from a guess g in [0, 4096) within 4.8e-4 of ln(max(adt, 1)) / 0.301. One add
// of 1.5 * 2^13 rounds g to n / 1024 (n = round(1024 g), in the low mantissa bits of the sum). Unless
// n % 1024 is 0, g is at least 1/2048 from the nearest integer, farther than the guess errs, so
// floor(n / 1024) is the bucket; only when n % 1024 is 0 (g within 1/2048 of an integer: about 0.1% of
// pairs) are the exact edges read.
__host__ __device__ __forceinline__ int ts_bucket_of_guess(double adt, float g, int buckets, const double* bounds) {
  const int n = rab_float_bits(g + 12288.f);  // 0x46400000 (12288) + round(1024 g): g + 12288 < 2^14
  const int b = (n >> 10) - (0x46400000 >> 10);
  if ((n & 1023) == 0) return ts_bucket_settle(adt, b, buckets, bounds);
  return b;
}

// HSTU's timestamp bucket of |dt| = adt, as lib/hstu's hstu_ts_bucket computes it.
__host__ __device__ __forceinline__ int ts_bucket(double adt, int buckets, float gmax, const double* bounds) {
  return ts_bucket_of_guess(adt, ts_guess(adt, gmax), buckets, bounds);
}
__host__ __device__ __forceinline__ int ts_bucket(double adt, int buckets, const double* bounds) {
  return ts_bucket(adt, buckets, ts_guess_max(buckets), bounds);
}

// rab of one pair: query head h, positions i (query) and j (key) in the sequence, tq the timestamp the
// query is scored with (t[min(i + 1, L - 1)]) and tk the key's (unread without a timestamp table). The
// terms added in hstu_rab's order; the reference for the passes of add_rab_tile.
__host__ __device__ __forceinline__ float rab_value(const RabParams& r, int h, int i, int j, double tq, double tk) {
  float x = 0.f;
  if (r.pos) {
    const int d = i > j ? i - j : j - i;
    x += rab_load(r.pos + h * r.pos_len + (d < r.pos_len - 1 ? d : r.pos_len - 1));
  }
  if (r.ts) x += rab_load(r.ts + h * r.ts_buckets + ts_bucket(fabs(tq - tk), r.ts_buckets, r.ts_bounds));
  if (r.dense) x += rab_load(r.dense + (int64_t(h) * r.dense_q + i) * r.dense_k + j);
  return x;
}

// The timestamp query position i (of a sequence of length len >= 1 starting at packed row start) is
// scored with; rows past the sequence end read its last timestamp.
__host__ __device__ __forceinline__ double rab_query_time(const RabParams& r, int start, int len, int i) {
  return r.ts ? rab_load(r.timestamps + start + (i + 1 < len ? i + 1 : len - 1)) : 0.0;
}

// A thread's rows of one query tile (the mma.sync C layout: row lane/4 + 8h of each m16 tile mt, from
// warp_row), read once per tile: the warp's first row, this lane's first row (row (mt, h) is
// i0 + 16 mt + 8 h; positions >= len_q are rows past the sequence end) and each row's query timestamp.
template <class T>
struct RabRows {
  int first, i0;
  double tq[T::MT][2];
  __host__ __device__ __forceinline__ RabRows(const RabParams& r, const QueryTile& qt, int warp_row, int lane)
      : first(qt.q0 + warp_row), i0(qt.q0 + warp_row + (lane >> 2)) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) tq[mt][h] = rab_query_time(r, qt.q_start, qt.len_q, i0 + mt * 16 + h * 8);
  }
};

// The pair loops of the passes. Element (mt, nt, 2h + c) of a fragment is row i0 + 16 mt + 8 h and key
// jb + 8 nt + c, with jb = k0 + 2 (lane % 4) this lane's first key.

// The position term: i - j of element (mt, nt, 2h + c) is a - 8 u - c with a = i0 - jb and u = nt - 2 mt - h,
// so the lane's 4 MT NT pairs have only 2 (NT + 2 MT - 1) distinct distances: one load for each, added
// to every element that has it. Per tile the warp's range of i - j picks the form of the load: all on
// one side of the diagonal and within the table (an offset from one pointer), all past the table's end
// (one entry), or else |i - j| clamped per distance.
template <class T>
__host__ __device__ __forceinline__ void rab_pos_pass(float (&s)[T::MT][T::NT][4], float m, const RabParams& r,
                                                      const RabRows<T>& rows, int h, int k0, int lane) {
  constexpr int BN = T::NT * 8;
  const float* pos = rab_base(r.pos + h * r.pos_len);
  const int last = r.pos_len - 1;
  const int a = rows.i0 - k0 - 2 * (lane & 3);
  const int lo = rows.first - (k0 + BN - 1), hi = rows.first + 16 * T::MT - 1 - k0;  // the warp's i - j
  auto pass = [&](auto entry) {  // entry(o): the table entry of i - j = a - o
#pragma unroll
    for (int u = 1 - 2 * T::MT; u < T::NT; ++u)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float v = entry(8 * u + c);
#pragma unroll
        for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int nt = u + 2 * mt + hh;
            if (nt >= 0 && nt < T::NT) s[mt][nt][2 * hh + c] = fmaf(s[mt][nt][2 * hh + c], m, v);
          }
      }
  };
  if (lo >= 0 && hi <= last) {  // i >= j, no clamp: pos[a - o]
    const float* p = pos + a;
    pass([&](int o) { return rab_load(p - o); });
  } else if (hi <= 0 && -lo <= last) {  // i <= j, no clamp: pos[o - a]
    const float* p = pos - a;
    pass([&](int o) { return rab_load(p + o); });
  } else if (lo >= last || -hi >= last) {  // every |i - j| clamps to the last entry
    const float v = rab_load(pos + last);
    pass([&](int) { return v; });
  } else {
    pass([&](int o) {
      const int d = rab_iabs(a - o);
      return rab_load(pos + unsigned(d < last ? d : last));
    });
  }
}

// The timestamp term: each key's timestamp read once per tile (keys past the sequence end take the
// first row's query timestamp: a finite gap, no read), then per pair the exact double difference and
// ts_bucket (a float guess; the exact edges only near one).
template <class T>
__host__ __device__ __forceinline__ void rab_ts_pass(float (&s)[T::MT][T::NT][4], float m, const RabParams& r,
                                                     const RabRows<T>& rows, const QueryTile& qt, int k0, int lane) {
  const float* ts = rab_base(r.ts + qt.h * r.ts_buckets);
  const int jb = k0 + 2 * (lane & 3);
  const double* tk = rab_base(r.timestamps + qt.k_start + jb);
  const int nk = qt.len_k - jb;  // offsets o < nk from jb are keys of the sequence
  const float gmax = ts_guess_max(r.ts_buckets);
#pragma unroll
  for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int o = nt * 8 + c;
      const double t = o < nk ? rab_load(tk + o) : rows.tq[0][0];
#pragma unroll
      for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          float& x = s[mt][nt][2 * hh + c];
          x = fmaf(x, m, rab_load(ts + ts_bucket(fabs(rows.tq[mt][hh] - t), r.ts_buckets, gmax, r.ts_bounds)));
          rab_pin(x);
        }
    }
}

// The dense term: a row pointer per row and tile (rows past the sequence end read its last row), an
// offset per pair; keys past the end (the last tile of a row) read the row's last key.
template <class T>
__host__ __device__ __forceinline__ void rab_dense_pass(float (&s)[T::MT][T::NT][4], float m, const RabParams& r,
                                                        const RabRows<T>& rows, const QueryTile& qt, int k0,
                                                        int lane) {
  const int jb = k0 + 2 * (lane & 3);
  const bool tail = k0 + T::NT * 8 > qt.len_k;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int i = rows.i0 + 16 * mt + 8 * hh;
      const float* row = rab_base(r.dense + (int64_t(qt.h) * r.dense_q + (i < qt.len_q ? i : qt.len_q - 1)) * r.dense_k);
      if (!tail) {
        const float* p = rab_base(row + jb);
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            float& x = s[mt][nt][2 * hh + c];
            x = fmaf(x, m, rab_load(p + nt * 8 + c));
          }
      } else {
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int j = jb + nt * 8 + c;
            float& x = s[mt][nt][2 * hh + c];
            x = fmaf(x, m, rab_load(row + unsigned(j < qt.len_k ? j : qt.len_k - 1)));
          }
      }
    }
}

// s = scale * s + rab on a warp's S fragments (MT m16 tiles of rows, NT n8 tiles of keys from key k0; the
// mma.sync C layout, which is also each warp's part of a wgmma accumulator), for self-attention: the
// keys are the sequence's own tokens (qt.k_start == qt.q_start). Pairs past the sequence end (rows or
// keys) get a finite bias read from inside the tables; the caller masks them, and causally hidden
// pairs, after.
template <class T>
__host__ __device__ __forceinline__ void add_rab_tile(float (&s)[T::MT][T::NT][4], float scale, const RabParams& r,
                                                      const RabRows<T>& rows, const QueryTile& qt, int k0, int lane) {
  float m = scale;  // the first pass scales the scores
  if (r.pos) {
    rab_pos_pass<T>(s, m, r, rows, qt.h, k0, lane);
    m = 1.f;
  }
  if (r.ts) {
    rab_ts_pass<T>(s, m, r, rows, qt, k0, lane);
    m = 1.f;
  }
  if (r.dense) {
    rab_dense_pass<T>(s, m, r, rows, qt, k0, lane);
    m = 1.f;
  }
  if (m != 1.f) {  // no table: the scale alone
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] *= m;
  }
}

}  // namespace bsattn::cuda::fwd
