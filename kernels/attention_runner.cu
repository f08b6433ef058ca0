// The CUDA backend's resident problem (AttentionRunner: launch() = the forward pass, launch_backward() =
// the backward pass on the same resident inputs) and device queries.
#include "kernels/attention_runner.h"

#include <cuda_runtime.h>

#include <cstring>

#include "kernels/attention_bwd.h"
#include "kernels/attention_fwd.h"
#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/gating.h"
#include "kernels/mask_build_device.h"
#include "lib/error.h"
#include "lib/hstu/hstu.h"
#include "lib/npy.h"

namespace bsattn::cuda {

bool gpu_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

GpuDeviceInfo device_info() {
  if (!gpu_present()) throw RuntimeFailure("no CUDA GPU on this machine; use --backend cpu");
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp pr;
  CUDA_CHECK(cudaGetDeviceProperties(&pr, dev));
  GpuDeviceInfo d;
  d.name = pr.name;
  d.sm_count = pr.multiProcessorCount;
  d.cc_major = pr.major;
  d.cc_minor = pr.minor;
  int clk = 0, mclk = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, dev));
  d.sm_clock_mhz = clk / 1000.0;
  d.mem_clock_mhz = mclk / 1000.0;
  d.l2_bytes = size_t(pr.l2CacheSize);
  d.global_bytes = pr.totalGlobalMem;
  CUDA_CHECK(cudaDriverGetVersion(&d.driver_version));
  CUDA_CHECK(cudaRuntimeGetVersion(&d.runtime_version));
  return d;
}

struct AttentionRunner::Impl {
  AttentionProblem p;
  std::string variant;
  std::string bwd_kernel;  // AttentionOptions::bwd_kernel
  cudaStream_t stream = nullptr;
  DeviceBuffer q, k, v, o, lse, cu_q, cu_k, head_type, head_sink, head_local, bits, kv_num, kv_idx;
  // HSTU: the relative bias tables (FwdParams::rab points into them) and U of the u-gating.
  DeviceBuffer rab_pos, rab_ts, rab_times, rab_bounds, rab_dense, gate_u;
  FwdParams fp;
  // Backward (prepare_backward): dO, D_i, the dQ accumulator, the gradients, the column CSR.
  DeviceBuffer dout, delta, dq_accum, dq, dk, dv, q_num, q_idx;
  BwdParams bp;
  bool backward_ready = false;
  bool any_sparse = false;  // the bitmap is resident (bits) and the column CSR is built from it
  // Rows of Q/O/dO/dQ (total_q * heads_q) and of K/V/dK/dV (total_k * heads_kv); the problem's head dim
  // and the kernels' (kernel_head_dim: larger when the resident tensors are zero-padded).
  size_t rows_q = 0, rows_k = 0;
  int d = 0, d_kernel = 0;
  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }
};

FwdParams fwd_params(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) {
  FwdParams f;
  f.batch = int(p.batch);
  f.heads_q = int(p.heads_q);
  f.heads_kv = int(p.heads_kv);
  f.head_dim = kernel_head_dim(int(p.head_dim));
  f.q_len = int(p.q_len);
  f.kv_len = int(p.kv_len);
  f.total_q = p.total_q();
  f.total_k = p.total_k();
  f.mask_batch = int(mask.shape.batch);
  f.block_q = int(mask.shape.block_q);
  f.block_kv = int(mask.shape.block_kv);
  f.mq = int(mask.shape.mq());
  f.mk = int(mask.shape.mk());
  f.causal = mask.causal;
  f.scale = float(p.effective_scale());
  f.silu = p.score == ScoreFn::Silu;
  f.silu_inv_n = f.silu ? float(1.0 / p.silu_n) : 1.f;
  f.max_ctas = opt.max_ctas;
  return f;
}

