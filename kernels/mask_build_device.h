// Device-side entry points of GPU mask building (kernels/mask_build.cu), for the runner.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace bsattn::cuda {

// bits [rows, mk] (uint8 0/1) -> num [rows], idx [rows, mk] (ascending, padded with 0).
void launch_row_csr(const uint8_t* bits, int64_t rows, int mk, int32_t* num, int32_t* idx, cudaStream_t s);
// bits [heads, mq, mk] -> num [heads, mk], idx [heads, mk, mq].
void launch_column_csr(const uint8_t* bits, int64_t heads, int mq, int mk, int32_t* num, int32_t* idx,
                       cudaStream_t s);

}  // namespace bsattn::cuda
