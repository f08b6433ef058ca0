// The CUDA engine of the ring (lib/ring/rank_engine.h): a rank's shards, slots and running output on its GPU,
// each step one device pass (lib/backend.h's DeviceAttention) on the rank's stream, then the LSE merge below.
// The sub-masks' bitmaps are uploaded by prepare() before the ring starts; each pass builds its row CSR
// (and, backward, its column CSR) from them in its workspace.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/elem16.cuh"
#include "kernels/ring_engine.h"
#include "lib/backend.h"
#include "lib/error.h"
#include "lib/npy.h"

namespace bsattn::cuda {

namespace {

// One warp per (b, h, row): the step's partial (O_b in 16 bits, L_b) merged into the running (O, L) in f32;
// a row the step left empty (L_b = -inf) keeps its value, and one empty so far takes the step's.
template <class T>
__global__ void merge_kernel(float* out, float* lse, const T* part_out, const float* part_lse, int64_t batch,
                             int64_t rows, int heads, int head_dim) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= batch * heads * rows) return;
  const int64_t i = warp % rows, bh = warp / rows, h = bh % heads, b = bh / heads;
  const float la = lse[warp], lb = part_lse[warp];
  if (lb == -INFINITY) return;
  float* o = out + ((b * rows + i) * heads + h) * head_dim;
  const T* ob = part_out + ((b * rows + i) * heads + h) * head_dim;
  float wa = 0.f, wb = 1.f, l = lb;
  if (la != -INFINITY) {
    const float m = fmaxf(la, lb), ea = __expf(la - m), eb = __expf(lb - m), s = ea + eb;
    wa = ea / s, wb = eb / s, l = m + __logf(s);
  }
  for (int d = lane; d < head_dim; d += 32) o[d] = wa * o[d] + wb * to_float(ob[d]);
  __syncwarp();
  if (lane == 0) lse[warp] = l;
}

__global__ void fill_kernel(float* x, float v, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = v;
}

__global__ void add_kernel(float* dst, const float* src, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] += src[i];
}

unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

