// GPU dense reference: cuBLAS GEMMs around a masking softmax kernel (see dense_reference.h).
#include "kernels/dense_reference.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "lib/error.h"

namespace bsattn::cuda {
namespace {

template <class Elem>
__device__ __forceinline__ Elem from_f(float x) {
  if constexpr (std::is_same_v<Elem, __nv_bfloat16>) return __float2bfloat16_rn(x);
  else return __float2half_rn(x);
}

// One CTA per query row: S row -> P row (Elem) and LSE. Visibility: bitmap block kept, key exists,
// causal bottom-right with the sequence's own lengths.
template <class Elem>
__global__ void masked_softmax_kernel(const float* S, int len_q, int len_k, const uint8_t* head_bits, int mk,
                                      int block_q, int block_kv, bool causal, float scale, bool silu,
                                      float silu_inv_n, Elem* P, float* lse, int64_t lse_stride) {
  int q = blockIdx.x, tid = threadIdx.x, nt = blockDim.x;
  const float* s = S + int64_t(q) * len_k;
  Elem* prow = P + int64_t(q) * len_k;
  const uint8_t* brow = head_bits + int64_t(q / block_q) * mk;
  int off = len_k - len_q;
  auto vis = [&](int k) { return brow[k / block_kv] && (!causal || k <= q + off); };
  __shared__ float red[32];
  if (silu) {
    for (int k = tid; k < len_k; k += nt) {
      float x = s[k] * scale;
      prow[k] = from_f<Elem>(vis(k) ? x / (1.f + expf(-x)) * silu_inv_n : 0.f);
    }
    if (tid == 0) lse[int64_t(q) * lse_stride] = 0.f;
    return;
  }
  float mx = -INFINITY;
  for (int k = tid; k < len_k; k += nt)
    if (vis(k)) mx = fmaxf(mx, s[k] * scale);
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if ((tid & 31) == 0) red[tid >> 5] = mx;
  __syncthreads();
  if (tid == 0) {
    float v = -INFINITY;
    for (int w = 0; w < nt / 32; ++w) v = fmaxf(v, red[w]);
    red[0] = v;
  }
  __syncthreads();
  mx = red[0];
  __syncthreads();
  float sum = 0.f;
  for (int k = tid; k < len_k; k += nt)
    if (vis(k)) sum += expf(s[k] * scale - mx);
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if ((tid & 31) == 0) red[tid >> 5] = sum;
  __syncthreads();
  if (tid == 0) {
    float v = 0.f;
    for (int w = 0; w < nt / 32; ++w) v += red[w];
    red[0] = v;
  }
  __syncthreads();
  sum = red[0];
  float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int k = tid; k < len_k; k += nt) prow[k] = from_f<Elem>(vis(k) ? expf(s[k] * scale - mx) * inv : 0.f);
  if (tid == 0) lse[int64_t(q) * lse_stride] = sum > 0.f ? mx + logf(sum) : -INFINITY;
}

}  // namespace

