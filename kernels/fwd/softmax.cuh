// Score functions of the forward kernels, on a warp's S fragments in fp32 registers: the online
// softmax (running max and sum in the exp2 domain, rescaling of O) and HSTU's SiLU score.
#pragma once
#include <cmath>
#include <cstring>

#include "kernels/fwd/ptx.cuh"

namespace bsattn::cuda::fwd {

// Online softmax over a thread's rows (2 per m16 tile: lane/4 and lane/4 + 8), fp32, exp2 domain.
template <class T>
struct OnlineSoftmax {
  float m[T::MT][2];  // running max of scale*log2(e)*s
  float l[T::MT][2];  // this thread's partial row sum (reduced over the quad in the epilogue)
  __device__ __forceinline__ void init() {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) m[mt][r] = -INFINITY, l[mt][r] = 0.f;
  }
  // s (already scaled to the exp2 domain, masked = -inf) -> p in place; rescales o.
  __device__ __forceinline__ void update(float (&s)[T::MT][T::NT][4], float (&o)[T::MT][T::DT][4]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = m[mt][r];
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float base = mx == -INFINITY ? 0.f : mx;  // a row with nothing visible yet stays at 0
        float corr = exp2f(m[mt][r] - base);
        m[mt][r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) {
          float p0 = exp2f(s[mt][nt][2 * r] - base), p1 = exp2f(s[mt][nt][2 * r + 1] - base);
          s[mt][nt][2 * r] = p0, s[mt][nt][2 * r + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][r] = l[mt][r] * corr + sum;
#pragma unroll
        for (int dt = 0; dt < T::DT; ++dt) o[mt][dt][2 * r] *= corr, o[mt][dt][2 * r + 1] *= corr;
      }
  }
  // Same update on raw scores s (masked = -inf) with scale_log2 = scale * log2(e) > 0: the max is taken
  // raw and scaled once per row, and each p = 2^(s * scale_log2 - m) is one FFMA and one ex2.approx.
  // In two halves, so that a pipelined loop can compute p while the previous P V still accumulates
  // into o: probs() turns s into p and returns each row's correction and whether any lane of the warp
  // needs it; rescale() applies it to o.
  __device__ __forceinline__ bool probs(float (&s)[T::MT][T::NT][4], float scale_log2, float (&corrs)[T::MT][2]) {
    bool rescale = false;
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float m_new = fmaxf(m[mt][r], mx * scale_log2);
        float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet stays at 0
        float corr = ex2(m[mt][r] - base);
        m[mt][r] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < T::NT; ++nt) {
          float p0 = ex2(fmaf(s[mt][nt][2 * r], scale_log2, -base));
          float p1 = ex2(fmaf(s[mt][nt][2 * r + 1], scale_log2, -base));
          s[mt][nt][2 * r] = p0, s[mt][nt][2 * r + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][r] = l[mt][r] * corr + sum;
        corrs[mt][r] = corr;
        rescale |= corr != 1.f;
      }
    // Lazy rescale: once the row maxima settle, most tiles leave every max unchanged (corr == 1
    // exactly): the caller skips the 4*MT*DT multiplies when no lane of the warp needs them. Exact.
    return __any_sync(0xffffffffu, rescale);
  }
  __device__ __forceinline__ static void rescale(float (&o)[T::MT][T::DT][4], const float (&corrs)[T::MT][2]) {
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
      for (int dt = 0; dt < T::DT; ++dt)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mt][dt][e] *= corrs[mt][e >> 1];
  }
  __device__ __forceinline__ void update_raw(float (&s)[T::MT][T::NT][4], float (&o)[T::MT][T::DT][4],
                                             float scale_log2) {
    float corrs[T::MT][2];
    if (probs(s, scale_log2, corrs)) rescale(o, corrs);
  }
};

