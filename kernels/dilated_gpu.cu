// Dilated attention's forward on the GPU (lib/dilated/dilated_gpu.h says what runs where).
//
//   (strided branches, r dividing S: no copy; the branch reads Q/K/V as they are, viewed as
//       [B*S/r, r*H, D], and writes O in the original order: lib/dilated/dilated.h)
//   gather_rows_kernel  residue-form branches: token rows (Hx * D 16-bit values) copied into the residue order, 16 bytes
//       per thread: dst row b*S + j = src row b*S + perm[j], only the heads that read position j (the
//       query heads whose offset is j's class, their K/V heads). The rest of the buffer stays as zeroed
//       at allocation: a row no head reads lies at most inside a tile past a run's end, which the forward
//       masks, and zeros keep it finite (0 * NaN would not be).
//   the branches        the block-sparse forward (kernels/attention_device.h) on each branch's varlen
//       problem, its row CSR built on the GPU once (launch_row_csr) from the plan's bitmap.
//   merge_kernel        one warp per (token, head) of the original order (a block per token and up to 8
//       heads), D/32 elements per lane: the branches' LSEs and O rows at the token's slot in each branch
//       (virtual head (t mod r)*H + h of row t/r when strided, the residue order's position inv[t]
//       otherwise), loaded four branches at a time, merged with the weights exp(L_b - max) into a running
//       sum rescaled as the max grows; O in the 16-bit type and the merged LSE.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention_device.h"
#include "kernels/attention_fwd.h"
#include "kernels/attention_runner.h"
#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/elem16.cuh"
#include "kernels/mask_build_device.h"
#include "kernels/sparse_pipelines.h"
#include "kernels/timing.h"
#include "lib/dilated/dilated_gpu.h"
#include "lib/error.h"
#include "lib/npy.h"

