// The attention entry point: one interface, two backends (cpu in lib/reference/, cuda in kernels/,
// reached through the registry of lib/backend.h) that take the same arguments and must agree
// numerically.
//
// Semantics (DESIGN.md): Q [B,Sq,Hq,D], K/V [B,Sk,Hkv,D] in BSHD, contiguous; Hq a multiple of Hkv
// (query head h reads kv head h / (Hq/Hkv)). Varlen: cu_seqlens_q/k hold batch+1 offsets into packed
// [total,H,D] tensors; q_len/kv_len are then the maximum lengths and size the mask, whose block rows
// are relative to each sequence's start (as Block-Sparse-Attention). The mask's batch is 1
// (broadcast) or `batch`; its heads equal heads_q. Softmax: O = softmax(scale*QK^T) V, LSE natural
// log. SiLU (HSTU): O = (SiLU(scale*QK^T + bias) / silu_n) V, LSE unused (0). Masked pairs
// contribute nothing; a row with no visible key gives O = 0 and LSE = -inf. Accumulation in f32
// (f64 in the CPU reference's double mode).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lib/mask.h"

namespace bsattn {

enum class Backend { Cpu, Cuda };
enum class ScoreFn { Softmax, Silu };
enum class ElemType { F32, F16, BF16 };
const char* elem_type_name(ElemType t);  // "f32", "f16", "bf16"
size_t elem_size(ElemType t);

// The sizes of an attention problem, shared by everything that describes one (AttentionProblem, a
// bench configuration).
struct AttentionShape {
  int64_t batch = 1;
  int64_t q_len = 0, kv_len = 0;  // per sequence (varlen: the maxima)
  int64_t heads_q = 1, heads_kv = 1, head_dim = 64;
};

struct AttentionProblem : AttentionShape {
  std::vector<int32_t> cu_seqlens_q, cu_seqlens_k;  // empty: fixed-length batch
  double scale = 0;                                  // 0 means 1/sqrt(head_dim)
  ScoreFn score = ScoreFn::Softmax;
  double silu_n = 0;  // SiLU: the divisor n (HSTU uses the max sequence length); must be > 0
  ElemType dtype = ElemType::BF16;

  bool varlen() const { return !cu_seqlens_q.empty(); }
  double effective_scale() const;
  int64_t total_q() const;  // rows of the packed Q (batch*q_len when not varlen)
  int64_t total_k() const;
  // Shapes against the mask (q_len/kv_len vs its sizes, heads, batch 1 or batch), GQA divisibility,
  // cu_seqlens monotone and within the maxima. Throws UsageError with what is wrong and allowed.
  void validate(const BlockMask& mask) const;
};

// HSTU's relative attention bias as its tables (docs/hstu.md; lib/hstu/hstu.h's HstuBias holds them):
// the CUDA backend computes rab for each pair in the kernel, for SiLU self-attention (q_len == kv_len,
// equal offsets). Any of the three terms may be absent (null).
struct RelativeBiasTables {
  const float* pos = nullptr;  // [heads_q, pos_len]
  int64_t pos_len = 0;
  const float* ts = nullptr;   // [heads_q, ts_buckets]
  int64_t ts_buckets = 0;
  const double* timestamps = nullptr;  // [total_q], needed with ts
  const float* dense = nullptr;        // [heads_q, q_len, kv_len], positions within each sequence
  bool any() const { return pos || ts || dense; }
};

// Host buffers, `dtype` elements, BSHD (packed when varlen).
struct AttentionInputs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const float* silu_bias = nullptr;  // optional, [heads_q, q_len, kv_len], SiLU only, CPU backend only
  // HSTU (SiLU) on the CUDA backend: the relative bias from its tables, and u-gating (O * U elementwise,
  // U [total_q, Hq, D] of `dtype`). The CPU reference takes both through lib/hstu's hstu_forward.
  const RelativeBiasTables* rab = nullptr;
  const void* gate_u = nullptr;
};

struct AttentionResult {
  std::vector<float> out;  // [total_q, Hq, D] (BSHD), f32
  std::vector<float> lse;  // [B, Hq, q_len] (varlen: [Hq, total_q]); -inf for empty rows
};

// dQ, dK, dV of a backward pass, f32, the shapes of the CPU reference's CpuGradients.
struct AttentionGradients {
  std::vector<float> dq;  // [total_q, Hq, D]
  std::vector<float> dk;  // [total_k, Hkv, D] (summed over the query heads of each GQA group)
  std::vector<float> dv;  // [total_k, Hkv, D]
};

// How to run a problem: the backend and, on cuda, which kernel and how it is launched.
struct AttentionOptions {
  Backend backend = Backend::Cpu;
  std::string kernel;  // cuda: a forward kernel the GPU backend lists ("" = the default for the problem and GPU)
  int max_ctas = 0;    // cuda: the most CTAs the persistent Hopper kernel starts (0 = one per SM)
  // cuda backward: dQ by a separate pass over the mask's rows instead of fp32 atomics, so that dQ, dK
  // and dV are bit-identical from run to run (the CPU reference always is).
  bool deterministic = false;
  // cuda backward: "sm90" or "sm80" ("" = the default for the problem and GPU: sm90 on sm_90 when
  // block_kv is a multiple of 128).
  std::string bwd_kernel;
};

// The attention entry point. Checks everything once, before any work: the problem against the mask
// (AttentionProblem::validate) and, on cuda, what the kernels support (dtype, head_dim, block sizes,
// kernel name); those are UsageErrors, raised on any machine. Then the cuda backend throws
// RuntimeFailure when this build has no CUDA or the machine has no GPU ("use --backend cpu"), and for
// CUDA errors / OOM.
AttentionResult attention_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                  const AttentionOptions& opt = {});

// The backward pass: dQ, dK, dV from dO (f32 [total_q, Hq, D]) and the forward's O and LSE (`fwd`, as
// attention_forward returns them), FlashAttention's recomputation. Checks as attention_forward, plus
// the sizes of `fwd` and a finite dO (UsageError), before any work. The cuda backend rounds O and dO
// to the problem's 16-bit dtype, as its kernels read them, and accumulates in f32.
AttentionGradients attention_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                      const AttentionResult& fwd, const float* dout, const AttentionOptions& opt = {});

// The CPU backend (lib/reference/cpu_attention.cpp); the cuda backend is lib/backend.h's registry.
AttentionResult cpu_attention_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in);
AttentionGradients cpu_attention_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                          const AttentionResult& fwd, const float* dout);

}  // namespace bsattn
