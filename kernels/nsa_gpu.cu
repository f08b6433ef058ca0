// NSA's forward on the GPU (lib/nsa/nsa_gpu.h lists the steps).
//
//   nsa_compress_kernel  one CTA per (compressed block, KV head, batch), D threads: the weighted sum of the
//       block's `block` key and value rows in f32, rounded to the 16-bit type, written for each query head
//       of the group (so that the GEMMs batch over query heads with one stride).
//   cuBLAS               scores [Hq, chunk, Nc] (rows padded to 8) = scale * Q Kc^T (f32), then o_cmp = P Vc (f32), per batch
//       and chunk of queries; the columns past the chunk's last visible compressed block are skipped.
//   nsa_select_kernel    one CTA per (query row of qblock queries, KV group), 16 warps: a warp per (query,
//       head) row of the group: max and sum of exp over the row's visible blocks, P written (zeros past the
//       visible ones), P added to the row's per-block mass in shared memory; then each key block's
//       importance from the compressed blocks overlapping it; then block_taken (kernels/nsa_select.h)
//       per key block; the bitmap row written for each head of the group.
//   nsa_gate_kernel      the gated sum, one element per thread.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention_device.h"
#include "kernels/attention_fwd.h"
#include "kernels/attention_runner.h"
#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/elem16.cuh"
#include "kernels/mask_build_device.h"
#include "kernels/nsa_select.h"
#include "kernels/sparse_pipelines.h"
#include "kernels/timing.h"
#include "lib/error.h"
#include "lib/npy.h"
#include "lib/nsa/nsa_gpu.h"