AttentionResult gpu_dense_reference(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in) {
  p.validate(mask);
  if (p.dtype == ElemType::F32) throw UsageError("the GPU dense reference takes bf16 or f16 inputs");
  if (in.silu_bias || in.rab || in.gate_u) throw UsageError("the GPU dense reference has no SiLU bias or u-gating");
  const int64_t Hq = p.heads_q, Hk = p.heads_kv, D = p.head_dim, B = p.batch;
  const size_t es = elem_size(p.dtype);
  const bool bf = p.dtype == ElemType::BF16;
  const cudaDataType_t dt = bf ? CUDA_R_16BF : CUDA_R_16F;
  DeviceBuffer dq, dk, dv, dbits, dout(size_t(p.total_q() * Hq * D) * 4);
  dq.upload(in.q, size_t(p.total_q() * Hq * D) * es);
  dk.upload(in.k, size_t(p.total_k() * Hk * D) * es);
  dv.upload(in.v, size_t(p.total_k() * Hk * D) * es);
  dbits.upload(mask.bits.data(), mask.bits.size());
  int64_t lse_n = p.varlen() ? Hq * p.total_q() : B * Hq * p.q_len;
  DeviceBuffer dlse(size_t(lse_n) * 4);
  CUDA_CHECK(cudaMemset(dout.get(), 0, dout.bytes()));
  DeviceBuffer S(size_t(p.q_len * p.kv_len) * 4), P(size_t(p.q_len * p.kv_len) * es);
  cublasHandle_t h;
  CUBLAS_CHECK(cublasCreate(&h));
  try {
    const float one = 1.f, zero = 0.f, scale = float(p.effective_scale());
    int64_t mq = mask.shape.mq(), mk = mask.shape.mk();
    for (int64_t b = 0; b < B; ++b) {
      int64_t qs = p.varlen() ? p.cu_seqlens_q[b] : b * p.q_len;
      int64_t ks = p.varlen() ? p.cu_seqlens_k[b] : b * p.kv_len;
      int lq = int(p.varlen() ? p.cu_seqlens_q[b + 1] - qs : p.q_len);
      int lk = int(p.varlen() ? p.cu_seqlens_k[b + 1] - ks : p.kv_len);
      if (lq == 0) continue;
      for (int64_t hh = 0; hh < Hq; ++hh) {
        int64_t hk = hh / (Hq / Hk);
        const char* qp = dq.get<char>() + size_t((qs * Hq + hh) * D) * es;
        const char* kp = dk.get<char>() + size_t((ks * Hk + hk) * D) * es;
        const char* vp = dv.get<char>() + size_t((ks * Hk + hk) * D) * es;
        int64_t lse_base = p.varlen() ? hh * p.total_q() + qs : (b * Hq + hh) * p.q_len;
        int64_t mb = mask.shape.batch == 1 ? 0 : b;
        const uint8_t* hb = dbits.get<uint8_t>() + ((mb * Hq + hh) * mq) * mk;
        if (lk > 0)
          CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, lk, lq, int(D), &one, kp, dt, int(Hk * D), qp, dt,
                                    int(Hq * D), &zero, S.get(), CUDA_R_32F, lk, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
        float* lse = dlse.get<float>() + lse_base;
        if (bf)
          masked_softmax_kernel<__nv_bfloat16><<<lq, 256>>>(S.get<float>(), lq, lk, hb, int(mk), int(mask.shape.block_q),
                                                           int(mask.shape.block_kv), mask.causal, scale,
                                                           p.score == ScoreFn::Silu, float(1.0 / p.silu_n),
                                                           P.get<__nv_bfloat16>(), lse, 1);
        else
          masked_softmax_kernel<__half><<<lq, 256>>>(S.get<float>(), lq, lk, hb, int(mk), int(mask.shape.block_q),
                                                    int(mask.shape.block_kv), mask.causal, scale,
                                                    p.score == ScoreFn::Silu, float(1.0 / p.silu_n), P.get<__half>(),
                                                    lse, 1);
        CUDA_CHECK_LAUNCH("masked_softmax_kernel");
        float* op = dout.get<float>() + (qs * Hq + hh) * D;
        if (lk > 0)
          CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, int(D), lq, lk, &one, vp, dt, int(Hk * D), P.get(), dt,
                                    lk, &zero, op, CUDA_R_32F, int(Hq * D), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      }
    }
    CUDA_CHECK(cudaDeviceSynchronize());
  } catch (...) {
    cublasDestroy(h);
    throw;
  }
  CUBLAS_CHECK(cublasDestroy(h));
  AttentionResult r;
  r.out.resize(size_t(p.total_q() * Hq * D));
  r.lse.resize(size_t(lse_n));
  dout.download(r.out.data(), dout.bytes());
  dlse.download(r.lse.data(), dlse.bytes());
  CUDA_CHECK(cudaDeviceSynchronize());
  return r;
}

}  // namespace bsattn::cuda