class CudaRankEngine : public ring::RankEngine {
 public:
  CudaRankEngine(int device, const ring::EngineSizes& s, const AttentionOptions& opt) : dev_(device), s_(s), opt_(opt) {
    if (s.dtype != ElemType::BF16 && s.dtype != ElemType::F16)
      throw UsageError("the ring's CUDA engine takes bf16 or f16 inputs");
    CUDA_CHECK(cudaSetDevice(dev_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    q_.alloc(size_t(q_elems()) * 2);
    for (auto& sl : slots_) sl.alloc(shard_bytes(s.max_rows, s.gradients));
    out_.alloc(size_t(q_elems()) * 4);
    lse_.alloc(size_t(lse_elems()) * 4);
    part_out_.alloc(size_t(q_elems()) * 2);
    part_lse_.alloc(size_t(lse_elems()) * 4);
    if (s.gradients) {
      dout_.alloc(size_t(q_elems()) * 2);
      fwd_out_.alloc(size_t(q_elems()) * 2);
      dq_.alloc(size_t(q_elems()) * 4);
      dq_part_.alloc(size_t(q_elems()) * 4);
      dk_part_.alloc(size_t(kv_elems(s.max_rows)) * 4);
      dv_part_.alloc(size_t(kv_elems(s.max_rows)) * 4);
    }
  }
  ~CudaRankEngine() override {
    cudaSetDevice(dev_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  size_t shard_bytes(int64_t rows, bool gradients) const override {
    return size_t(kv_elems(rows)) * (2 * 2 + (gradients ? 2 * 4 : 0));
  }
  void* slot(int s) override { return slots_[s].get(); }
  void copy(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void* compute_stream() override { return stream_; }

  void prepare(const BlockMask& mask) override {
    if (bits_.count(&mask)) return;
    CUDA_CHECK(cudaSetDevice(dev_));
    DeviceBuffer bits;
    bits.upload(mask.bits.data(), mask.bits.size(), stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    bits_[&mask] = std::move(bits);
  }

  void load(const float* q, const float* k, const float* v) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    const int64_t nk = kv_elems(s_.own_rows);
    upload16(q_.get(), q, q_elems());
    char* s0 = slots_[0].get<char>();
    upload16(s0, k, nk);
    upload16(s0 + nk * 2, v, nk);
    if (s_.gradients) CUDA_CHECK(cudaMemsetAsync(s0 + nk * 4, 0, size_t(nk) * 8, stream_));
    CUDA_CHECK(cudaMemsetAsync(out_.get(), 0, out_.bytes(), stream_));
    fill(lse_.get<float>(), -std::numeric_limits<float>::infinity(), lse_elems());
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void forward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    DeviceAttention a = pass(slot, sub, mask);
    a.o = part_out_.get();
    a.lse = part_lse_.get<float>();
    workspace(a, false);
    device_attention_forward(a);
    const int64_t warps = s_.batch * s_.heads_q * s_.own_rows;
    if (s_.dtype == ElemType::BF16)
      merge_kernel<<<blocks_for(warps * 32, 256), 256, 0, stream_>>>(out_.get<float>(), lse_.get<float>(),
                                                                    part_out_.get<__nv_bfloat16>(), part_lse_.get<float>(),
                                                                    s_.batch, s_.own_rows, int(s_.heads_q), int(s_.head_dim));
    else
      merge_kernel<<<blocks_for(warps * 32, 256), 256, 0, stream_>>>(out_.get<float>(), lse_.get<float>(),
                                                                    part_out_.get<__half>(), part_lse_.get<float>(),
                                                                    s_.batch, s_.own_rows, int(s_.heads_q), int(s_.head_dim));
    CUDA_CHECK_LAUNCH("ring merge_kernel");
  }

  void read_output(float* out, float* lse) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    out_.download(out, out_.bytes(), stream_);
    lse_.download(lse, lse_.bytes(), stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void begin_backward(const float* dout, const float* out, const float* lse) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    upload16(dout_.get(), dout, q_elems());
    upload16(fwd_out_.get(), out, q_elems());
    CUDA_CHECK(cudaMemcpyAsync(lse_.get(), lse, lse_.bytes(), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemsetAsync(dq_.get(), 0, dq_.bytes(), stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void backward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    DeviceAttention a = pass(slot, sub, mask);
    const int64_t nk = kv_elems(sub.kv_len);
    a.o = fwd_out_.get();
    a.lse = lse_.get<float>();
    a.dout = dout_.get();
    a.dq = dq_part_.get<float>();
    a.dk = dk_part_.get<float>();
    a.dv = dv_part_.get<float>();
    CUDA_CHECK(cudaMemsetAsync(dq_part_.get(), 0, dq_part_.bytes(), stream_));
    CUDA_CHECK(cudaMemsetAsync(dk_part_.get(), 0, size_t(nk) * 4, stream_));
    CUDA_CHECK(cudaMemsetAsync(dv_part_.get(), 0, size_t(nk) * 4, stream_));
    workspace(a, true);
    device_attention_backward(a);
    float* dk = reinterpret_cast<float*>(slots_[slot].get<char>() + nk * 4);
    add(dq_.get<float>(), dq_part_.get<float>(), q_elems());
    add(dk, dk_part_.get<float>(), nk);
    add(dk + nk, dv_part_.get<float>(), nk);
  }

  void read_gradients(int slot, float* dq, float* dk, float* dv) override {
    CUDA_CHECK(cudaSetDevice(dev_));
    const int64_t nk = kv_elems(s_.own_rows);
    const char* g = slots_[slot].get<char>() + nk * 4;
    dq_.download(dq, dq_.bytes(), stream_);
    CUDA_CHECK(cudaMemcpyAsync(dk, g, size_t(nk) * 4, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaMemcpyAsync(dv, g + nk * 4, size_t(nk) * 4, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void synchronize() override {
    CUDA_CHECK(cudaSetDevice(dev_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  size_t memory_bytes() const override {
    size_t n = q_.bytes() + out_.bytes() + lse_.bytes() + part_out_.bytes() + part_lse_.bytes() + ws_.bytes() +
               dout_.bytes() + fwd_out_.bytes() + dq_.bytes() + dq_part_.bytes() + dk_part_.bytes() + dv_part_.bytes();
    for (const auto& sl : slots_) n += sl.bytes();
    for (const auto& b : bits_) n += b.second.bytes();
    return n;
  }
  const char* name() const override { return s_.dtype == ElemType::BF16 ? "cuda (bf16)" : "cuda (f16)"; }

 private:
  int64_t q_elems() const { return s_.batch * s_.own_rows * s_.heads_q * s_.head_dim; }
  int64_t lse_elems() const { return s_.batch * s_.heads_q * s_.own_rows; }
  int64_t kv_elems(int64_t rows) const { return s_.batch * rows * s_.heads_kv * s_.head_dim; }

  // Float32 values (exact in the dtype) as their 16-bit patterns, rounded to nearest even as to_16bit does.
  void upload16(void* dst, const float* src, int64_t n) {
    std::vector<uint16_t> h(static_cast<size_t>(n));
    const bool bf16 = s_.dtype == ElemType::BF16;
    for (int64_t i = 0; i < n; ++i) h[size_t(i)] = bf16 ? float_to_bf16(src[i]) : float_to_half(src[i]);
    CUDA_CHECK(cudaMemcpyAsync(dst, h.data(), size_t(n) * 2, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // `h` is freed on return
  }
  void fill(float* x, float v, int64_t n) {
    if (n == 0) return;
    fill_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(x, v, n);
    CUDA_CHECK_LAUNCH("ring fill_kernel");
  }
  void add(float* dst, const float* src, int64_t n) {
    if (n == 0) return;
    add_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(dst, src, n);
    CUDA_CHECK_LAUNCH("ring add_kernel");
  }

  DeviceAttention pass(int slot, const AttentionProblem& sub, const BlockMask& mask) {
    auto it = bits_.find(&mask);
    if (it == bits_.end()) {
      prepare(mask);
      it = bits_.find(&mask);
    }
    DeviceAttention a;
    a.problem = sub;
    a.mask_shape = mask.shape;
    a.causal = mask.causal;
    a.bits = it->second.get<uint8_t>();
    a.q = q_.get();
    a.k = slots_[slot].get();
    a.v = slots_[slot].get<char>() + kv_elems(sub.kv_len) * 2;
    a.stream = stream_;
    a.options = opt_;
    a.options.backend = Backend::Cuda;
    return a;
  }
  // Grows the workspace to what the pass needs (every rank's steps have the same sizes but their shards').
  void workspace(DeviceAttention& a, bool backward) {
    const size_t need = device_attention_workspace(a, backward);
    if (need > ws_.bytes()) {
      CUDA_CHECK(cudaStreamSynchronize(stream_));
      ws_.alloc(need);
    }
    a.workspace = ws_.get();
    a.workspace_bytes = ws_.bytes();
  }

  int dev_;
  ring::EngineSizes s_;
  AttentionOptions opt_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer q_, slots_[2], out_, lse_, part_out_, part_lse_, ws_;
  DeviceBuffer dout_, fwd_out_, dq_, dq_part_, dk_part_, dv_part_;
  std::map<const BlockMask*, DeviceBuffer> bits_;
};

}  // namespace

std::unique_ptr<ring::RankEngine> make_ring_engine(int device, const ring::EngineSizes& sizes, const AttentionOptions& opt) {
  return std::make_unique<CudaRankEngine>(device, sizes, opt);
}

int ring_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace bsattn::cuda
