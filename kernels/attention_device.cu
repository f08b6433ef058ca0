// The passes on caller-owned device memory (lib/backend.h's DeviceAttention, behind the C ABI): the
// same launch parameters and launches as the resident runner (attention_runner.cu), with the scratch of
// the pass and the mask forms that are not given carved out of the caller's workspace, all enqueued on
// the caller's stream. lib/backend.cpp has checked the pointers, the sizes and the workspace's size.
#include "kernels/attention_device.h"

#include <cuda_runtime.h>

#include "kernels/attention_bwd.h"
#include "kernels/attention_fwd.h"
#include "kernels/attention_runner.h"
#include "kernels/cuda_check.h"
#include "kernels/mask_build_device.h"
#include "lib/error.h"

namespace bsattn::cuda {

namespace {

// Consecutive 256-byte aligned pieces of the workspace; with a null base it only counts bytes.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  template <class T>
  T* take(size_t count) {
    const size_t at = used_;
    used_ += (count * sizeof(T) + 255) / 256 * 256;
    return base_ ? reinterpret_cast<T*>(base_ + at) : nullptr;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

struct DeviceLayout {
  FwdParams f;                 // pointers filled in, CSR forms pointing at the given ones or the workspace
  bool build_row = false, build_col = false, fill_heads = false, fill_streaming = false;
  uint8_t* ws_head_type = nullptr;
  int32_t *ws_sink = nullptr, *ws_local = nullptr;
  int32_t *ws_kv_num = nullptr, *ws_kv_idx = nullptr, *ws_q_num = nullptr, *ws_q_idx = nullptr;
  float *delta = nullptr, *dq_accum = nullptr;
  // A head dim the kernels run padded (kernel_head_dim): zero-padded copies of Q, K, V, O (and dO, and
  // the gradients the kernels write) in the workspace, rows d elements long in the caller's tensors and
  // dk in the copies.
  bool padded = false;
  int d = 0, dk = 0;
  size_t es = 2, rows_q = 0, rows_k = 0;
  void *qp = nullptr, *kp = nullptr, *vp = nullptr, *op = nullptr, *dop = nullptr;
  float *dqp = nullptr, *dkp = nullptr, *dvp = nullptr;
  size_t bytes = 0;
};

// What a pass takes from the workspace, in one place for the size query and the pass itself.
DeviceLayout layout(const DeviceAttention& a, bool backward) {
  const AttentionProblem& p = a.problem;
  BlockMask shape_only;
  shape_only.shape = a.mask_shape;
  shape_only.causal = a.causal;
  DeviceLayout L;
  FwdParams& f = L.f;
  f = fwd_params(p, shape_only, a.options);
  if (a.cu_q) {
    f.cu_q = a.cu_q;
    f.cu_k = a.cu_k;
    f.total_q = a.total_q;
    f.total_k = a.total_k;
  }
  f.q = a.q;
  f.k = a.k;
  f.v = a.v;
  f.o = a.o;
  f.lse = a.lse;
  Carver w(a.workspace);
  L.d = int(p.head_dim), L.dk = f.head_dim, L.padded = L.d != L.dk;
  L.es = elem_size(p.dtype);
  L.rows_q = size_t((f.total_q ? f.total_q : int64_t(f.batch) * f.q_len) * f.heads_q);
  L.rows_k = size_t((f.total_k ? f.total_k : int64_t(f.batch) * f.kv_len) * f.heads_kv);
  if (L.padded) {
    L.qp = w.take<char>(L.rows_q * L.dk * L.es);
    L.kp = w.take<char>(L.rows_k * L.dk * L.es);
    L.vp = w.take<char>(L.rows_k * L.dk * L.es);
    L.op = w.take<char>(L.rows_q * L.dk * L.es);
    f.q = L.qp, f.k = L.kp, f.v = L.vp, f.o = L.op;
    if (backward) {
      L.dop = w.take<char>(L.rows_q * L.dk * L.es);
      const size_t gs = a.grads16 ? L.es : 4;  // the gradients' element size
      L.dqp = reinterpret_cast<float*>(w.take<char>(L.rows_q * L.dk * gs));
      L.dkp = reinterpret_cast<float*>(w.take<char>(L.rows_k * L.dk * gs));
      L.dvp = reinterpret_cast<float*>(w.take<char>(L.rows_k * L.dk * gs));
    }
  }
  const int64_t heads = a.mask_shape.heads, rows = a.mask_shape.batch * heads * a.mask_shape.mq();
  L.fill_heads = a.head_type == nullptr;
  L.fill_streaming = a.head_sink == nullptr || a.head_local == nullptr;
  if (L.fill_heads) L.ws_head_type = w.take<uint8_t>(size_t(heads));
  if (L.fill_streaming) {
    L.ws_sink = w.take<int32_t>(size_t(heads));
    L.ws_local = w.take<int32_t>(size_t(heads));
  }
  f.head_type = L.fill_heads ? L.ws_head_type : a.head_type;
  f.head_sink = L.fill_streaming ? L.ws_sink : a.head_sink;
  f.head_local = L.fill_streaming ? L.ws_local : a.head_local;
  L.build_row = a.kv_num_blocks == nullptr;
  if (L.build_row) {
    L.ws_kv_num = w.take<int32_t>(size_t(rows));
    L.ws_kv_idx = w.take<int32_t>(size_t(rows * a.mask_shape.mk()));
  }
  f.kv_num_blocks = L.build_row ? L.ws_kv_num : a.kv_num_blocks;
  f.kv_indices = L.build_row ? L.ws_kv_idx : a.kv_indices;
  if (backward) {
    const int64_t total_q = f.total_q ? f.total_q : int64_t(f.batch) * f.q_len;
    const int64_t lse_rows = a.cu_q ? int64_t(f.heads_q) * total_q : int64_t(f.batch) * f.heads_q * f.q_len;
    L.delta = w.take<float>(size_t(lse_rows));
    if (!a.options.deterministic) L.dq_accum = w.take<float>(size_t(total_q * f.heads_q * f.head_dim));
    L.build_col = a.q_num_blocks == nullptr;
    if (L.build_col) {
      const int64_t cols = a.mask_shape.batch * heads * a.mask_shape.mk();
      L.ws_q_num = w.take<int32_t>(size_t(cols));
      L.ws_q_idx = w.take<int32_t>(size_t(cols * a.mask_shape.mq()));
    }
  }
  L.bytes = w.used();
  return L;
}

// Head types and streaming numbers not given: every head sparse, no sink or local blocks.
void fill_head_defaults(const DeviceLayout& L, int64_t heads, cudaStream_t s) {
  if (L.fill_heads) CUDA_CHECK(cudaMemsetAsync(L.ws_head_type, 1, size_t(heads), s));
  if (L.fill_streaming) {
    CUDA_CHECK(cudaMemsetAsync(L.ws_sink, 0, size_t(heads) * 4, s));
    CUDA_CHECK(cudaMemsetAsync(L.ws_local, 0, size_t(heads) * 4, s));
  }
}

// Rows of `row_bytes` into rows `pitch` bytes apart, the rest of each row zero; and back.
void pad_rows(void* dst, const void* src, size_t rows, size_t row_bytes, size_t pitch, cudaStream_t s) {
  CUDA_CHECK(cudaMemsetAsync(dst, 0, rows * pitch, s));
  CUDA_CHECK(cudaMemcpy2DAsync(dst, pitch, src, row_bytes, row_bytes, rows, cudaMemcpyDeviceToDevice, s));
}
void unpad_rows(void* dst, const void* src, size_t rows, size_t row_bytes, size_t pitch, cudaStream_t s) {
  CUDA_CHECK(cudaMemcpy2DAsync(dst, row_bytes, src, pitch, row_bytes, rows, cudaMemcpyDeviceToDevice, s));
}
// The caller's Q, K, V (and O) into the padded copies.
void pad_inputs(const DeviceAttention& a, const DeviceLayout& L, bool with_o, cudaStream_t s) {
  const size_t rb = L.d * L.es, pitch = L.dk * L.es;
  pad_rows(L.qp, a.q, L.rows_q, rb, pitch, s);
  pad_rows(L.kp, a.k, L.rows_k, rb, pitch, s);
  pad_rows(L.vp, a.v, L.rows_k, rb, pitch, s);
  if (with_o) pad_rows(L.op, a.o, L.rows_q, rb, pitch, s);
}

}  // namespace

size_t device_workspace_bytes(const DeviceAttention& a, bool backward) { return layout(a, backward).bytes; }

void forward_device(const DeviceAttention& a) {
  DeviceLayout L = layout(a, false);
  const FwdParams& f = L.f;
  cudaStream_t s = static_cast<cudaStream_t>(a.stream);
  // The persistent kernel's counter pool is allocated on the device's first use: before the launch,
  // which a caller may be capturing into a CUDA graph.
  if (select_config(f, device_cc(), a.options.kernel).persistent) ws_sched_block();
  fill_head_defaults(L, a.mask_shape.heads, s);
  if (L.build_row)
    launch_row_csr(a.bits, a.mask_shape.batch * a.mask_shape.heads * a.mask_shape.mq(), f.mk, L.ws_kv_num, L.ws_kv_idx, s);
  if (L.padded) pad_inputs(a, L, false, s);
  launch_attention_fwd(f, a.problem.dtype, a.options.kernel, s);
  if (L.padded) unpad_rows(a.o, L.op, L.rows_q, L.d * L.es, L.dk * L.es, s);
}

void backward_device(const DeviceAttention& a) {
  DeviceLayout L = layout(a, true);
  BwdParams b;
  static_cast<FwdParams&>(b) = L.f;
  b.deterministic = a.options.deterministic;
  check_bwd_supported(b, a.options.bwd_kernel);  // the backward's own limits, before anything is enqueued
  cudaStream_t s = static_cast<cudaStream_t>(a.stream);
  b.dout = L.padded ? L.dop : a.dout;
  b.delta = L.delta;
  b.dq_accum = L.dq_accum;
  b.dq = L.padded ? L.dqp : a.dq;
  b.dk = L.padded ? L.dkp : a.dk;
  b.dv = L.padded ? L.dvp : a.dv;
  b.grads16 = a.grads16;
  fill_head_defaults(L, a.mask_shape.heads, s);
  if (L.build_row)
    launch_row_csr(a.bits, a.mask_shape.batch * a.mask_shape.heads * a.mask_shape.mq(), b.mk, L.ws_kv_num, L.ws_kv_idx, s);
  if (L.build_col)
    launch_column_csr(a.bits, a.mask_shape.batch * a.mask_shape.heads, b.mq, b.mk, L.ws_q_num, L.ws_q_idx, s);
  b.q_num_blocks = L.build_col ? L.ws_q_num : a.q_num_blocks;
  b.q_indices = L.build_col ? L.ws_q_idx : a.q_indices;
  if (L.padded) {
    pad_inputs(a, L, true, s);
    pad_rows(L.dop, a.dout, L.rows_q, L.d * L.es, L.dk * L.es, s);
  }
  launch_attention_bwd(b, a.problem.dtype, s, a.options.bwd_kernel);
  if (L.padded) {
    const size_t gs = a.grads16 ? L.es : 4;
    unpad_rows(a.dq, L.dqp, L.rows_q, L.d * gs, L.dk * gs, s);
    unpad_rows(a.dk, L.dkp, L.rows_k, L.d * gs, L.dk * gs, s);
    unpad_rows(a.dv, L.dvp, L.rows_k, L.d * gs, L.dk * gs, s);
  }
}

}  // namespace bsattn::cuda
