// NSA's block selection for one (query row, KV group), as a rank test that each thread of the GPU kernel
// (kernels/nsa_gpu.cu) applies to its candidate blocks and that host tests (tests/kernels) call directly.
// Semantics of lib/nsa/nsa.cpp: the candidates are the key blocks 0..c (c: the block of the row's last
// query); blocks j < init and c - local < j <= c are always taken; then the others in order of decreasing
// importance, ties to the lower index, until `topn` blocks are taken in all.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define BSATTN_HD __host__ __device__
#else
#define BSATTN_HD
#endif

namespace bsattn::cuda::nsa {

BSATTN_HD inline bool forced_block(int64_t j, int64_t c, int64_t init, int64_t local) { return j < init || j > c - local; }

// How many of the blocks 0..c are forced: [0, min(init, c+1)) joined with [max(c - local + 1, 0), c].
BSATTN_HD inline int64_t forced_count(int64_t c, int64_t init, int64_t local) {
  const int64_t a = init < c + 1 ? init : c + 1;
  const int64_t lo = c - local + 1 > 0 ? c - local + 1 : 0;
  return lo <= a ? c + 1 : a + (c + 1 - lo);
}

// Whether block j (0 <= j <= c) is taken, given the importance of blocks 0..c. A non-forced block is taken
// when fewer than topn - forced_count non-forced blocks come before it (greater importance, or equal
// importance and a lower index): O(c) per block, no sort, the same answer as a stable sort.
BSATTN_HD inline bool block_taken(const float* imp, int64_t j, int64_t c, int64_t init, int64_t local, int64_t topn) {
  if (forced_block(j, c, init, local)) return true;
  const int64_t slots = topn - forced_count(c, init, local);
  if (slots <= 0) return false;
  const float v = imp[j];
  int64_t before = 0;
  for (int64_t k = 0; k <= c && before < slots; ++k)
    if (k != j && !forced_block(k, c, init, local) && (imp[k] > v || (imp[k] == v && k < j))) ++before;
  return before < slots;
}

}  // namespace bsattn::cuda::nsa
