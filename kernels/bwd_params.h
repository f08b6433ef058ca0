// Parameters of one backward launch: the forward's (FwdParams: Q, K, V, O, LSE, sizes, the mask's row
// form) plus what only the backward reads or writes. Plain C++ (no CUDA types) so that the runner, the
// kernel family (kernels/bwd/) and host tests share it. Deriving from FwdParams lets the backward call
// the forward's block iteration (kernels/fwd/block.cuh) on the same struct.
#pragma once
#include <cstdint>

#include "kernels/fwd_params.h"

namespace bsattn::cuda {

struct BwdParams : FwdParams {
  // Inputs besides Q, K, V: O (FwdParams::o, the forward's output, `dtype` elements), LSE
  // (FwdParams::lse, natural log, -inf for empty rows; unused by SiLU) and dO.
  const void* dout = nullptr;  // [total_q, Hq, D] elements of `dtype`
  // Scratch: D_i = rowsum(dO * O) per (row, head), indexed like LSE; the fp32 dQ accumulator.
  float* delta = nullptr;     // [B, Hq, q_len] or varlen [Hq, total_q]
  float* dq_accum = nullptr;  // [total_q, Hq, D]; unused in deterministic mode
  // Outputs: fp32, or with grads16 the inputs' 16-bit type (`dtype`; the pointers then address that
  // type's elements: the kernels store through store_grad2).
  float* dq = nullptr;  // [total_q, Hq, D]
  float* dk = nullptr;  // [total_k, Hkv, D]
  float* dv = nullptr;  // [total_k, Hkv, D]
  bool grads16 = false;
  // The mask's column form for sparse heads (built on the GPU from the bitmap); dense and streaming
  // heads are iterated from their definition and need none.
  const int32_t* q_num_blocks = nullptr;  // [mask_batch, Hq, mk]
  const int32_t* q_indices = nullptr;     // [mask_batch, Hq, mk, mq]
  // dQ by a separate pass over the row form (no atomics): dQ, dK, dV bit-identical from run to run.
  bool deterministic = false;
};

}  // namespace bsattn::cuda
