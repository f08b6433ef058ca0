// GPU mask building (STYLE.md 7: one family per file).
//
//   row_csr_kernel / column_csr_kernel  bitmap -> CSR, one warp per row (column): ballot + popc gives
//       each kept block its slot, so indices come out ascending with no sort.
//   pool_level1_kernel / pool_up_kernel  mean of Q (K) over each block of tokens (level 1), then
//       levels 2/4/8 from level 1 weighted by token counts (tails are exact), so Q and K are read once.
//   cuBLAS SGEMM (strided batched over heads)  pooled scores [Mq, Mk] per (batch, head).
//   select_kernel  one CTA per row of units at the selection level (a unit is level x level blocks):
//       softmax over the row's visible units, bitonic sort in shared memory, keep top-k plus the
//       fewest units reaching the cumulative mass, the diagonal unit.
//   expand_units_kernel  level > 1: every block of a kept unit is kept (causal then trims blocks).
//
// Measured (results/mask-build/*.md, "mask build vs attention"): see the table there.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/elem16.cuh"
#include "kernels/mask_build.h"
#include "kernels/mask_build_device.h"
#include "lib/error.h"

namespace bsattn::cuda {

namespace {

__global__ void row_csr_kernel(const uint8_t* bits, int64_t rows, int mk, int32_t* num, int32_t* idx) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const uint8_t* b = bits + row * mk;
  int32_t* out = idx + row * mk;
  int n = 0;
  for (int c = 0; c < mk; c += 32) {
    int j = c + lane;
    bool kept = j < mk && b[j];
    unsigned bal = __ballot_sync(0xffffffffu, kept);
    if (kept) out[n + __popc(bal & ((1u << lane) - 1u))] = j;
    n += __popc(bal);
  }
  for (int j = n + lane; j < mk; j += 32) out[j] = 0;
  if (lane == 0) num[row] = n;
}

__global__ void column_csr_kernel(const uint8_t* bits, int64_t heads, int mq, int mk, int32_t* num, int32_t* idx) {
  int64_t col = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // over heads*mk
  int lane = threadIdx.x & 31;
  if (col >= heads * mk) return;
  int64_t hh = col / mk;
  int j = int(col % mk);
  const uint8_t* b = bits + hh * int64_t(mq) * mk + j;
  int32_t* out = idx + col * mq;
  int n = 0;
  for (int c = 0; c < mq; c += 32) {
    int i = c + lane;
    bool kept = i < mq && b[int64_t(i) * mk];
    unsigned bal = __ballot_sync(0xffffffffu, kept);
    if (kept) out[n + __popc(bal & ((1u << lane) - 1u))] = i;
    n += __popc(bal);
  }
  for (int i = n + lane; i < mq; i += 32) out[i] = 0;
  if (lane == 0) num[col] = n;
}

// x [B, S, Hx, D] -> pooled [B, Hout, M, D] (f32 means over each block of `block` tokens); output head
// h reads input head h / (Hout / Hx) (GQA broadcast of K). One CTA per (block, head, batch), D threads.
template <class Elem>
__global__ void pool_level1_kernel(const Elem* x, int S, int Hx, int Hout, int D, int block, int M, float* pooled) {
  int m = blockIdx.x, h = blockIdx.y, b = blockIdx.z, d = threadIdx.x;
  int hx = h / (Hout / Hx);
  int t0 = m * block, t1 = min(S, t0 + block);
  float acc = 0.f;
  const Elem* base = x + (int64_t(b) * S) * Hx * D + int64_t(hx) * D + d;
  for (int t = t0; t < t1; ++t) acc += to_float(base[int64_t(t) * Hx * D]);
  pooled[((int64_t(b) * Hout + h) * M + m) * D + d] = acc / float(t1 - t0);
}

// Level L from level 1: token-count-weighted mean of L consecutive level-1 blocks.
__global__ void pool_up_kernel(const float* p1, int M1, int D, int S, int block, int L, int ML, float* out) {
  int m = blockIdx.x, bh = blockIdx.y, d = threadIdx.x;
  float acc = 0.f;
  int tokens = 0;
  for (int j = m * L; j < min(M1, (m + 1) * L); ++j) {
    int n = min(S, (j + 1) * block) - j * block;
    acc += p1[(int64_t(bh) * M1 + j) * D + d] * n;
    tokens += n;
  }
  out[(int64_t(bh) * ML + m) * D + d] = acc / float(tokens);
}

// Unit bits [BH, mu, nu] -> block bits [BH, mq, mk]: block (i, j) takes unit (i / level, j / level).
__global__ void expand_units_kernel(const uint8_t* units, int64_t bh_count, int mq, int mk, int mu, int nu, int level,
                                    uint8_t* bits) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= bh_count * mq * mk) return;
  int j = int(e % mk), i = int((e / mk) % mq);
  int64_t bh = e / (int64_t(mq) * mk);
  bits[e] = units[(bh * mu + i / level) * nu + j / level];
}