// SiLU (HSTU): p = SiLU(scale * s) / n for visible pairs, 0 for masked ones; no normalization.
__device__ __forceinline__ float silu_score(float x, float inv_n) { return x / (1.f + __expf(-x)) * inv_n; }

// 1 / d for d in [1, 2^64] on the FMA pipe: a first guess from the exponent bits (relative error
// under 5.1%), then two Newton steps (under 6.7e-6), against the SFU's rcp. Host-compiled too, for
// tests/kernels/test_silu_rcp.cu.
__host__ __device__ __forceinline__ float rcp_fma(float d) {
  int bits;
  memcpy(&bits, &d, 4);
  bits = 0x7EF311C3 - bits;
  float y;
  memcpy(&y, &bits, 4);
  y *= fmaf(-d, y, 2.f);
  y *= fmaf(-d, y, 2.f);
  return y;
}

// SiLU on a whole tile of raw scores (sm90-ws): p = (scale / n) s / (1 + 2^(-scale log2(e) s)); c_exp =
// -scale * log2(e), c_lin = scale / n. Each score takes an ex2 on the SFU (the softmax's one SFU op). Its
// reciprocal goes to the SFU too (rcp) at D = 128, where the FMA pipe is the busier one (rcp_fma there
// was 12-18% slower), but for only SFU_OF_8 of each 8 n8 tiles at D = 64, where two SFU ops per score
// outlast the tile's wgmma: the others take rcp_fma on the FMA pipe (its argument capped at 2^64,
// where p is below 2^-64 |s| scale / n: SiLU's limit 0). A score whose exponent overflows on the SFU path
// gives 2^x = inf and p = 0. Masked pairs are zeroed afterwards (mask_tile with fill 0).
template <class T>
__device__ __forceinline__ void silu_tile(float (&s)[T::MT][T::NT][4], float c_exp, float c_lin) {
  constexpr int SFU_OF_8 = T::D == 64 ? 3 : 8;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float x = s[mt][nt][e];
        const float ex = ex2(x * c_exp);
        const float r = nt % 8 < SFU_OF_8 ? rcp_approx(1.f + ex) : rcp_fma(1.f + fminf(ex, 0x1p64f));
        s[mt][nt][e] = (x * c_lin) * r;
      }
}

// The normalization of one of a thread's rows (m16 tile mt, half r) for the epilogue: 1 / l with l
// summed over the quad, and LSE (natural log; -inf and O = 0 for a row with nothing visible). SiLU rows
// are not normalized.
struct RowNorm {
  float inv, lse;
};
template <class T>
__device__ __forceinline__ RowNorm row_norm(const OnlineSoftmax<T>& sm, int mt, int r) {
  float l = sm.l[mt][r];
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (T::SILU) return {1.f, 0.f};
  return {l > 0.f ? 1.f / l : 0.f, l > 0.f ? (sm.m[mt][r] + __log2f(l)) * 0.69314718055994530942f : -INFINITY};
}
// P (fp32 C fragments) -> 16-bit A fragments of P V, all at once: the fp32 P registers die before the
// V loop starts instead of living through it.
template <class T>
__device__ __forceinline__ void pack_p(const float (&p)[T::MT][T::NT][4], uint32_t (&a)[T::MT][T::BN / 16][4]) {
  using Elem = typename T::Elem;
#pragma unroll
  for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
    for (int j = 0; j < T::BN / 16; ++j) {
      a[mt][j][0] = Mma<Elem>::pack(p[mt][2 * j][0], p[mt][2 * j][1]);
      a[mt][j][1] = Mma<Elem>::pack(p[mt][2 * j][2], p[mt][2 * j][3]);
      a[mt][j][2] = Mma<Elem>::pack(p[mt][2 * j + 1][0], p[mt][2 * j + 1][1]);
      a[mt][j][3] = Mma<Elem>::pack(p[mt][2 * j + 1][2], p[mt][2 * j + 1][3]);
    }
}

}  // namespace bsattn::cuda::fwd
