// The CPU reference backend of lib/attention.h: exact block-sparse attention (forward and backward)
// in float32 or float64, blocked over the kept blocks (forward: the register-tile kernels of
// lib/reference/staircase.h on chunks of up to 512 key columns; backward: one Eigen GEMM per block pair) and
// multithreaded over (batch, head, row block). Semantics are those of lib/attention.h / DESIGN.md:
// head types (dense heads ignore the bitmap, streaming heads use sink + local blocks), causal
// bottom-right aligned per sequence, partial last blocks, GQA/MQA, varlen (mask rows relative to each
// sequence), softmax with LSE (natural log) or SiLU(scale*QK^T + bias)/n. Rows with no visible key:
// O = 0, LSE = -inf (SiLU: LSE = 0). NaN/Inf in any input is a UsageError naming the first position;
// so is a NaN/Inf that finite inputs produce (a score, sum or gradient past the range of T), never a
// result that looks like an empty row.
#pragma once
#include <cstdint>
#include <vector>

#include "lib/progress.h"

#include "lib/attention.h"

namespace bsattn {

struct CpuAttentionOptions {
  int threads = 0;  // <= 0: all hardware threads
  ProgressMeter* progress = nullptr;  // each pass adds its tasks (row or column blocks) and steps them
};

template <class T>
struct CpuForward {
  std::vector<T> out;  // [total_q, Hq, D]
  std::vector<T> lse;  // [B, Hq, q_len] (varlen: [Hq, total_q])
};

template <class T>
struct CpuGradients {
  std::vector<T> dq;  // [total_q, Hq, D]
  std::vector<T> dk;  // [total_k, Hkv, D]
  std::vector<T> dv;  // [total_k, Hkv, D]
};

// T = float (float32 compute) or double (float64 compute). Inputs are `p.dtype` elements. Validates p
// against the mask first.
template <class T>
CpuForward<T> cpu_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                          const CpuAttentionOptions& opt = {});

// dQ, dK, dV from dO (f32 [total_q, Hq, D]) using the forward's O and LSE (FlashAttention's
// recomputation: P = exp(S - LSE), D_i = rowsum(dO * O)). dQ by row blocks, dK/dV by column blocks
// (summed over the query heads of each GQA group), so no two threads write the same element.
template <class T>
CpuGradients<T> cpu_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const CpuForward<T>& fwd, const float* dout, const CpuAttentionOptions& opt = {});

// Converts `n` elements of `dtype` to T, throwing UsageError "NAME has NaN at [b, s, h, d] ..." for
// the first non-finite value. rows_per_batch <= 0: positions are reported as [row, h, d] (packed).
template <class T>
std::vector<T> convert_checked(const void* data, ElemType dtype, int64_t n, int64_t heads, int64_t head_dim,
                               int64_t rows_per_batch, const char* name);

// A float64 result as float32, UsageError naming `name` when a finite value does not fit (|x| > 3.4e38)
// rather than writing it as Inf.
std::vector<float> narrow_to_float32(const std::vector<double>& x, const char* name);

// Key blocks that row block i of head h visits (ascending), from the head type: dense heads every
// block, streaming heads sink + local blocks, sparse heads the bitmap of batch entry `mask_b`.
std::vector<int64_t> visited_blocks(const BlockMask& mask, int64_t mask_b, int64_t h, int64_t i);

}  // namespace bsattn