// One CTA per (row i, head, batch): scores [Mk] -> kept bits. SORT_N = power of two >= Mk.
__global__ void select_kernel(const float* scores, int mq, int mk, int sort_n, float scale, int top_k, float mass,
                              int diag_off_tokens, int block_q, int block_kv, int q_len, bool causal,
                              bool keep_diag, uint8_t* bits) {
  extern __shared__ float sh[];
  float* val = sh;                                  // [sort_n]
  int* key = reinterpret_cast<int*>(sh + sort_n);   // [sort_n]
  __shared__ float red[32];
  int i = blockIdx.x;
  int64_t row = int64_t(blockIdx.z * gridDim.y + blockIdx.y) * mq + i;
  const float* s = scores + row * mk;
  int last_key = min(q_len, (i + 1) * block_q) - 1 + diag_off_tokens;
  int visible = causal ? (last_key < 0 ? 0 : min(mk, last_key / block_kv + 1)) : mk;
  int tid = threadIdx.x, nt = blockDim.x;
  // Row max over visible blocks.
  float mx = -INFINITY;
  for (int j = tid; j < visible; j += nt) mx = fmaxf(mx, s[j] * scale);
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if ((tid & 31) == 0) red[tid >> 5] = mx;
  __syncthreads();
  if (tid < 32) {
    float v = tid < nt / 32 ? red[tid] : -INFINITY;
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (tid == 0) red[0] = v;
  }
  __syncthreads();
  mx = red[0];
  __syncthreads();
  float sum = 0.f;
  for (int j = tid; j < sort_n; j += nt) {
    float e = j < visible ? __expf(s[j] * scale - mx) : 0.f;
    val[j] = j < visible ? e : -1.f;  // invisible blocks sort last
    key[j] = j;
    sum += e;
  }
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if ((tid & 31) == 0) red[tid >> 5] = sum;
  __syncthreads();
  if (tid == 0) {
    float t = 0.f;
    for (int w = 0; w < nt / 32; ++w) t += red[w];
    red[0] = t;
  }
  __syncthreads();
  float total = red[0];
  // Bitonic sort, descending by value.
  for (int k = 2; k <= sort_n; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int x = tid; x < sort_n; x += nt) {
        int y = x ^ j;
        if (y > x) {
          bool desc = (x & k) == 0;
          float a = val[x], b = val[y];
          if (desc ? a < b : a > b) {
            val[x] = b, val[y] = a;
            int t = key[x];
            key[x] = key[y], key[y] = t;
          }
        }
      }
      __syncthreads();
    }
  // Keep ranks r < max(top_k, first rank whose cumulative mass reaches `mass`) + 1 (serial scan:
  // Mk <= a few thousand, one thread; the sort dominates).
  uint8_t* out = bits + row * mk;
  for (int j = tid; j < mk; j += nt) out[j] = 0;
  __syncthreads();
  if (tid == 0 && visible > 0) {
    float c = 0.f;
    int keep = 0;
    while (keep < visible) {
      c += val[keep] / total;
      ++keep;
      if (keep >= top_k && c >= mass) break;
    }
    for (int r = 0; r < keep; ++r) out[key[r]] = 1;
    if (keep_diag) {
      int d = causal ? visible - 1 : min(i * block_q / block_kv, mk - 1);
      out[d] = 1;
    }
  }
}

}  // namespace

void launch_row_csr(const uint8_t* bits, int64_t rows, int mk, int32_t* num, int32_t* idx, cudaStream_t s) {
  if (rows == 0) return;
  unsigned blocks = unsigned((rows + 7) / 8);
  row_csr_kernel<<<blocks, 256, 0, s>>>(bits, rows, mk, num, idx);
  CUDA_CHECK_LAUNCH("row_csr_kernel");
}