void AttentionRunner::check_supported(const AttentionProblem& p, const BlockMask& mask, const AttentionOptions& opt) {
  if (p.dtype == ElemType::F32)
    throw UsageError("the CUDA backend takes bf16 or f16 inputs, got f32 (use --dtype bf16, or --backend cpu)");
  if (opt.max_ctas < 0)
    throw UsageError("max_ctas must be 0 (one CTA per SM) or a positive cap, got " + std::to_string(opt.max_ctas));
  check_fwd_supported(fwd_params(p, mask, opt), opt.kernel);
}

void AttentionRunner::check_backward_supported(const AttentionProblem& p, const BlockMask& mask,
                                               const AttentionOptions& opt) {
  check_supported(p, mask, opt);
  BwdParams b;
  static_cast<FwdParams&>(b) = fwd_params(p, mask, opt);
  b.deterministic = opt.deterministic;
  check_bwd_supported(b, opt.bwd_kernel);
}

AttentionRunner::AttentionRunner(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                 const AttentionOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  p.validate(mask);
  check_supported(p, mask, opt);  // before any GPU call: unsupported shapes are usage errors
  init(p, mask, in, opt);
}

AttentionRunner::AttentionRunner(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                 const std::string& kernel)
    : AttentionRunner(p, mask, in, AttentionOptions{Backend::Cuda, kernel, 0}) {}

AttentionRunner::AttentionRunner(Checked, const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                 const AttentionOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  init(p, mask, in, opt);
}

namespace {

// What the kernels' relative bias and u-gating need of the problem: UsageError before any GPU call.
void check_hstu_inputs(const AttentionProblem& p, const AttentionInputs& in) {
  if (in.silu_bias)
    throw UsageError("the CUDA backend takes HSTU's bias as its tables (AttentionInputs::rab), not as a dense "
                     "[H, q, kv] score bias (use --backend cpu)");
  if (in.gate_u && p.score != ScoreFn::Silu) throw UsageError("u-gating is HSTU's: it needs the SiLU score");
  if (!in.rab || !in.rab->any()) return;
  const RelativeBiasTables& r = *in.rab;
  if (p.score != ScoreFn::Silu) throw UsageError("the relative attention bias is HSTU's: it needs the SiLU score");
  if (p.q_len != p.kv_len || p.cu_seqlens_q != p.cu_seqlens_k)
    throw UsageError("the relative attention bias is for self-attention: Q and K must have the same lengths");
  const int64_t big = int64_t(1) << 30;
  if (r.pos && (r.pos_len <= 0 || r.pos_len > big))
    throw UsageError("the position bias table needs 1 to 2^30 entries per head, got " + std::to_string(r.pos_len));
  if (r.ts && (r.ts_buckets <= 0 || r.ts_buckets > big))
    throw UsageError("the timestamp bias table needs 1 to 2^30 buckets per head, got " + std::to_string(r.ts_buckets));
  if (r.ts && !r.timestamps) throw UsageError("the timestamp bias needs the timestamps (one per token)");
}

}  // namespace

