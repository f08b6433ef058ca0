// One vector of T through GCC's vector extensions (clang has them too), as wide as the target's widest
// registers: 64 bytes (an AVX-512 register) when the build has AVX-512, 32 (AVX2) with AVX, 16 (SSE) in a
// portable x86-64 build. Wider than the registers, GCC splits every operation and the kernels' accumulators
// no longer fit: a portable build with 64-byte vectors ran the forward 10x slower than with 16-byte ones.
// For the CPU reference's own kernels (lib/reference/staircase.h) and row reductions, where Eigen's
// expressions on short dynamic rows cost more in set-up and in their generic horizontal reductions than the
// arithmetic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

namespace bsattn {

#if defined(__AVX512F__)
#define BSATTN_VEC_BYTES 64
#elif defined(__AVX__)
#define BSATTN_VEC_BYTES 32
#else
#define BSATTN_VEC_BYTES 16
#endif

template <class T>
struct Simd;
template <>
struct Simd<float> {
  typedef float type __attribute__((vector_size(BSATTN_VEC_BYTES)));
  typedef float unaligned __attribute__((vector_size(BSATTN_VEC_BYTES), aligned(4), __may_alias__));  // as __m512_u
};
template <>
struct Simd<double> {
  typedef double type __attribute__((vector_size(BSATTN_VEC_BYTES)));
  typedef double unaligned __attribute__((vector_size(BSATTN_VEC_BYTES), aligned(8), __may_alias__));
};
template <class T>
using Vec = typename Simd<T>::type;
template <class T>
constexpr int64_t kLanes = int64_t(sizeof(Vec<T>) / sizeof(T));

// Vectors go by reference: by value, GCC warns that the ABI differs between instruction sets (-Wpsabi).
// Through the unaligned type, not memcpy: with memcpy GCC kept the kernels' accumulators in a stack array
// as well as in registers (a memset of the array per tile).
template <class T>
inline void load_vec(Vec<T>& v, const T* p) {
  v = *reinterpret_cast<const typename Simd<T>::unaligned*>(p);
}
template <class T>
inline void store_vec(T* p, const Vec<T>& v) {
  *reinterpret_cast<typename Simd<T>::unaligned*>(p) = v;
}

// op(a, b) sets a to a op b. Over the lanes of v: each step combines v with v rotated by W lanes (W = L/2, ..., 1).
template <class T, int64_t W, class Op, size_t... J>
inline void combine_rotated(Vec<T>& v, const Op& op, std::index_sequence<J...>) {
  const Vec<T> u = __builtin_shufflevector(v, v, ((J + W) % kLanes<T>)...);
  op(v, u);
}
template <class T, int64_t W = kLanes<T> / 2, class Op>
inline T reduce_lanes(Vec<T>& v, const Op& op) {
  combine_rotated<T, W>(v, op, std::make_index_sequence<size_t(kLanes<T>)>());
  if constexpr (W == 1)
    return v[0];
  else
    return reduce_lanes<T, W / 2>(v, op);
}

// op over x[0, n), n >= 1, reading whole vectors (x must have them): lanes past n count as `neutral`
// (whatever they hold, NaN included).
template <class T, class Op>
inline T reduce_row(const T* x, int64_t n, T neutral, const Op& op) {
  constexpr int64_t L = kLanes<T>;
  const Vec<T> none = Vec<T>{} + neutral;
  Vec<T> lane;
  for (int64_t j = 0; j < L; ++j) lane[j] = T(j);
  Vec<T> acc = none;
  for (int64_t c = 0; c < n; c += L) {
    Vec<T> v;
    load_vec(v, x + c);
    const Vec<T> kept = lane < T(n - c) ? v : none;
    op(acc, kept);
  }
  return reduce_lanes<T>(acc, op);
}

// The largest of x[0, n) (a NaN among them may be skipped) and their sum, as reduce_row reads them.
template <class T>
inline T max_of(const T* x, int64_t n) {
  return reduce_row(x, n, -std::numeric_limits<T>::infinity(),
                    [](Vec<T>& a, const Vec<T>& b) { a = a > b ? a : b; });
}
template <class T>
inline T sum_of(const T* x, int64_t n) {
  return reduce_row(x, n, T(0), [](Vec<T>& a, const Vec<T>& b) { a += b; });
}

}  // namespace bsattn