void launch_column_csr(const uint8_t* bits, int64_t heads, int mq, int mk, int32_t* num, int32_t* idx,
                       cudaStream_t s) {
  if (heads * mk == 0) return;
  unsigned blocks = unsigned((heads * mk + 7) / 8);
  column_csr_kernel<<<blocks, 256, 0, s>>>(bits, heads, mq, mk, num, idx);
  CUDA_CHECK_LAUNCH("column_csr_kernel");
}

static BlockCSR gpu_csr(const BlockMask& m, bool by_row) {
  int64_t B = m.shape.batch, H = m.shape.heads, mq = m.shape.mq(), mk = m.shape.mk();
  int64_t M = by_row ? mq : mk, N = by_row ? mk : mq;
  DeviceBuffer bits, num(size_t(B * H * M) * 4), idx(size_t(B * H * M * N) * 4);
  bits.upload(m.bits.data(), m.bits.size());
  if (by_row)
    launch_row_csr(bits.get<uint8_t>(), B * H * mq, int(mk), num.get<int32_t>(), idx.get<int32_t>(), 0);
  else
    launch_column_csr(bits.get<uint8_t>(), B * H, int(mq), int(mk), num.get<int32_t>(), idx.get<int32_t>(), 0);
  BlockCSR c;
  c.counts_shape = {B, H, M};
  c.indices_shape = {B, H, M, N};
  c.num_blocks.resize(size_t(B * H * M));
  c.indices.resize(size_t(B * H * M * N));
  num.download(c.num_blocks.data(), num.bytes());
  idx.download(c.indices.data(), idx.bytes());
  CUDA_CHECK(cudaDeviceSynchronize());
  return c;
}
BlockCSR gpu_row_csr(const BlockMask& m) { return gpu_csr(m, true); }
BlockCSR gpu_column_csr(const BlockMask& m) { return gpu_csr(m, false); }

