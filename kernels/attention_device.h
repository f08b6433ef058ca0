// The passes on caller-owned device memory (lib/backend.h's DeviceAttention) that the GPU backend
// registers: plain C++ types only, so that kernels/gpu_backend.cpp includes it without CUDA headers.
#pragma once
#include <cstddef>

#include "lib/backend.h"

namespace bsattn::cuda {

// The workspace a pass takes: the backward's scratch (D_i, the fp32 dQ accumulator unless
// deterministic) and the head arrays and CSR forms that `a` does not give.
size_t device_workspace_bytes(const DeviceAttention& a, bool backward);
// Enqueue one pass on a.stream (no synchronization). The caller has checked `a` (lib/backend.cpp).
void forward_device(const DeviceAttention& a);
void backward_device(const DeviceAttention& a);

}  // namespace bsattn::cuda
