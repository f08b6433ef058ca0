#include "kernels/gating.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/elem16.cuh"

namespace bsattn::cuda {

namespace {


// Eight elements (16 bytes) per thread and step; the n % 8 tail by the first threads.
template <class E>
__global__ void gate_u_kernel(E* __restrict__ o, const E* __restrict__ u, int64_t n) {
  const int64_t vecs = n / 8, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < vecs; v += stride) {
    uint4 a = reinterpret_cast<const uint4*>(o)[v];
    const uint4 b = __ldg(reinterpret_cast<const uint4*>(u) + v);
    E* ae = reinterpret_cast<E*>(&a);
    const E* be = reinterpret_cast<const E*>(&b);
#pragma unroll
    for (int i = 0; i < 8; ++i) ae[i] = from_float<E>(to_float(ae[i]) * to_float(be[i]));
    reinterpret_cast<uint4*>(o)[v] = a;
  }
  const int64_t t = vecs * 8 + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < n) o[t] = from_float<E>(to_float(o[t]) * to_float(u[t]));
}

}  // namespace

void launch_gate_u(void* o, const void* u, int64_t n, ElemType dtype, cudaStream_t stream) {
  if (n <= 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n / 8 + threads - 1) / threads + 1, int64_t(1) << 16);
  if (dtype == ElemType::BF16)
    gate_u_kernel<<<unsigned(blocks), threads, 0, stream>>>(static_cast<__nv_bfloat16*>(o),
                                                            static_cast<const __nv_bfloat16*>(u), n);
  else if (dtype == ElemType::F16)
    gate_u_kernel<<<unsigned(blocks), threads, 0, stream>>>(static_cast<__half*>(o), static_cast<const __half*>(u), n);
  else
    throw UsageError("u-gating on the GPU takes bf16 or f16 tensors");
  CUDA_CHECK_LAUNCH("u-gating kernel");
}

}  // namespace bsattn::cuda