void AttentionRunner::init(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                           const AttentionOptions& opt) {
  check_hstu_inputs(p, in);
  if (!gpu_present()) throw RuntimeFailure("no CUDA GPU on this machine; use --backend cpu");
  auto& I = *impl_;
  I.p = p;
  I.variant = opt.kernel;
  I.bwd_kernel = opt.bwd_kernel;
  I.fp = fwd_params(p, mask, opt);
  FwdParams& f = I.fp;
  CUDA_CHECK(cudaStreamCreateWithFlags(&I.stream, cudaStreamNonBlocking));
  cudaStream_t s = I.stream;

  const size_t es = elem_size(p.dtype);
  I.rows_q = size_t(p.total_q() * p.heads_q), I.rows_k = size_t(p.total_k() * p.heads_kv);
  I.d = int(p.head_dim), I.d_kernel = f.head_dim;
  I.q.upload_rows(in.q, I.rows_q, I.d * es, I.d_kernel * es, s);
  I.k.upload_rows(in.k, I.rows_k, I.d * es, I.d_kernel * es, s);
  I.v.upload_rows(in.v, I.rows_k, I.d * es, I.d_kernel * es, s);
  I.o.alloc(I.rows_q * I.d_kernel * es);
  size_t lse_n = size_t(p.varlen() ? p.heads_q * p.total_q() : p.batch * p.heads_q * p.q_len);
  I.lse.alloc(lse_n * 4);
  // Poison O (NaN bit patterns) and LSE so that an unwritten element cannot pass a test.
  CUDA_CHECK(cudaMemsetAsync(I.o.get(), 0xFF, I.o.bytes(), s));
  CUDA_CHECK(cudaMemsetAsync(I.lse.get(), 0xFF, I.lse.bytes(), s));
  if (p.varlen()) {
    I.cu_q.upload(p.cu_seqlens_q.data(), p.cu_seqlens_q.size() * 4, s);
    I.cu_k.upload(p.cu_seqlens_k.data(), p.cu_seqlens_k.size() * 4, s);
  }
  std::vector<uint8_t> types(size_t(p.heads_q));
  std::vector<int32_t> sink(size_t(p.heads_q)), local(size_t(p.heads_q));
  bool any_sparse = false;
  for (int64_t h = 0; h < p.heads_q; ++h) {
    types[h] = uint8_t(mask.heads[h].type);
    sink[h] = int32_t(mask.heads[h].sink_blocks);
    local[h] = int32_t(mask.heads[h].local_blocks);
    any_sparse |= mask.heads[h].type == HeadType::Sparse;
  }
  I.head_type.upload(types.data(), types.size(), s);
  I.head_sink.upload(sink.data(), sink.size() * 4, s);
  I.head_local.upload(local.data(), local.size() * 4, s);
  I.any_sparse = any_sparse;
  if (any_sparse) {  // the row CSR, built on the GPU from the bitmap (dense/streaming heads never read it)
    int64_t rows = mask.shape.batch * mask.shape.heads * mask.shape.mq();
    I.bits.upload(mask.bits.data(), mask.bits.size(), s);
    I.kv_num.alloc(size_t(rows) * 4);
    I.kv_idx.alloc(size_t(rows * mask.shape.mk()) * 4);
    launch_row_csr(I.bits.get<uint8_t>(), rows, f.mk, I.kv_num.get<int32_t>(), I.kv_idx.get<int32_t>(), s);
  }
  f.q = I.q.get();
  f.k = I.k.get();
  f.v = I.v.get();
  f.o = I.o.get();
  f.lse = I.lse.get<float>();
  f.cu_q = I.cu_q.get<int32_t>();
  f.cu_k = I.cu_k.get<int32_t>();
  f.head_type = I.head_type.get<uint8_t>();
  f.head_sink = I.head_sink.get<int32_t>();
  f.head_local = I.head_local.get<int32_t>();
  f.kv_num_blocks = I.kv_num.get<int32_t>();
  f.kv_indices = I.kv_idx.get<int32_t>();
  std::vector<double> bounds;  // read by the copy below before the synchronization at the end
  if (in.rab && in.rab->any()) {
    const RelativeBiasTables& r = *in.rab;
    const size_t H = size_t(p.heads_q);
    RabParams& g = f.rab;
    if (r.pos) {
      I.rab_pos.upload(r.pos, H * size_t(r.pos_len) * 4, s);
      g.pos = I.rab_pos.get<float>(), g.pos_len = int(r.pos_len);
    }
    if (r.ts) {
      bounds = hstu_ts_bucket_bounds(r.ts_buckets);
      I.rab_ts.upload(r.ts, H * size_t(r.ts_buckets) * 4, s);
      I.rab_times.upload(r.timestamps, size_t(p.total_q()) * 8, s);
      I.rab_bounds.upload(bounds.data(), bounds.size() * 8, s);
      g.ts = I.rab_ts.get<float>(), g.ts_buckets = int(r.ts_buckets);
      g.timestamps = I.rab_times.get<double>(), g.ts_bounds = I.rab_bounds.get<double>();
    }
    if (r.dense) {
      I.rab_dense.upload(r.dense, H * size_t(p.q_len) * size_t(p.kv_len) * 4, s);
      g.dense = I.rab_dense.get<float>(), g.dense_q = int(p.q_len), g.dense_k = int(p.kv_len);
    }
  }
  if (in.gate_u) I.gate_u.upload_rows(in.gate_u, I.rows_q, I.d * es, I.d_kernel * es, s);  // padded like O
  // The persistent kernel's counter pool is allocated on the device's first use: here, not inside a
  // launch that a caller may be capturing into a CUDA graph.
  if (select_config(f, device_cc(), opt.kernel).persistent) ws_sched_block();
  CUDA_CHECK(cudaStreamSynchronize(s));
}