namespace bsattn::cuda {

namespace {

template <class T>
__global__ void nsa_compress_kernel(const T* k, const T* v, const float* w, int64_t seq, int hkv, int group, int dim,
                                    int block, int stride, int64_t nc, T* kc, T* vc) {
  const int64_t i = blockIdx.x;
  const int g = blockIdx.y, d = threadIdx.x;
  const int64_t b = blockIdx.z;
  float ak = 0.f, av = 0.f;
  for (int j = 0; j < block; ++j) {
    const int64_t src = ((b * seq + i * stride + j) * hkv + g) * dim + d;
    ak += w[j] * to_float(k[src]);
    av += w[j] * to_float(v[src]);
  }
  const int heads = hkv * group;
  for (int hh = 0; hh < group; ++hh) {
    const int64_t dst = ((b * heads + g * group + hh) * nc + i) * dim + d;
    kc[dst] = from_float<T>(ak);
    vc[dst] = from_float<T>(av);
  }
}

struct SelectArgs {
  const float* scores = nullptr;  // [Hq, chunk, ld], chunk rows from query t0
  void* p = nullptr;              // [Hq, chunk, ld] 16-bit
  uint8_t* bits = nullptr;        // [B, Hq, Mq, Ms]
  int64_t b = 0, seq = 0, t0 = 0, chunk = 0, nc = 0, nv = 0;  // nv: visible blocks of the chunk's last query
  int64_t ld = 0;                 // row stride of scores and P (nc rounded up to 8)
  int64_t row0 = 0, mq = 0, ms = 0;
  int heads = 0, group = 0, qblock = 0, block = 0, stride = 0, select = 0;
  int64_t topn = 0, init = 0, local = 0;
};

// Blocks a query t sees: those ending at or before it.
__device__ __forceinline__ int64_t visible_blocks(int64_t t, int64_t block, int64_t stride, int64_t nc) {
  return t + 1 >= block ? min(nc, (t + 1 - block) / stride + 1) : 0;
}

// 16 warps: a CTA's rows are qblock queries x the group's heads (256 at qblock 64, GQA 4), 16 per warp.
constexpr int kSelectThreads = 512;

template <class T>
__global__ void __launch_bounds__(kSelectThreads) nsa_select_kernel(SelectArgs a) {
  extern __shared__ float sh[];
  float* mass = sh;               // [nv]: the row's and group's probability per compressed block
  float* imp = sh + a.nv;         // [ms]: importance per key block
  uint8_t* take = reinterpret_cast<uint8_t*>(imp + a.ms);  // [ms]
  const int64_t row = a.row0 + blockIdx.x;
  const int g = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int64_t tq0 = row * a.qblock, tq1 = min(a.seq, tq0 + a.qblock);
  for (int64_t i = threadIdx.x; i < a.nv; i += blockDim.x) mass[i] = 0.f;
  for (int64_t j = threadIdx.x; j < a.ms; j += blockDim.x) imp[j] = 0.f;
  __syncthreads();
  const int64_t work = (tq1 - tq0) * a.group;
  T* pbase = static_cast<T*>(a.p);
  for (int64_t r = warp; r < work; r += nwarps) {
    const int64_t t = tq0 + r / a.group;
    const int h = g * a.group + int(r % a.group);
    const int64_t nvis = visible_blocks(t, a.block, a.stride, a.nc);
    const float* srow = a.scores + (int64_t(h) * a.chunk + (t - a.t0)) * a.ld;
    T* prow = pbase + (int64_t(h) * a.chunk + (t - a.t0)) * a.ld;
    // The row's max, then its sum of exponentials: one expf per element here and one for P below.
    float m = -INFINITY, s = 0.f;
    for (int64_t i = lane; i < nvis; i += 32) m = fmaxf(m, srow[i]);
    for (int off = 16; off; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    for (int64_t i = lane; i < nvis; i += 32) s += expf(srow[i] - m);
    for (int off = 16; off; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    const float inv = nvis ? 1.f / s : 0.f;
    for (int64_t i = lane; i < a.nv; i += 32) {
      const float p = i < nvis ? expf(srow[i] - m) * inv : 0.f;
      prow[i] = from_float<T>(p);
      if (i < nvis) atomicAdd(&mass[i], p);
    }
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < a.nv; i += blockDim.x) {
    const float x = mass[i];
    if (x == 0.f) continue;
    const int64_t j0 = i * a.stride / a.select, j1 = min((i * a.stride + a.block - 1) / a.select, a.ms - 1);
    for (int64_t j = j0; j <= j1; ++j) atomicAdd(&imp[j], x);
  }
  __syncthreads();
  const int64_t c = (tq1 - 1) / a.select;  // the key block of the row's last query
  for (int64_t j = threadIdx.x; j < a.ms; j += blockDim.x)
    take[j] = j <= c && nsa::block_taken(imp, j, c, a.init, a.local, a.topn);
  __syncthreads();
  for (int hh = 0; hh < a.group; ++hh) {
    uint8_t* out = a.bits + ((a.b * a.heads + g * a.group + hh) * a.mq + row) * a.ms;
    for (int64_t j = threadIdx.x; j < a.ms; j += blockDim.x) out[j] = take[j];
  }
}

template <class T>
__global__ void nsa_gate_kernel(const float* cmp, const T* slc, const T* win, const float* gates, T* out, int64_t n,
                                int dim) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int64_t gi = e / dim * 3;
  const float third = 1.f / 3.f;
  const float gc = gates ? gates[gi] : third, gs = gates ? gates[gi + 1] : third, gw = gates ? gates[gi + 2] : third;
  out[e] = from_float<T>(gc * cmp[e] + gs * to_float(slc[e]) + gw * to_float(win[e]));
}

void check_nsa_gpu(const AttentionProblem& p, const NsaParams& np, const AttentionOptions& opt) {
  const std::string what = "NSA on the GPU (--backend cuda)";
  if (p.varlen()) throw UsageError(what + " takes one fixed-length batch at a time");
  if (p.q_len != p.kv_len) throw UsageError("NSA is self-attention: Q and K must have the same length");
  if (p.score != ScoreFn::Softmax) throw UsageError("NSA takes softmax scores (drop --score silu)");
  if (p.heads_q % p.heads_kv) throw UsageError("NSA: query heads must be a multiple of key/value heads");
  if (p.dtype != ElemType::BF16 && p.dtype != ElemType::F16)
    throw UsageError(what + " takes bf16 or f16 inputs (use --dtype bf16, or --backend cpu)");
  if (p.head_dim > 1024)  // the compression kernel's threads
    throw UsageError(what + " takes head_dim up to 1024, got " + std::to_string(p.head_dim));
  if (np.qblock != 64 && np.qblock != 128)
    throw UsageError(what + ": qblock=" + std::to_string(np.qblock) +
                     " (allowed: 64 or 128, the forward kernels' query block; qblock=1 runs with --backend cpu)");
  if (np.select != 64 && np.select != 128)
    throw UsageError(what + ": select=" + std::to_string(np.select) + " (allowed: 64 or 128, the forward kernels' key block)");
  const int64_t S = p.q_len, nc = S >= np.block ? (S - np.block) / np.stride + 1 : 0, ms = (S + np.select - 1) / np.select;
  if (nc * 4 + ms * 5 > 200 * 1024)
    throw UsageError(what + ": " + std::to_string(nc) + " compressed blocks and " + std::to_string(ms) +
                     " key blocks do not fit the selection kernel's shared memory (allowed: 4*Nc + 5*Ms <= 200 KiB; "
                     "a larger stride or select, or --backend cpu)");
  BlockMask shape_only(MaskShape{p.batch, p.heads_q, S, S, np.qblock, np.select});
  shape_only.causal = true;
  p.validate(shape_only);
  AttentionRunner::check_supported(p, shape_only, opt);
}

// One problem resident on the GPU: inputs, compressed K/V, the chunk's scores and P, the masks' CSRs, the
// branches' outputs, the gated output.
class NsaDevice {
 public:
  NsaDevice(const AttentionProblem& p, const NsaParams& np, const AttentionInputs& in, const float* gates,
            const AttentionOptions& opt)
      : p_(p), np_(np), opt_(opt) {
    check_nsa_gpu(p, np, opt);
    if (!gpu_present()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
    B_ = p.batch, S_ = p.q_len, H_ = p.heads_q, Hkv_ = p.heads_kv, D_ = p.head_dim, G_ = H_ / Hkv_;
    nc_ = S_ >= np.block ? (S_ - np.block) / np.stride + 1 : 0;
    // Rows of scores and P 8 elements apart at least: aligned leading dimensions let cuBLAS take its
    // Hopper kernels (with nc itself, often odd, it ran Turing-era align1 kernels at several times the time).
    ld_ = (nc_ + 7) / 8 * 8;
    mq_ = (S_ + np.qblock - 1) / np.qblock, ms_ = (S_ + np.select - 1) / np.select;
    // Queries per chunk: at most 4096 (a chunk's GEMMs stop at its last query's visible blocks, so that
    // causality halves the scores written and read over the sequence) and scores (f32) and P (16-bit) of
    // every query head within about 3 GiB.
    const int64_t per_query = std::max<int64_t>(1, H_ * ld_ * 6);
    chunk_ = std::max<int64_t>(np.qblock, std::min<int64_t>(4096, (int64_t(3) << 30) / per_query) / np.qblock * np.qblock);
    chunk_ = std::min(chunk_, mq_ * np.qblock);
    window_ = nsa_window_mask(p, np);

    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&blas_));
    CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    const size_t es = elem_size(p.dtype), nq = size_t(B_ * S_ * H_ * D_), nk = size_t(B_ * S_ * Hkv_ * D_);
    q_.upload(in.q, nq * es, stream_);
    k_.upload(in.k, nk * es, stream_);
    v_.upload(in.v, nk * es, stream_);
    std::vector<float> w = np.pool.empty() ? std::vector<float>(size_t(np.block), 1.f / float(np.block))
                                           : std::vector<float>(np.pool.begin(), np.pool.end());
    pool_.upload(w.data(), w.size() * 4, stream_);
    if (gates) gates_.upload(gates, size_t(B_ * S_ * H_ * 3) * 4, stream_);
    if (nc_ > 0) {
      kc_.alloc(size_t(B_ * H_ * nc_ * D_) * es), vc_.alloc(kc_.bytes());
      scores_.alloc(size_t(H_ * chunk_ * ld_) * 4);
      prob_.alloc(size_t(H_ * chunk_ * ld_) * es);
    }
    ocmp_.alloc(nq * 4);
    const int64_t rows = B_ * H_ * mq_;
    sel_bits_.alloc(size_t(rows * ms_));
    sel_num_.alloc(size_t(rows) * 4), sel_idx_.alloc(size_t(rows * ms_) * 4);
    win_bits_.upload(window_.bits.data(), window_.bits.size(), stream_);
    win_num_.alloc(size_t(rows) * 4), win_idx_.alloc(size_t(rows * ms_) * 4);
    launch_row_csr(win_bits_.get<uint8_t>(), rows, int(ms_), win_num_.get<int32_t>(), win_idx_.get<int32_t>(), stream_);
    oslc_.alloc(nq * es), owin_.alloc(nq * es), out_.alloc(nq * es);
    // NaN (0xFF bytes; 255 in the bitmap) until a step writes it: an element left unwritten shows in the result.
    for (DeviceBuffer* b : {&ocmp_, &oslc_, &owin_, &out_, &sel_bits_})
      CUDA_CHECK(cudaMemsetAsync(b->get(), 0xFF, b->bytes(), stream_));
    lse_slc_.alloc(size_t(B_ * H_ * S_) * 4), lse_win_.alloc(lse_slc_.bytes());
    const std::vector<uint8_t> head_type(size_t(H_), uint8_t(HeadType::Sparse));
    const std::vector<int32_t> zeros(size_t(H_), 0);
    head_type_.upload(head_type.data(), head_type.size(), stream_);
    head_zero_.upload(zeros.data(), zeros.size() * 4, stream_);
    auto pass = [&](DeviceBuffer& num, DeviceBuffer& idx, DeviceBuffer& o, DeviceBuffer& lse) {
      DeviceAttention a;
      a.problem = p;
      a.mask_shape = window_.shape;
      a.causal = true;
      a.head_type = head_type_.get<uint8_t>();
      a.head_sink = a.head_local = head_zero_.get<int32_t>();
      a.kv_num_blocks = num.get<int32_t>();
      a.kv_indices = idx.get<int32_t>();
      a.q = q_.get(), a.k = k_.get(), a.v = v_.get();
      a.o = o.get();
      a.lse = lse.get<float>();
      a.stream = stream_;
      a.options = opt;
      return a;
    };
    slc_pass_ = pass(sel_num_, sel_idx_, oslc_, lse_slc_);
    win_pass_ = pass(win_num_, win_idx_, owin_, lse_win_);
    // One workspace for both passes (one after the other on the stream): head dims the kernels run padded.
    const size_t ws = std::max(device_workspace_bytes(slc_pass_, false), device_workspace_bytes(win_pass_, false));
    workspace_.alloc(ws);
    for (DeviceAttention* a : {&slc_pass_, &win_pass_}) a->workspace = workspace_.get(), a->workspace_bytes = ws;
    kernel_ = resolve_fwd_variant(fwd_params(p, window_, opt), opt.kernel);
    const size_t smem = size_t(nc_) * 4 + size_t(ms_) * 5;
    if (smem > 48 * 1024) {
      auto set = [&](auto kernel) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      };
      if (p.dtype == ElemType::BF16) set(nsa_select_kernel<__nv_bfloat16>);
      else set(nsa_select_kernel<__half>);
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  ~NsaDevice() {
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  NsaDevice(const NsaDevice&) = delete;
  NsaDevice& operator=(const NsaDevice&) = delete;

  // Steps 1-4: compression, the compressed branch and the selection with its row CSR.
  void selection() {
    if (p_.dtype == ElemType::BF16) selection_t<__nv_bfloat16>();
    else selection_t<__half>();
  }
  void branches() {
    forward_device(slc_pass_);
    forward_device(win_pass_);
  }
  void gate() {
    const int64_t n = B_ * S_ * H_ * D_;
    const unsigned grid = unsigned((n + 255) / 256);
    const float* g = gates_.bytes() ? gates_.get<float>() : nullptr;
    if (p_.dtype == ElemType::BF16)
      nsa_gate_kernel<__nv_bfloat16><<<grid, 256, 0, stream_>>>(ocmp_.get<float>(), oslc_.get<__nv_bfloat16>(),
                                                                owin_.get<__nv_bfloat16>(), g, out_.get<__nv_bfloat16>(), n, int(D_));
    else
      nsa_gate_kernel<__half><<<grid, 256, 0, stream_>>>(ocmp_.get<float>(), oslc_.get<__half>(), owin_.get<__half>(), g,
                                                         out_.get<__half>(), n, int(D_));
    CUDA_CHECK_LAUNCH("nsa_gate_kernel");
  }
  void all() {
    selection();
    branches();
    gate();
  }
  cudaStream_t stream() const { return stream_; }
  const std::string& kernel() const { return kernel_; }

  NsaBranches result() {
    NsaBranches r;
    const size_t n = size_t(B_ * S_ * H_ * D_);
    std::vector<uint16_t> o16(n), s16(n), w16(n);
    r.cmp.resize(n);
    MaskShape ms = window_.shape;
    r.select_mask = BlockMask(ms);
    r.select_mask.causal = true;
    out_.download(o16.data(), n * 2, stream_);
    oslc_.download(s16.data(), n * 2, stream_);
    owin_.download(w16.data(), n * 2, stream_);
    ocmp_.download(r.cmp.data(), n * 4, stream_);
    sel_bits_.download(r.select_mask.bits.data(), r.select_mask.bits.size(), stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    auto widen = [&](const std::vector<uint16_t>& x) {
      std::vector<float> f(x.size());
      const bool bf = p_.dtype == ElemType::BF16;
      for (size_t i = 0; i < x.size(); ++i) f[i] = bf ? bf16_to_float(x[i]) : half_to_float(x[i]);
      return f;
    };
    r.out = widen(o16), r.slc = widen(s16), r.win = widen(w16);
    r.window_mask = window_;
    r.compressed_blocks = nc_;
    return r;
  }

 private:
  template <class T>
  void selection_t() {
    const cudaDataType dt = std::is_same_v<T, __nv_bfloat16> ? CUDA_R_16BF : CUDA_R_16F;
    if (nc_ > 0) {
      nsa_compress_kernel<T><<<dim3(unsigned(nc_), unsigned(Hkv_), unsigned(B_)), unsigned(D_), 0, stream_>>>(
          k_.get<T>(), v_.get<T>(), pool_.get<float>(), S_, int(Hkv_), int(G_), int(D_), int(np_.block), int(np_.stride), nc_,
          kc_.get<T>(), vc_.get<T>());
      CUDA_CHECK_LAUNCH("nsa_compress_kernel");
    }
    const float scale = float(p_.effective_scale()), one = 1.f, zero = 0.f;
    const size_t smem = size_t(nc_) * 4 + size_t(ms_) * 5;
    for (int64_t b = 0; b < B_; ++b)
      for (int64_t t0 = 0; t0 < S_; t0 += chunk_) {
        const int64_t n = std::min(chunk_, S_ - t0), last = t0 + n - 1;
        const int64_t nv = last + 1 >= np_.block ? std::min(nc_, (last + 1 - np_.block) / np_.stride + 1) : 0;
        float* ocmp = ocmp_.get<float>() + (b * S_ + t0) * H_ * D_;
        if (nv > 0) {
          // scores[h, t, i] = scale * q_t . Kc_i (column-major: Kc^T-by-Q^T products of nv x n, ldc ld).
          CUBLAS_CHECK(cublasGemmStridedBatchedEx(
              blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(nv), int(n), int(D_), &scale, kc_.get<T>() + b * H_ * nc_ * D_, dt,
              int(D_), nc_ * D_, q_.get<T>() + (b * S_ + t0) * H_ * D_, dt, int(H_ * D_), D_, &zero, scores_.get<float>(),
              CUDA_R_32F, int(ld_), chunk_ * ld_, int(H_), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        }
        SelectArgs a;
        a.scores = scores_.get<float>(), a.p = prob_.get(), a.bits = sel_bits_.get<uint8_t>();
        a.b = b, a.seq = S_, a.t0 = t0, a.chunk = chunk_, a.nc = nc_, a.nv = nv, a.ld = ld_;
        a.row0 = t0 / np_.qblock, a.mq = mq_, a.ms = ms_;
        a.heads = int(H_), a.group = int(G_), a.qblock = int(np_.qblock), a.block = int(np_.block);
        a.stride = int(np_.stride), a.select = int(np_.select);
        a.topn = np_.topn, a.init = np_.init, a.local = np_.local;
        const int64_t rows = (n + np_.qblock - 1) / np_.qblock;
        nsa_select_kernel<T><<<dim3(unsigned(rows), unsigned(Hkv_)), kSelectThreads, smem, stream_>>>(a);
        CUDA_CHECK_LAUNCH("nsa_select_kernel");
        if (nv > 0) {
          // o_cmp[t, h, :] = sum_i P[h, t, i] Vc_i (column-major: D x n, ldc Hq*D).
          CUBLAS_CHECK(cublasGemmStridedBatchedEx(
              blas_, CUBLAS_OP_N, CUBLAS_OP_N, int(D_), int(n), int(nv), &one, vc_.get<T>() + b * H_ * nc_ * D_, dt,
              int(D_), nc_ * D_, prob_.get<T>(), dt, int(ld_), chunk_ * ld_, &zero, ocmp, CUDA_R_32F, int(H_ * D_), D_,
              int(H_), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        } else {
          CUDA_CHECK(cudaMemsetAsync(ocmp, 0, size_t(n * H_ * D_) * 4, stream_));  // no query of the chunk sees a block
        }
      }
    const int64_t rows = B_ * H_ * mq_;
    launch_row_csr(sel_bits_.get<uint8_t>(), rows, int(ms_), sel_num_.get<int32_t>(), sel_idx_.get<int32_t>(), stream_);
  }

  AttentionProblem p_;
  NsaParams np_;
  AttentionOptions opt_;
  int64_t B_ = 0, S_ = 0, H_ = 0, Hkv_ = 0, D_ = 0, G_ = 1, nc_ = 0, ld_ = 0, mq_ = 0, ms_ = 0, chunk_ = 0;
  BlockMask window_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceBuffer q_, k_, v_, pool_, gates_, kc_, vc_, scores_, prob_, ocmp_;
  DeviceBuffer sel_bits_, sel_num_, sel_idx_, win_bits_, win_num_, win_idx_;
  DeviceBuffer oslc_, owin_, out_, lse_slc_, lse_win_, head_type_, head_zero_, workspace_;
  DeviceAttention slc_pass_, win_pass_;
  std::string kernel_;
};

class CudaNsaGpu : public NsaGpu {
 public:
  void check(const AttentionProblem& p, const NsaParams& np, const AttentionOptions& opt) const override {
    check_nsa_gpu(p, np, opt);
  }
  NsaBranches forward(const AttentionProblem& p, const NsaParams& np, const AttentionInputs& in, const float* gates,
                      const AttentionOptions& opt) override {
    NsaDevice d(p, np, in, gates, opt);
    d.all();
    return d.result();
  }
  NsaGpuTiming time(const AttentionProblem& p, const NsaParams& np, const AttentionInputs& in, const float* gates,
                    const AttentionOptions& opt, const bench::TimingOptions& timing) override {
    NsaDevice d(p, np, in, gates, opt);
    GpuTimer timer(d.stream(), true);
    auto timed = [&](auto&& fn) { return bench::measure([&]() { return timer.sample_ms(fn); }, timing); };
    NsaGpuTiming t;
    t.total = timed([&] { d.all(); });
    t.selection = timed([&] { d.selection(); });
    t.branches = timed([&] { d.branches(); });
    t.gate = timed([&] { d.gate(); });
    t.sm_clock_mhz = timer.measure_sm_clock_mhz();
    t.kernel = d.kernel();
    return t;
  }
};

}  // namespace

NsaGpu& nsa_gpu_instance() {
  static CudaNsaGpu instance;
  return instance;
}

}  // namespace bsattn::cuda
