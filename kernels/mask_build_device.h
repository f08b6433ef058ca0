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

// Launch order of the query tiles of each (mask batch, head) segment: a stable sort by descending
// work (sparse heads: CSR row length num[]; streaming: equal; dense: equal, or i + 1 when causal),
// so that the short rows run last and fill the tail of the grid. num may be null when no head is
// sparse. sched [segs, mq]. Segments of at most kMaxScheduleTiles tiles (O(mq^2) per segment).
constexpr int kMaxScheduleTiles = 4096;
void launch_work_schedule(const int32_t* num, const uint8_t* head_type, const int32_t* head_sink,
                          const int32_t* head_local, int64_t segs, int heads, int mq, bool causal, int32_t* sched,
                          cudaStream_t s);

}  // namespace bsattn::cuda
