#include "lib/backend.h"

#include "lib/error.h"

namespace bsattn {

namespace {
// Constant-initialized, so registration at any point of static initialization finds it ready.
GpuBackend* registered = nullptr;
}  // namespace

void register_gpu_backend(GpuBackend* backend) { registered = backend; }

GpuBackend* gpu_backend() { return registered; }

GpuBackend& require_gpu_backend() {
  if (!registered) throw RuntimeFailure("this bsattn was built without CUDA; use --backend cpu");
  return *registered;
}

bool gpu_available() { return registered && registered->available(); }

GpuQuality gpu_evaluate_mask(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const GpuQualityOptions& opt) {
  return require_gpu_backend().evaluate_mask(p, mask, in, opt);
}

namespace {
// The checks of a device pass that need no GPU; returns the backend that will run it.
GpuBackend& check_device_attention(const DeviceAttention& a, bool backward) {
  const AttentionProblem& p = a.problem;
  if (p.varlen()) throw UsageError("device attention: varlen offsets are the device arrays cu_q / cu_k");
  // The problem's checks read the mask's sizes only: a mask without a bitmap carries them.
  BlockMask shape_only;
  shape_only.shape = a.mask_shape;
  shape_only.causal = a.causal;
  a.mask_shape.validate();
  p.validate(shape_only);
  if ((a.cu_q == nullptr) != (a.cu_k == nullptr))
    throw UsageError("cu_seqlens_q and cu_seqlens_k: give both or neither");
  if (a.cu_q) {
    if (a.total_q < 0 || a.total_q > p.batch * p.q_len || a.total_k < 0 || a.total_k > p.batch * p.kv_len)
      throw UsageError("varlen: packed rows total_q=" + std::to_string(a.total_q) + ", total_k=" +
                       std::to_string(a.total_k) + " (allowed: 0..batch*q_len=" + std::to_string(p.batch * p.q_len) +
                       ", 0..batch*kv_len=" + std::to_string(p.batch * p.kv_len) + ")");
  }
  auto need = [](const void* ptr, const char* name) {
    if (!ptr) throw UsageError(std::string(name) + " is a null pointer");
  };
  need(a.q, "q");
  need(a.k, "k");
  need(a.v, "v");
  need(a.o, "o");
  need(a.lse, "lse");
  if (backward) {
    need(a.dout, "dout");
    need(a.dq, "dq");
    need(a.dk, "dk");
    need(a.dv, "dv");
  }
  if ((a.kv_num_blocks == nullptr) != (a.kv_indices == nullptr))
    throw UsageError("mask: give both kv_num_blocks and kv_indices, or neither");
  if ((a.q_num_blocks == nullptr) != (a.q_indices == nullptr))
    throw UsageError("mask: give both q_num_blocks and q_indices, or neither");
  if (!a.bits && !a.kv_num_blocks) throw UsageError("mask: give the bitmap or the row CSR (kv_num_blocks, kv_indices)");
  if (backward && !a.bits && !a.q_num_blocks)
    throw UsageError("mask: the backward needs the bitmap or the column CSR (q_num_blocks, q_indices)");
  GpuBackend& gpu = require_gpu_backend();
  gpu.check_supported(p, shape_only, a.options);  // the backward's own limits: backward_device, before any work
  const size_t ws = gpu.device_workspace_bytes(a, backward);
  if (a.workspace_bytes < ws || (ws > 0 && !a.workspace))
    throw UsageError("workspace: " + std::to_string(a.workspace_bytes) + " bytes given, this pass needs " +
                     std::to_string(ws) + " (ask bsattn_workspace_size)");
  return gpu;  // the backend's pass checks what the backward kernels support, then that a GPU is present
}
}  // namespace

size_t device_attention_workspace(const DeviceAttention& a, bool backward) {
  return require_gpu_backend().device_workspace_bytes(a, backward);
}

void device_attention_forward(const DeviceAttention& a) { check_device_attention(a, false).forward_device(a); }

void device_attention_backward(const DeviceAttention& a) { check_device_attention(a, true).backward_device(a); }

void check_gpu_adaptive(const AttentionProblem& p, const GpuAdaptiveConfig& c) {
  if (p.varlen()) throw UsageError("adaptive GPU selection takes fixed-length batches (no cu_seqlens)");
  if (p.dtype == ElemType::F32) throw UsageError("adaptive GPU selection takes bf16 or f16 Q/K (--dtype bf16 or f16)");
  if (p.head_dim < 1 || p.head_dim > 1024)
    throw UsageError("adaptive GPU selection: head_dim = " + std::to_string(p.head_dim) + " (allowed: 1..1024)");
  if (c.level != 1 && c.level != 2 && c.level != 4 && c.level != 8)
    throw UsageError("adaptive GPU selection: pooling level " + std::to_string(c.level) + " (allowed: 1, 2, 4, 8)");
  if (c.top_k < 1) throw UsageError("adaptive GPU selection: top_k = " + std::to_string(c.top_k) + " (allowed: >= 1)");
  if (!(c.mass > 0 && c.mass <= 1))
    throw UsageError("adaptive GPU selection: mass = " + std::to_string(c.mass) + " (allowed: 0 < mass <= 1)");
  for (int l : c.levels)
    if (l < 1 || l > 1024) throw UsageError("adaptive GPU selection: pooling levels must be in 1..1024");
  MaskShape{p.batch, p.heads_q, p.q_len, p.kv_len, c.block_q, c.block_kv}.validate();
}

BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const GpuAdaptiveConfig& c,
                            GpuAdaptiveTiming* timing) {
  check_gpu_adaptive(p, c);
  GpuBackend& gpu = require_gpu_backend();
  if (!gpu.available()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
  return gpu.adaptive_mask(p, in, c, timing);
}

}  // namespace bsattn