namespace bsattn::cuda {

namespace {

using dilated::BranchPlan;
using dilated::kMaxBranches;

// W: uint4 (16-byte words) when a head's row is whole words, uint16_t (one element) otherwise.
template <class W>
__global__ void gather_rows_kernel(const W* src, W* dst, const int32_t* perm, const int32_t* cls, const uint8_t* need,
                                   int heads, int head_words, int64_t seq, int64_t rows) {
  const int row_words = heads * head_words;
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * row_words) return;
  const int64_t row = e / row_words, b = row / seq, j = row % seq;
  const int w = int(e % row_words);
  if (!need[cls[j] * heads + w / head_words]) return;
  dst[e] = src[(b * seq + perm[j]) * row_words + w];
}

struct MergeArgs {
  int branches = 0;
  const void* o[kMaxBranches] = {};         // [B*S, H, D]: original order (strided), residue order (otherwise)
  const float* lse[kMaxBranches] = {};      // [r*H, B*S/r] (strided), [H, B*S] in the residue order (otherwise)
  const int32_t* inv[kMaxBranches] = {};    // residue form: the token's position in the order
  int rate[kMaxBranches] = {};              // strided: the rate r; residue form: 0
  int64_t lse_rows[kMaxBranches] = {};      // rows of each branch's LSE: B*S / r (strided), B*S
  void* out = nullptr;                      // [B*S, H, D], original order
  float* lse_out = nullptr;                 // [B, H, S]
  int64_t batch = 0, seq = 0, heads = 0;
};

template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

constexpr int kMaxMergeDim = 256;  // the forward kernels' largest head dim

// The merge of one (token, head) row by one warp: token blockIdx.x, head blockIdx.y * W + warp (W warps per
// block, min(8, H)), so the token's position in each branch is worked out once per warp in 32-bit arithmetic
// (B*S < 2^31). The branches go by groups of kGroup, each group's LSEs and O rows loaded together (one
// round trip to memory per group, not two per branch), merged into a running (max, sum, acc) that is
// rescaled when the max grows. E > 0: D = 32 E, each lane E consecutive elements as one vector; E = 0:
// any D <= kMaxMergeDim, lane l the elements l, l + 32, ...
constexpr int kGroup = 4;

template <class T, int E>
__global__ void __launch_bounds__(256) merge_kernel(MergeArgs a, int dim) {
  static_assert(E >= 0 && E <= 8, "a lane holds at most 8 elements");
  constexpr int kSlots = E > 0 ? E : kMaxMergeDim / 32;
  const uint32_t tok = blockIdx.x, seq = uint32_t(a.seq), t = tok % seq, heads = uint32_t(a.heads);
  const uint32_t h = blockIdx.y * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (h >= heads) return;
  const int64_t row = int64_t(tok) * heads + h, bs = a.batch * a.seq;
  float mx = -INFINITY, sum = 0.f, acc[kSlots] = {};
  for (int g0 = 0; g0 < a.branches; g0 += kGroup) {
    // Branch i's LSE and the O row of (tok, h): strided, row tok / r of virtual head (tok mod r) * H + h,
    // whose O row is the original (tok, h); residue form, position b*S + inv[t] of head h.
    float l[kGroup];
    float x[kGroup][kSlots];
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      const int i = g0 + j;
      l[j] = -INFINITY;
      if (i >= a.branches) continue;
      int64_t orow = row;
      const uint32_t r = uint32_t(a.rate[i]);
      if (r > 0) {
        l[j] = a.lse[i][int64_t((tok % r) * heads + h) * a.lse_rows[i] + tok / r];
      } else {
        const int64_t pos = int64_t(tok - t) + a.inv[i][t];
        l[j] = a.lse[i][int64_t(h) * bs + pos];
        orow = pos * heads + h;
      }
      // Loaded whatever the LSE (no dependency on it); a row no branch selects is never weighted.
      if constexpr (E > 0) {
        const Vec<T, E> v = reinterpret_cast<const Vec<T, E>*>(a.o[i])[orow * 32 + lane];
#pragma unroll
        for (int e = 0; e < E; ++e) x[j][e] = to_float(v.v[e]);
      } else {
        const T* src = static_cast<const T*>(a.o[i]) + orow * dim;
#pragma unroll
        for (int k = 0; k < kSlots; ++k) x[j][k] = lane + 32 * k < dim ? to_float(src[lane + 32 * k]) : 0.f;
      }
    }
    float gmx = mx;
#pragma unroll
    for (int j = 0; j < kGroup; ++j) gmx = fmaxf(gmx, l[j]);
    if (gmx == -INFINITY) continue;  // nothing selected so far
    const float c = expf(mx - gmx);  // 0 while mx is -inf
    sum *= c;
#pragma unroll
    for (int k = 0; k < kSlots; ++k) acc[k] *= c;
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      if (l[j] == -INFINITY) continue;  // not selected: its O row (zeros or unwritten) is never read into acc
      const float w = expf(l[j] - gmx);
      sum += w;
#pragma unroll
      for (int k = 0; k < kSlots; ++k) acc[k] += w * x[j][k];
    }
    mx = gmx;
  }
  // No branch selects this token for head h: O = 0, LSE = -inf.
  const float inv_sum = mx == -INFINITY ? 0.f : 1.f / sum;
  if constexpr (E > 0) {
    Vec<T, E> res;
    for (int e = 0; e < E; ++e) res.v[e] = from_float<T>(acc[e] * inv_sum);
    reinterpret_cast<Vec<T, E>*>(a.out)[row * 32 + lane] = res;
  } else {
    T* out = static_cast<T*>(a.out) + row * dim;
    for (int k = 0; k < kSlots; ++k)
      if (lane + 32 * k < dim) out[lane + 32 * k] = from_float<T>(acc[k] * inv_sum);
  }
  if (lane == 0) {
    const int64_t b = (tok - t) / seq;
    a.lse_out[(b * heads + h) * a.seq + t] = mx == -INFINITY ? -INFINITY : mx + logf(sum);
  }
}

template <class T>
void launch_merge_t(const MergeArgs& a, int dim, cudaStream_t s) {
  const int64_t warps = std::min<int64_t>(8, a.heads);
  const dim3 grid(unsigned(a.batch * a.seq), unsigned((a.heads + warps - 1) / warps)), block(unsigned(32 * warps));
  if (dim == 64) merge_kernel<T, 2><<<grid, block, 0, s>>>(a, dim);
  else if (dim == 128) merge_kernel<T, 4><<<grid, block, 0, s>>>(a, dim);
  else if (dim == 256) merge_kernel<T, 8><<<grid, block, 0, s>>>(a, dim);
  else merge_kernel<T, 0><<<grid, block, 0, s>>>(a, dim);
  CUDA_CHECK_LAUNCH("merge_kernel (dilated)");
}