AttentionRunner::~AttentionRunner() = default;

void AttentionRunner::launch() {
  auto& I = *impl_;
  launch_attention_fwd(I.fp, I.p.dtype, I.variant, I.stream);
  if (I.gate_u.get()) launch_gate_u(I.o.get(), I.gate_u.get(), int64_t(I.o.bytes() / 2), I.p.dtype, I.stream);
}

void* AttentionRunner::stream() const { return impl_->stream; }

AttentionResult AttentionRunner::result() {
  auto& I = *impl_;
  CUDA_CHECK(cudaStreamSynchronize(I.stream));
  const size_t n = I.rows_q * I.d;
  std::vector<uint16_t> raw(n);
  AttentionResult r;
  r.lse.resize(I.lse.bytes() / 4);
  I.o.download_rows(raw.data(), I.rows_q, I.d * 2, I.d_kernel * 2, I.stream);
  I.lse.download(r.lse.data(), I.lse.bytes(), I.stream);
  CUDA_CHECK(cudaStreamSynchronize(I.stream));
  r.out.resize(n);
  if (I.p.dtype == ElemType::BF16)
    for (size_t x = 0; x < n; ++x) r.out[x] = bf16_to_float(raw[x]);
  else
    for (size_t x = 0; x < n; ++x) r.out[x] = half_to_float(raw[x]);
  return r;
}

namespace {
std::vector<uint16_t> to_dtype(const float* x, size_t n, ElemType t) {
  std::vector<uint16_t> r(n);
  if (t == ElemType::BF16)
    for (size_t i = 0; i < n; ++i) r[i] = float_to_bf16(x[i]);
  else
    for (size_t i = 0; i < n; ++i) r[i] = float_to_half(x[i]);
  return r;
}
}  // namespace

void AttentionRunner::set_forward(const AttentionResult& fwd) {
  auto& I = *impl_;
  if (fwd.out.size() != I.rows_q * I.d || fwd.lse.size() != I.lse.bytes() / 4)
    throw UsageError("backward: the forward result's O (" + std::to_string(fwd.out.size()) + " elements) and LSE (" +
                     std::to_string(fwd.lse.size()) + ") do not match the problem's sizes (" +
                     std::to_string(I.rows_q * I.d) + ", " + std::to_string(I.lse.bytes() / 4) + ")");
  std::vector<uint16_t> o16 = to_dtype(fwd.out.data(), fwd.out.size(), I.p.dtype);
  I.o.write_rows(o16.data(), I.rows_q, I.d * 2, I.d_kernel * 2, I.stream);  // fp.o keeps its address
  CUDA_CHECK(cudaMemcpyAsync(I.lse.get(), fwd.lse.data(), I.lse.bytes(), cudaMemcpyHostToDevice, I.stream));
  CUDA_CHECK(cudaStreamSynchronize(I.stream));  // the host vectors above are freed on return
}

