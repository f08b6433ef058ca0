#include "lib/attention.h"

#include <cmath>
#include <limits>

#include "lib/backend.h"
#include "lib/error.h"

namespace bsattn {

const char* elem_type_name(ElemType t) {
  switch (t) {
    case ElemType::F32: return "f32";
    case ElemType::F16: return "f16";
    case ElemType::BF16: return "bf16";
  }
  return "?";
}
size_t elem_size(ElemType t) { return t == ElemType::F32 ? 4 : 2; }

double AttentionProblem::effective_scale() const { return scale != 0 ? scale : 1.0 / std::sqrt(double(head_dim)); }
int64_t AttentionProblem::total_q() const { return varlen() ? cu_seqlens_q.back() : batch * q_len; }
int64_t AttentionProblem::total_k() const { return varlen() ? cu_seqlens_k.back() : batch * kv_len; }

void AttentionProblem::validate(const BlockMask& m) const {
  auto fail = [](const std::string& s) { throw UsageError(s); };
  if (batch <= 0 || q_len <= 0 || kv_len <= 0 || heads_q <= 0 || heads_kv <= 0 || head_dim <= 0)
    fail("attention sizes must be positive (batch, q_len, kv_len, heads, head_dim)");
  if (heads_q % heads_kv != 0)
    fail("query heads (" + std::to_string(heads_q) + ") must be a multiple of key/value heads (" +
         std::to_string(heads_kv) + ")");
  if (m.shape.q_len != q_len || m.shape.kv_len != kv_len)
    fail("mask is for q_len=" + std::to_string(m.shape.q_len) + ", kv_len=" + std::to_string(m.shape.kv_len) +
         " but the inputs have q_len=" + std::to_string(q_len) + ", kv_len=" + std::to_string(kv_len));
  if (m.shape.heads != heads_q)
    fail("mask has " + std::to_string(m.shape.heads) + " heads but Q has " + std::to_string(heads_q));
  if (m.shape.batch != 1 && m.shape.batch != batch)
    fail("mask batch " + std::to_string(m.shape.batch) + " must be 1 or the input batch " + std::to_string(batch));
  if (score == ScoreFn::Silu && !(silu_n > 0 && std::isfinite(silu_n))) fail("SiLU attention needs a finite n > 0 (--silu-n)");
  // 0 stands for 1/sqrt(head_dim); anything else must be a usable multiplier in float32, the
  // precision the kernels and the CPU reference's default mode compute scores in.
  if (scale != 0 && !(std::isfinite(scale) && scale > 0 && scale <= double(std::numeric_limits<float>::max())))
    fail("scale (--scale) = " + std::to_string(scale) + " is not allowed (allowed: finite, > 0 and at most 3.4e38; "
         "0 or none: 1/sqrt(head_dim))");
  if (varlen()) {
    for (auto* cu : {&cu_seqlens_q, &cu_seqlens_k}) {
      bool isq = cu == &cu_seqlens_q;
      int64_t maxlen = isq ? q_len : kv_len;
      if (int64_t(cu->size()) != batch + 1 || (*cu)[0] != 0)
        fail(std::string(isq ? "cu_seqlens_q" : "cu_seqlens_k") + " must have batch+1 entries starting at 0");
      for (int64_t b = 0; b < batch; ++b) {
        int64_t len = (*cu)[b + 1] - (*cu)[b];
        if (len < 0 || len > maxlen)
          fail(std::string(isq ? "cu_seqlens_q" : "cu_seqlens_k") + ": sequence " + std::to_string(b) +
               " has length " + std::to_string(len) + " (allowed: 0.." + std::to_string(maxlen) + ")");
      }
    }
    if (cu_seqlens_k.size() != cu_seqlens_q.size()) fail("cu_seqlens_q and cu_seqlens_k differ in length");
  }
}

AttentionResult attention_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                  const AttentionOptions& opt) {
  p.validate(mask);
  if (opt.backend == Backend::Cpu) {
    if (!opt.kernel.empty()) throw UsageError("--kernel selects a CUDA kernel; it needs --backend cuda");
    return cpu_attention_forward(p, mask, in);
  }
  GpuBackend& gpu = require_gpu_backend();
  gpu.check_supported(p, mask, opt);
  if (!gpu.available()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
  return gpu.forward(p, mask, in, opt);
}

AttentionGradients attention_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                      const AttentionResult& fwd, const float* dout, const AttentionOptions& opt) {
  p.validate(mask);
  const int64_t nq = p.total_q() * p.heads_q * p.head_dim;
  const int64_t nlse = p.varlen() ? p.heads_q * p.total_q() : p.batch * p.heads_q * p.q_len;
  if (int64_t(fwd.out.size()) != nq || int64_t(fwd.lse.size()) != nlse)
    throw UsageError("backward: the forward result has " + std::to_string(fwd.out.size()) + " O and " +
                     std::to_string(fwd.lse.size()) + " LSE values; the problem needs " + std::to_string(nq) +
                     " and " + std::to_string(nlse));
  if (!dout) throw UsageError("backward: dO is missing");
  for (int64_t e = 0; e < nq; ++e)
    if (!std::isfinite(dout[e]))
      throw UsageError("dO has " + std::string(std::isnan(dout[e]) ? "NaN" : "Inf") + " at [row=" +
                       std::to_string(e / (p.heads_q * p.head_dim)) + ", h=" +
                       std::to_string(e / p.head_dim % p.heads_q) + ", d=" + std::to_string(e % p.head_dim) +
                       "] (inputs must be finite)");
  if (opt.backend == Backend::Cpu) {
    if (!opt.kernel.empty()) throw UsageError("--kernel selects a CUDA kernel; it needs --backend cuda");
    if (!opt.bwd_kernel.empty())
      throw UsageError("--bwd-kernel selects a CUDA backward kernel; it needs --backend cuda");
    return cpu_attention_backward(p, mask, in, fwd, dout);
  }
  GpuBackend& gpu = require_gpu_backend();
  gpu.check_supported(p, mask, opt);
  return gpu.backward(p, mask, in, fwd, dout, opt);
}

}  // namespace bsattn
