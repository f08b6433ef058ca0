// HSTU's u-gating on the GPU: O *= U elementwise after the attention forward, whichever kernel wrote O.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "lib/attention.h"

namespace bsattn::cuda {

// o[e] = round(float(o[e]) * float(u[e])) for e < n, 16-bit elements of `dtype` (bf16 or f16), on `stream`.
void launch_gate_u(void* o, const void* u, int64_t n, ElemType dtype, cudaStream_t stream);

}  // namespace bsattn::cuda