void AttentionRunner::prepare_backward(const float* dout, bool deterministic) {
  auto& I = *impl_;
  const AttentionProblem& p = I.p;
  BwdParams& b = I.bp;
  static_cast<FwdParams&>(b) = I.fp;
  b.deterministic = deterministic;
  if (I.fp.rab.on() || I.gate_u.get())
    throw UsageError("the GPU backward has no HSTU relative bias or u-gating (they run the forward pass only)");
  check_bwd_supported(b, I.bwd_kernel);
  cudaStream_t s = I.stream;
  const size_t qn = I.rows_q * I.d_kernel, kn = I.rows_k * I.d_kernel;  // kernel-side (padded) elements
  const size_t rows = I.lse.bytes() / 4;
  std::vector<uint16_t> d16 = to_dtype(dout, I.rows_q * I.d, p.dtype);
  I.dout.upload_rows(d16.data(), I.rows_q, I.d * 2, I.d_kernel * 2, s);
  I.delta.alloc(rows * 4);
  if (!deterministic) I.dq_accum.alloc(qn * 4);
  I.dq.alloc(qn * 4);
  I.dk.alloc(kn * 4);
  I.dv.alloc(kn * 4);
  // Poison the gradients (NaN bit patterns) so that an unwritten element cannot pass a test.
  for (DeviceBuffer* g : {&I.dq, &I.dk, &I.dv}) CUDA_CHECK(cudaMemsetAsync(g->get(), 0xFF, g->bytes(), s));
  if (I.any_sparse && !I.q_num.get()) {  // the column CSR, built on the GPU from the bitmap (sparse heads only)
    const int64_t heads = int64_t(b.mask_batch) * b.heads_q;
    I.q_num.alloc(size_t(heads * b.mk) * 4);
    I.q_idx.alloc(size_t(heads * b.mk * b.mq) * 4);
    launch_column_csr(I.bits.get<uint8_t>(), heads, b.mq, b.mk, I.q_num.get<int32_t>(), I.q_idx.get<int32_t>(), s);
  }
  b.dout = I.dout.get();
  b.delta = I.delta.get<float>();
  b.dq_accum = I.dq_accum.get<float>();
  b.dq = I.dq.get<float>();
  b.dk = I.dk.get<float>();
  b.dv = I.dv.get<float>();
  b.q_num_blocks = I.q_num.get<int32_t>();
  b.q_indices = I.q_idx.get<int32_t>();
  CUDA_CHECK(cudaStreamSynchronize(s));
  I.backward_ready = true;
}

void AttentionRunner::launch_backward() {
  if (!impl_->backward_ready) throw RuntimeFailure("AttentionRunner::launch_backward before prepare_backward");
  launch_attention_bwd(impl_->bp, impl_->p.dtype, impl_->stream, impl_->bwd_kernel);
}

AttentionGradients AttentionRunner::gradients() {
  auto& I = *impl_;
  if (!I.backward_ready) throw RuntimeFailure("AttentionRunner::gradients before prepare_backward");
  CUDA_CHECK(cudaStreamSynchronize(I.stream));
  AttentionGradients g;
  g.dq.resize(I.rows_q * I.d);
  g.dk.resize(I.rows_k * I.d);
  g.dv.resize(I.rows_k * I.d);
  I.dq.download_rows(g.dq.data(), I.rows_q, I.d * 4, I.d_kernel * 4, I.stream);
  I.dk.download_rows(g.dk.data(), I.rows_k, I.d * 4, I.d_kernel * 4, I.stream);
  I.dv.download_rows(g.dv.data(), I.rows_k, I.d * 4, I.d_kernel * 4, I.stream);
  CUDA_CHECK(cudaStreamSynchronize(I.stream));
  return g;
}

std::string AttentionRunner::backward_name() const {
  const BwdConfig c = resolve_bwd_config(impl_->bp, impl_->bwd_kernel);
  return "bwd-" + c.name + (c.dq_separate ? "-deterministic" : "");
}

std::string AttentionRunner::kernel_name() const { return resolve_fwd_variant(impl_->fp, impl_->variant); }

std::vector<std::string> AttentionRunner::kernel_variants() { return fwd_variants(); }

}  // namespace bsattn::cuda