void launch_merge(const MergeArgs& a, ElemType dtype, int64_t head_dim, cudaStream_t s) {
  if (dtype == ElemType::BF16) launch_merge_t<__nv_bfloat16>(a, int(head_dim), s);
  else launch_merge_t<__half>(a, int(head_dim), s);
}

// One problem resident on the GPU: the inputs, each branch's gathered inputs, CSR, offsets, output and
// LSE, the merged output.
class DilatedDevice {
 public:
  DilatedDevice(const AttentionProblem& p, const std::vector<BranchPlan>& plans, const AttentionInputs& in,
                const AttentionOptions& opt)
      : p_(p), opt_(opt) {
    if (p.dtype != ElemType::BF16 && p.dtype != ElemType::F16)
      throw UsageError("dilated attention on the GPU takes bf16 or f16 inputs (use --dtype bf16, or --backend cpu)");
    if (p.head_dim > kMaxMergeDim)
      throw UsageError("dilated attention on the GPU takes head_dim up to " + std::to_string(kMaxMergeDim) + ", got " +
                       std::to_string(p.head_dim));
    if (plans.empty() || int(plans.size()) > kMaxBranches)
      throw UsageError("dilated attention takes 1 to " + std::to_string(kMaxBranches) + " branches");
    for (const BranchPlan& b : plans) {  // the kernels' own limits, before any GPU work
      b.problem.validate(b.mask);
      AttentionProblem bp = b.problem;
      bp.dtype = p.dtype;
      AttentionRunner::check_supported(bp, b.mask, opt);
    }
    if (!gpu_present()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    const int64_t B = p.batch, S = p.q_len, H = p.heads_q, Hkv = p.heads_kv, D = p.head_dim;
    const size_t es = elem_size(p.dtype);
    qrow_ = size_t(H * D) * es, krow_ = size_t(Hkv * D) * es;
    rows_ = B * S;
    q_.upload(in.q, size_t(rows_) * qrow_, stream_);
    k_.upload(in.k, size_t(rows_) * krow_, stream_);
    v_.upload(in.v, size_t(rows_) * krow_, stream_);
    int64_t max_heads = H;  // a strided branch has r*H (virtual) query heads
    for (const BranchPlan& b : plans) max_heads = std::max(max_heads, b.problem.heads_q);
    const std::vector<uint8_t> head_type(size_t(max_heads), uint8_t(HeadType::Sparse));
    const std::vector<int32_t> zeros(size_t(max_heads), 0);
    head_type_.upload(head_type.data(), head_type.size(), stream_);
    head_zero_.upload(zeros.data(), zeros.size() * 4, stream_);
    branches_.resize(plans.size());
    size_t ws_bytes = 0;
    for (size_t i = 0; i < plans.size(); ++i) {
      const BranchPlan& plan = plans[i];
      Branch& br = branches_[i];
      br.strided = plan.strided;
      if (!br.strided) {
        std::vector<int32_t> perm(plan.perm.begin(), plan.perm.end()), inv(plan.inv.begin(), plan.inv.end());
        br.perm.upload(perm.data(), perm.size() * 4, stream_);
        br.inv.upload(inv.data(), inv.size() * 4, stream_);
        br.q.alloc(q_.bytes()), br.k.alloc(k_.bytes()), br.v.alloc(v_.bytes());
        for (DeviceBuffer* x : {&br.q, &br.k, &br.v}) CUDA_CHECK(cudaMemsetAsync(x->get(), 0, x->bytes(), stream_));
        // Position j's class (its original position mod r inside the segment); which heads read each class:
        // query head h reads class h mod r, K/V head g the classes of its query heads.
        const int64_t r = plan.branch.rate, w = plan.branch.segment, G = H / Hkv;
        std::vector<int32_t> cls(perm.size());
        for (size_t j = 0; j < perm.size(); ++j) cls[j] = int32_t(perm[j] % w % r);
        std::vector<uint8_t> need_q(size_t(r * H), 0), need_kv(size_t(r * Hkv), 0);
        for (int64_t h = 0; h < H; ++h) {
          need_q[size_t(dilated::head_offset(h, r) * H + h)] = 1;
          need_kv[size_t(dilated::head_offset(h, r) * Hkv + h / G)] = 1;
        }
        br.cls.upload(cls.data(), cls.size() * 4, stream_);
        br.need_q.upload(need_q.data(), need_q.size(), stream_);
        br.need_kv.upload(need_kv.data(), need_kv.size(), stream_);
      }
      br.cu.upload(plan.problem.cu_seqlens_q.data(), plan.problem.cu_seqlens_q.size() * 4, stream_);
      const MaskShape& ms = plan.mask.shape;
      const int64_t mask_rows = ms.batch * ms.heads * ms.mq();
      br.bits.upload(plan.mask.bits.data(), plan.mask.bits.size(), stream_);
      br.kv_num.alloc(size_t(mask_rows) * 4);
      br.kv_idx.alloc(size_t(mask_rows * ms.mk()) * 4);
      launch_row_csr(br.bits.get<uint8_t>(), mask_rows, int(ms.mk()), br.kv_num.get<int32_t>(), br.kv_idx.get<int32_t>(),
                     stream_);
      br.o.alloc(size_t(rows_) * qrow_);
      br.lse.alloc(size_t(H * rows_) * 4);
      poison(br.o), poison(br.lse);
      DeviceAttention& a = br.pass;
      a.problem = plan.problem;
      a.problem.cu_seqlens_q.clear(), a.problem.cu_seqlens_k.clear();
      a.problem.dtype = p.dtype;
      a.mask_shape = ms;
      a.causal = plan.mask.causal;
      a.cu_q = a.cu_k = br.cu.get<int32_t>();
      a.total_q = a.total_k = plan.rows(rows_);
      a.head_type = head_type_.get<uint8_t>();
      a.head_sink = a.head_local = head_zero_.get<int32_t>();
      a.kv_num_blocks = br.kv_num.get<int32_t>();
      a.kv_indices = br.kv_idx.get<int32_t>();
      a.q = br.strided ? q_.get() : br.q.get();
      a.k = br.strided ? k_.get() : br.k.get();
      a.v = br.strided ? v_.get() : br.v.get();
      a.o = br.o.get();
      a.lse = br.lse.get<float>();
      a.stream = stream_;
      a.options = opt;
      ws_bytes = std::max(ws_bytes, device_workspace_bytes(a, false));  // head dims the kernels run padded
      merge_.o[i] = br.o.get();
      merge_.lse[i] = br.lse.get<float>();
      merge_.inv[i] = br.strided ? nullptr : br.inv.get<int32_t>();
      merge_.rate[i] = br.strided ? int(plan.branch.rate) : 0;
      merge_.lse_rows[i] = plan.rows(rows_);
    }
    // One workspace for every branch's pass (they run one after the other on the stream).
    workspace_.alloc(ws_bytes);
    for (Branch& br : branches_) br.pass.workspace = workspace_.get(), br.pass.workspace_bytes = ws_bytes;
    out_.alloc(size_t(rows_) * qrow_);
    lse_out_.alloc(size_t(B * H * S) * 4);
    poison(out_), poison(lse_out_);
    merge_.branches = int(plans.size());
    merge_.out = out_.get();
    merge_.lse_out = lse_out_.get<float>();
    merge_.batch = B, merge_.seq = S, merge_.heads = H;
    AttentionProblem first = plans[0].problem;
    first.dtype = p.dtype;
    kernel_ = resolve_fwd_variant(fwd_params(first, plans[0].mask, opt), opt.kernel);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  ~DilatedDevice() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  DilatedDevice(const DilatedDevice&) = delete;
  DilatedDevice& operator=(const DilatedDevice&) = delete;

  void gathers() {
    for (Branch& br : branches_) {
      if (br.strided) continue;
      gather(q_, br.q, br, br.need_q, p_.heads_q);
      gather(k_, br.k, br, br.need_kv, p_.heads_kv);
      gather(v_, br.v, br, br.need_kv, p_.heads_kv);
    }
  }
  void branch_passes() {
    for (Branch& br : branches_) forward_device(br.pass);
  }
  void merge() { launch_merge(merge_, p_.dtype, p_.head_dim, stream_); }
  void all() {
    gathers();
    branch_passes();
    merge();
  }
  cudaStream_t stream() const { return stream_; }
  const std::string& kernel() const { return kernel_; }

  dilated::DilatedResult result() {
    std::vector<uint16_t> o16(out_.bytes() / 2);
    dilated::DilatedResult r;
    r.lse.resize(lse_out_.bytes() / 4);
    out_.download(o16.data(), out_.bytes(), stream_);
    lse_out_.download(r.lse.data(), lse_out_.bytes(), stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    r.out.resize(o16.size());
    const bool bf = p_.dtype == ElemType::BF16;
    for (size_t i = 0; i < o16.size(); ++i) r.out[i] = bf ? bf16_to_float(o16[i]) : half_to_float(o16[i]);
    return r;
  }

 private:
  struct Branch {
    bool strided = true;
    DeviceBuffer perm, inv, cls, need_q, need_kv, q, k, v, cu, bits, kv_num, kv_idx, o, lse;
    DeviceAttention pass;
  };
  // NaN in every element until a pass writes it: an element left unwritten shows in the result.
  void poison(DeviceBuffer& b) { CUDA_CHECK(cudaMemsetAsync(b.get(), 0xFF, b.bytes(), stream_)); }
  void gather(const DeviceBuffer& src, DeviceBuffer& dst, const Branch& br, const DeviceBuffer& need, int64_t heads) {
    auto go = [&](auto word) {
      using W = decltype(word);
      const int head_words = int(p_.head_dim * 2 / int64_t(sizeof(W)));
      const int64_t n = rows_ * heads * head_words;
      gather_rows_kernel<W><<<unsigned((n + 255) / 256), 256, 0, stream_>>>(
          src.get<W>(), dst.get<W>(), br.perm.get<int32_t>(), br.cls.get<int32_t>(), need.get<uint8_t>(), int(heads),
          head_words, p_.q_len, rows_);
      CUDA_CHECK_LAUNCH("gather_rows_kernel (dilated)");
    };
    if (p_.head_dim % 8 == 0) go(uint4{});  // a head's row is whole 16-byte words
    else go(uint16_t{});
  }

  AttentionProblem p_;
  AttentionOptions opt_;
  cudaStream_t stream_ = nullptr;
  size_t qrow_ = 0, krow_ = 0;
  int64_t rows_ = 0;
  DeviceBuffer q_, k_, v_, head_type_, head_zero_, workspace_, out_, lse_out_;
  std::vector<Branch> branches_;
  MergeArgs merge_;
  std::string kernel_;
};

class CudaDilatedGpu : public dilated::DilatedGpu {
 public:
  dilated::DilatedResult forward(const AttentionProblem& p, const std::vector<BranchPlan>& plans,
                                 const AttentionInputs& in, const AttentionOptions& opt) override {
    DilatedDevice d(p, plans, in, opt);
    d.all();
    return d.result();
  }
  dilated::DilatedGpuTiming time(const AttentionProblem& p, const std::vector<BranchPlan>& plans,
                                 const AttentionInputs& in, const AttentionOptions& opt,
                                 const bench::TimingOptions& timing) override {
    DilatedDevice d(p, plans, in, opt);
    GpuTimer timer(d.stream(), true);
    auto timed = [&](auto&& fn) { return bench::measure([&]() { return timer.sample_ms(fn); }, timing); };
    dilated::DilatedGpuTiming t;
    t.total = timed([&] { d.all(); });
    t.gather = timed([&] { d.gathers(); });
    t.branches = timed([&] { d.branch_passes(); });
    t.merge = timed([&] { d.merge(); });
    t.sm_clock_mhz = timer.measure_sm_clock_mhz();
    t.kernel = d.kernel();
    return t;
  }
};

}  // namespace

dilated::DilatedGpu& dilated_gpu_instance() {
  static CudaDilatedGpu instance;
  return instance;
}

}  // namespace bsattn::cuda
