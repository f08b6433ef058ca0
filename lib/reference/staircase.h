// The CPU forward's products, S = (scale Q) K^T and O += P V, for a query block and a chunk of key
// columns where row r sees a prefix of the columns: all of them without causal, across the causal
// diagonal a prefix that grows with r (a staircase; most of the work of a causal mask with few kept blocks
// per row). The kernels keep R x L tiles in vector registers and stop each row tile at the last column its
// last row sees. Eigen's GEMM, which they replace, computes whole rectangles and packs both operands on
// every call: at these sizes (128 rows, up to 512 columns, D = 64 or 128) the kernels timed about a fifth
// faster on dense and sparse masks too (2-vCPU AMD EPYC dev VM, AVX-512).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "lib/reference/simd.h"

namespace bsattn {

namespace staircase {

// One step of an L x L transpose in registers: lanes j with bit h set of row a trade places with lanes
// j - h of row b (rows a and b are h apart). The steps h = L/2, ..., 2, 1 on every such pair of rows
// transpose the L rows.
template <class T, int64_t H, size_t... J>
inline void trade_lanes(Vec<T>& a, Vec<T>& b, std::index_sequence<J...>) {
  constexpr int64_t L = kLanes<T>;
  const Vec<T> lo = __builtin_shufflevector(a, b, ((J & H) ? L + J - H : J)...);
  const Vec<T> hi = __builtin_shufflevector(a, b, ((J & H) ? L + J : J + H)...);
  a = lo, b = hi;
}
template <class T, int64_t H>
inline void transpose_step(Vec<T>* x) {
  if constexpr (H >= 1) {
    for (int64_t i = 0; i < kLanes<T>; ++i)
      if (!(i & H)) trade_lanes<T, H>(x[i], x[i + H], std::make_index_sequence<size_t(kLanes<T>)>());
    transpose_step<T, H / 2>(x);
  }
}

// kt[d][c] = k[c][d] for c < n, d < D, and 0 for n <= c < n rounded up to whole vectors: k row-major
// (ldk), kt row-major (ldt). In L x L tiles transposed in registers, each row of k read once, L elements
// at a time (k's rows may be thousands of elements apart: element by element, down a column of k, took
// longer than the products). Returns whether every element of k read was finite (the forward checks its
// inputs here, where they are in registers anyway): x * 0 is NaN exactly for a NaN or an Inf x.
template <class T>
bool transpose_keys(const T* k, int64_t ldk, int64_t n, int64_t D, T* kt, int64_t ldt) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> probe{};
  T probe_tail = 0;
  for (int64_t c = 0; c < n; c += L) {
    const int64_t m = std::min(L, n - c);
    int64_t d = 0;
    for (; d + L <= D; d += L) {
      Vec<T> x[L] = {};
      for (int64_t i = 0; i < m; ++i) {
        load_vec(x[i], k + (c + i) * ldk + d);
        probe += x[i] * T(0);
      }
      transpose_step<T, L / 2>(x);
      for (int64_t i = 0; i < L; ++i) store_vec(kt + (d + i) * ldt + c, x[i]);
    }
    for (; d < D; ++d)  // D not a multiple of the vector
      for (int64_t i = 0; i < L; ++i) {
        const T x = i < m ? k[(c + i) * ldk + d] : T(0);
        probe_tail += x * T(0);
        kt[d * ldt + c + i] = x;
      }
  }
  const T sum = reduce_lanes<T>(probe, [](Vec<T>& a, const Vec<T>& b) { a += b; }) + probe_tail;
  return sum == sum;
}

// A tile's R x N accumulators, number I = r * N + j, each a member of its own: GCC keeps an array of
// vectors on the stack as well as in registers (a memset, a store and a reload of every accumulator per
// tile), separate members only in registers.
template <class T, size_t I>
struct Accumulator {
  Vec<T> v{};
};
template <class T, class Seq>
struct Accumulators;
template <class T, size_t... I>
struct Accumulators<T, std::index_sequence<I...>> : Accumulator<T, I>... {
  template <size_t J>
  Vec<T>& at() {
    return static_cast<Accumulator<T, J>&>(*this).v;
  }
};

// c[r][0, N*L) = (or +=, ADD) sum_{k < K} a[r][k] * b[k][0, N*L) for r < R (R * N = sizeof...(I)): a, b, c
// row-major (lda, ldb, ldc). Each step of k loads N vectors of b's row and broadcasts R elements of a. The
// scores are S = Q K^T with b the keys transposed (K = D); the weighted sums O += P V (K = the columns).
template <bool ADD, class T, int N, size_t... I>
inline void tile_product(const T* a, int64_t lda, const T* b, int64_t ldb, int64_t K, T* c, int64_t ldc,
                         std::index_sequence<I...>) {
  constexpr int64_t L = kLanes<T>;
  Accumulators<T, std::index_sequence<I...>> acc;
  for (int64_t k = 0; k < K; ++k) {
    Vec<T> x[N];
    for (int j = 0; j < N; ++j) load_vec(x[j], b + k * ldb + j * L);
    ((acc.template at<I>() += a[int64_t(I / N) * lda + k] * x[I % N]), ...);
  }
  auto put = [](T* out, const Vec<T>& v) {
    if constexpr (ADD) {
      Vec<T> sum;
      load_vec(sum, out);
      store_vec(out, sum + v);
    } else {
      store_vec(out, v);
    }
  };
  (put(c + int64_t(I / N) * ldc + int64_t(I % N) * L, acc.template at<I>()), ...);
}

// Rows per tile: 8, times 2 vectors (16 accumulators; 32 columns of S, or of O, for float). Scores use a
// tile of one vector where the staircase needs at most one more vector of columns (16 for float, the
// granularity of the skipped triangle). Weighted sums: 4 rows x 4 vectors timed slower (GCC read each
// vector of V from memory once per row instead of keeping it in a register).
constexpr int kScoreRows = 8;
constexpr int kWeightRows = 8;

// Scores of rows [0, rows) over kt's columns: row tile [r, r + R) computes the columns [0, need(r + R - 1))
// rounded up to whole vectors (kt and s must have them: zero columns past the keys in kt). need(row) is
// the number of columns row `row` sees (non-decreasing in row).
template <class T, class Need>
void scores(const T* q, int64_t ldq, const T* kt, int64_t ldk, int64_t D, T* s, int64_t lds, int64_t rows,
            const Need& need) {
  constexpr int64_t L = kLanes<T>;
  auto row_tile = [&](auto rows_c, int64_t r) {
    constexpr int R = decltype(rows_c)::value;
    const int64_t n = need(r + R - 1);
    int64_t c = 0;
    for (; c + L < n; c += 2 * L)
      tile_product<false, T, 2>(q + r * ldq, ldq, kt + c, ldk, D, s + r * lds + c, lds, std::make_index_sequence<2 * R>());
    if (c < n) tile_product<false, T, 1>(q + r * ldq, ldq, kt + c, ldk, D, s + r * lds + c, lds, std::make_index_sequence<R>());
  };
  int64_t r = 0;
  for (; r + kScoreRows <= rows; r += kScoreRows) row_tile(std::integral_constant<int, kScoreRows>(), r);
  for (; r < rows; ++r) row_tile(std::integral_constant<int, 1>(), r);
}

// o[r][0, D) += sum_{c < need(r)} p[r][c] * v[c][0, D) for r < rows, where p[r][c] = 0 for c >= need(r)
// (a row tile runs to its last row's need).
template <class T, class Need>
void weighted(const T* p, int64_t ldp, const T* v, int64_t ldv, int64_t D, T* o, int64_t ldo, int64_t rows,
              const Need& need) {
  constexpr int64_t L = kLanes<T>;
  auto row_tile = [&](auto rows_c, int64_t r) {
    constexpr int R = decltype(rows_c)::value;
    const int64_t n = need(r + R - 1);
    if (n <= 0) return;
    const T* pr = p + r * ldp;
    T* orow = o + r * ldo;
    int64_t d = 0;
    for (; d + 2 * L <= D; d += 2 * L)
      tile_product<true, T, 2>(pr, ldp, v + d, ldv, n, orow + d, ldo, std::make_index_sequence<2 * R>());
    for (; d + L <= D; d += L)
      tile_product<true, T, 1>(pr, ldp, v + d, ldv, n, orow + d, ldo, std::make_index_sequence<R>());
    for (; d < D; ++d)  // D not a multiple of the vector
      for (int i = 0; i < R; ++i) {
        T sum = 0;
        for (int64_t c = 0; c < n; ++c) sum += pr[i * ldp + c] * v[c * ldv + d];
        orow[i * ldo + d] += sum;
      }
  };
  int64_t r = 0;
  for (; r + kWeightRows <= rows; r += kWeightRows) row_tile(std::integral_constant<int, kWeightRows>(), r);
  for (; r < rows; ++r) row_tile(std::integral_constant<int, 1>(), r);
}

}  // namespace staircase
}  // namespace bsattn