BlockMask gpu_adaptive_mask(const AttentionProblem& p, const AttentionInputs& in, const AdaptiveSelectConfig& c,
                            AdaptiveSelectTiming* timing) {
  check_gpu_adaptive(p, c);
  MaskShape shape{p.batch, p.heads_q, p.q_len, p.kv_len, c.block_q, c.block_kv};
  int B = int(p.batch), H = int(p.heads_q), Hk = int(p.heads_kv), D = int(p.head_dim);
  int Sq = int(p.q_len), Sk = int(p.kv_len), mq = int(shape.mq()), mk = int(shape.mk());
  // The selection runs on units of L x L blocks: mu x nu units per head.
  const int L = c.level, mu = (mq + L - 1) / L, nu = (mk + L - 1) / L;
  size_t es = elem_size(p.dtype);
  DeviceBuffer dq, dk;
  dq.upload(in.q, size_t(p.total_q()) * H * D * es);
  dk.upload(in.k, size_t(p.total_k()) * Hk * D * es);
  DeviceBuffer pq(size_t(B) * H * mq * D * 4), pk(size_t(B) * H * mk * D * 4);
  DeviceBuffer scores(size_t(B) * H * mu * nu * 4), bits(size_t(B) * H * mq * mk);
  DeviceBuffer units(L > 1 ? size_t(B) * H * mu * nu : 0);
  DeviceBuffer num(size_t(B) * H * mq * 4), idx(size_t(B) * H * mq * mk * 4);
  std::vector<int> levels = c.levels;
  if (std::find(levels.begin(), levels.end(), L) == levels.end()) levels.push_back(L);
  std::vector<DeviceBuffer> up;
  up.reserve(2 * levels.size());
  const float* sel_q = nullptr;  // pooled Q and K at the selection level
  const float* sel_k = nullptr;
  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  cudaEvent_t ev[5];
  for (auto& e : ev) CUDA_CHECK(cudaEventCreate(&e));
  try {
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaEventRecord(ev[0]));
    auto pool = [&](const DeviceBuffer& x, int S, int Hx, int block, int M, float* out) {
      dim3 g(M, H, B);
      if (p.dtype == ElemType::BF16)
        pool_level1_kernel<__nv_bfloat16><<<g, D>>>(x.get<__nv_bfloat16>(), S, Hx, H, D, block, M, out);
      else
        pool_level1_kernel<__half><<<g, D>>>(x.get<__half>(), S, Hx, H, D, block, M, out);
      CUDA_CHECK_LAUNCH("pool_level1_kernel");
    };
    pool(dq, Sq, H, int(c.block_q), mq, pq.get<float>());
    pool(dk, Sk, Hk, int(c.block_kv), mk, pk.get<float>());
    sel_q = pq.get<float>();
    sel_k = pk.get<float>();
    for (int lv : levels) {
      if (lv <= 1) continue;
      for (int which = 0; which < 2; ++which) {
        int M1 = which ? mk : mq, ML = (M1 + lv - 1) / lv;
        up.emplace_back(size_t(B) * H * ML * D * 4);
        pool_up_kernel<<<dim3(ML, B * H), D>>>((which ? pk : pq).get<float>(), M1, D, which ? Sk : Sq,
                                               int(which ? c.block_kv : c.block_q), lv, ML, up.back().get<float>());
        CUDA_CHECK_LAUNCH("pool_up_kernel");
        if (lv == L) (which ? sel_k : sel_q) = up.back().get<float>();
      }
    }
    CUDA_CHECK(cudaEventRecord(ev[1]));
    // scores[bh] (mu x nu, row-major) = sel_q[bh] (mu x D) . sel_k[bh]^T: column-major view S^T = K . Q^T.
    float one = 1.f, zero = 0.f;
    CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, nu, mu, D, &one, sel_k, D,
                                           int64_t(nu) * D, sel_q, D, int64_t(mu) * D, &zero, scores.get<float>(), nu,
                                           int64_t(mu) * nu, B * H));
    CUDA_CHECK(cudaEventRecord(ev[2]));
    int sort_n = 1;
    while (sort_n < nu) sort_n <<= 1;
    size_t sh = size_t(sort_n) * 8;
    if (sh > 200 * 1024) throw UsageError("adaptive GPU selection supports at most 16384 key units per row");
    if (sh > 48 * 1024)
      CUDA_CHECK(cudaFuncSetAttribute(select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sh)));
    // A unit is L blocks of tokens on each side, so the kernel's token geometry (visibility under
    // causal, the diagonal unit) is that of blocks L times larger.
    uint8_t* sel_bits = L > 1 ? units.get<uint8_t>() : bits.get<uint8_t>();
    select_kernel<<<dim3(mu, H, B), 256, sh>>>(scores.get<float>(), mu, nu, sort_n, float(p.effective_scale()),
                                               c.top_k, float(c.mass), Sk - Sq, int(c.block_q) * L,
                                               int(c.block_kv) * L, Sq, c.causal, c.keep_diagonal, sel_bits);
    CUDA_CHECK_LAUNCH("select_kernel");
    if (L > 1) {
      int64_t n = int64_t(B) * H * mq * mk;
      expand_units_kernel<<<unsigned((n + 255) / 256), 256>>>(units.get<uint8_t>(), int64_t(B) * H, mq, mk, mu, nu, L,
                                                              bits.get<uint8_t>());
      CUDA_CHECK_LAUNCH("expand_units_kernel");
    }
    CUDA_CHECK(cudaEventRecord(ev[3]));
    launch_row_csr(bits.get<uint8_t>(), int64_t(B) * H * mq, mk, num.get<int32_t>(), idx.get<int32_t>(), 0);
    CUDA_CHECK(cudaEventRecord(ev[4]));
    CUDA_CHECK(cudaEventSynchronize(ev[4]));
    if (timing) {
      float t[4];
      for (int x = 0; x < 4; ++x) CUDA_CHECK(cudaEventElapsedTime(&t[x], ev[x], ev[x + 1]));
      timing->pool_ms = t[0], timing->score_ms = t[1], timing->select_ms = t[2], timing->csr_ms = t[3];
      timing->total_ms = t[0] + t[1] + t[2] + t[3];
    }
  } catch (...) {
    for (auto& e : ev) cudaEventDestroy(e);
    cublasDestroy(handle);
    throw;
  }
  for (auto& e : ev) CUDA_CHECK(cudaEventDestroy(e));
  CUBLAS_CHECK(cublasDestroy(handle));
  BlockMask m(shape);
  m.causal = c.causal;
  bits.download(m.bits.data(), m.bits.size());
  CUDA_CHECK(cudaDeviceSynchronize());
  // A kept unit may reach past the diagonal block by block; causal trims those blocks.
  m.apply_causal();
  m.spec = {{"pattern", "gpu-adaptive"}, {"top_k", c.top_k}, {"mass", c.mass}, {"levels", levels},
            {"level", L}, {"keep_diagonal", c.keep_diagonal}};
  return m;
}

}  // namespace bsattn::cuda
