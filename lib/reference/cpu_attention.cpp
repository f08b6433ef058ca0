#include "lib/reference/cpu_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/reference/dense_scan.h"
#include "lib/reference/parallel.h"
#include "lib/reference/simd.h"
#include "lib/reference/staircase.h"

namespace bsattn {

template <class T>
std::vector<T> convert_checked(const void* data, ElemType dtype, int64_t n, int64_t heads, int64_t head_dim,
                               int64_t rows_per_batch, const char* name) {
  if (!data) throw UsageError(std::string(name) + " is missing");
  std::vector<T> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    float f;
    switch (dtype) {
      case ElemType::F32: f = static_cast<const float*>(data)[e]; break;
      case ElemType::F16: f = half_to_float(static_cast<const uint16_t*>(data)[e]); break;
      default: f = bf16_to_float(static_cast<const uint16_t*>(data)[e]); break;
    }
    if (!std::isfinite(f)) {
      int64_t d = e % head_dim, h = (e / head_dim) % heads, row = e / (head_dim * heads);
      std::string pos = rows_per_batch > 0 ? "b=" + std::to_string(row / rows_per_batch) + ", s=" +
                                                 std::to_string(row % rows_per_batch)
                                           : "row=" + std::to_string(row);
      throw UsageError(std::string(name) + " has " + (std::isnan(f) ? "NaN" : "Inf") + " at [" + pos +
                       ", h=" + std::to_string(h) + ", d=" + std::to_string(d) + "] (inputs must be finite)");
    }
    out[size_t(e)] = T(f);
  }
  return out;
}
template std::vector<float> convert_checked<float>(const void*, ElemType, int64_t, int64_t, int64_t, int64_t,
                                                   const char*);
template std::vector<double> convert_checked<double>(const void*, ElemType, int64_t, int64_t, int64_t, int64_t,
                                                     const char*);

namespace {
// "[b=.., s=.., h=.., d=..]" for element e of a [rows, heads, head_dim] tensor (packed rows when
// rows_per_batch <= 0), as convert_checked reports inputs.
std::string element_position(int64_t e, int64_t heads, int64_t head_dim, int64_t rows_per_batch) {
  int64_t d = e % head_dim, h = (e / head_dim) % heads, row = e / (head_dim * heads);
  std::string pos = rows_per_batch > 0 ? "b=" + std::to_string(row / rows_per_batch) + ", s=" +
                                             std::to_string(row % rows_per_batch)
                                       : "row=" + std::to_string(row);
  return "[" + pos + ", h=" + std::to_string(h) + ", d=" + std::to_string(d) + "]";
}

template <class T>
const char* precision_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// True when no element is NaN or +-Inf (exponent field all ones), by an unsigned maximum over the
// exponent bits: a loop the compiler vectorises, unlike std::isfinite with an early exit. The scalar
// loops that name the first bad element run only when this fails.
template <class T>
bool all_finite(const T* x, size_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits worst = 0;
  for (size_t e = 0; e < n; ++e) {
    Bits b;
    std::memcpy(&b, x + e, sizeof b);
    worst = std::max(worst, Bits(b & exponent));
  }
  return worst != exponent;
}

// One of Q, K, V as the block loops read it: the rows of a head at base + h * head_step + row * row_step,
// D contiguous elements each.
template <class T>
struct HeadRows {
  std::unique_ptr<T[]> store;  // the conversion, when the input is not read in place
  const T* base = nullptr;
  int64_t head_step = 0, row_step = 0;
  bool checked = false;  // all_finite has passed; else whoever reads the rows checks them (the forward)
};

// A [rows, heads, head_dim] input as HeadRows. float32 read as float: in place (copying it all would cost
// a sparse forward more than its GEMMs), after a pass of all_finite over it unless `defer_check` (then
// `checked` is false and the caller checks the rows as it reads them). Otherwise converted into
// head-major order [heads, rows, head_dim], each head's rows contiguous: a block of rows is then a few
// whole pages read in order (in the input's layout consecutive rows of one head are heads * head_dim
// elements apart, a new page every row or two, which the hardware prefetchers do not follow). Both by
// row ranges on `threads` threads; a NaN or Inf is reported as convert_checked reports it.
template <class T>
HeadRows<T> head_rows_of(const void* data, ElemType dtype, int64_t rows, int64_t heads, int64_t head_dim,
                         int64_t rows_per_batch, const char* name, int threads, bool defer_check) {
  if (!data) throw UsageError(std::string(name) + " is missing");
  HeadRows<T> t;
  const bool in_place = std::is_same_v<T, float> && dtype == ElemType::F32;
  t.checked = !(in_place && defer_check);
  if (in_place) {
    t.base = static_cast<const T*>(data);
    t.head_step = head_dim, t.row_step = heads * head_dim;
    if (!t.checked) return t;
  } else {
    t.store.reset(new T[size_t(rows * heads * head_dim)]);  // every element is written: not zeroed first
    t.base = t.store.get();
    t.head_step = rows * head_dim, t.row_step = head_dim;
  }
  constexpr int64_t kRowsPerTask = 256;
  std::atomic<bool> bad{false};
  parallel_for(
      (rows + kRowsPerTask - 1) / kRowsPerTask,
      [&](int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
        if (in_place) {
          if (!all_finite(t.base + r0 * heads * head_dim, size_t((r1 - r0) * heads * head_dim))) bad = true;
          return;
        }
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t h = 0; h < heads; ++h) {
            const int64_t src = (r * heads + h) * head_dim;
            T* dst = t.store.get() + h * t.head_step + r * head_dim;
            if (dtype == ElemType::F32) {
              const float* x = static_cast<const float*>(data) + src;
              for (int64_t d = 0; d < head_dim; ++d) dst[d] = T(x[d]);
            } else {
              const uint16_t* x = static_cast<const uint16_t*>(data) + src;
              for (int64_t d = 0; d < head_dim; ++d)
                dst[d] = T(dtype == ElemType::F16 ? half_to_float(x[d]) : bf16_to_float(x[d]));
            }
          }
        for (int64_t h = 0; h < heads; ++h)
          if (!all_finite(t.base + h * t.head_step + r0 * head_dim, size_t((r1 - r0) * head_dim))) bad = true;
      },
      threads);
  // convert_checked names the first NaN/Inf in the input's order (and throws).
  if (bad) convert_checked<T>(data, dtype, rows * heads * head_dim, heads, head_dim, rows_per_batch, name);
  return t;
}

// A result with a NaN or Inf came from finite inputs whose scores, sums or products left the range of
// T: an error naming the first element, never a plausible-looking output.
template <class T>
void check_finite_result(const std::vector<T>& x, int64_t heads, int64_t head_dim, int64_t rows_per_batch,
                         const char* name) {
  if (all_finite(x.data(), x.size())) return;
  for (size_t e = 0; e < x.size(); ++e)
    if (!std::isfinite(x[e]))
      throw UsageError(std::string(name) + " is " + (std::isnan(x[e]) ? "NaN" : "Inf") + " at " +
                       element_position(int64_t(e), heads, head_dim, rows_per_batch) + ": an intermediate overflowed " +
                       precision_name<T>() + " (inputs too large for this precision; scale Q/K/V/dO down" +
                       (sizeof(T) == 4 ? " or use --f64)" : ")"));
}
}  // namespace

std::vector<float> narrow_to_float32(const std::vector<double>& x, const char* name) {
  std::vector<float> out(x.size());
  for (size_t e = 0; e < x.size(); ++e) {
    if (std::isfinite(x[e]) && std::fabs(x[e]) > double(std::numeric_limits<float>::max()))
    {
      char v[32];
      std::snprintf(v, sizeof v, "%.4g", x[e]);
      throw UsageError(std::string(name) + " element " + std::to_string(e) + " = " + v +
                       " does not fit float32 (at most 3.4e38): the float64 result cannot be written as float32");
    }
    out[e] = float(x[e]);
  }
  return out;
}

std::vector<int64_t> visited_blocks(const BlockMask& mask, int64_t mask_b, int64_t h, int64_t i) {
  const int64_t mk = mask.shape.mk();
  const HeadInfo& info = mask.heads[size_t(h)];
  std::vector<int64_t> js;
  if (info.type == HeadType::Dense) {
    for (int64_t j = 0; j < mk; ++j) js.push_back(j);
  } else if (info.type == HeadType::Streaming) {
    int64_t d = mask.geometry().diag_block(i);
    for (int64_t j = 0; j < mk; ++j)
      if (j < info.sink_blocks || (j <= d && j > d - info.local_blocks)) js.push_back(j);
  } else {
    const uint8_t* row = mask.head_bits(mask_b, h) + i * mk;
    for (int64_t j = 0; j < mk; ++j)
      if (row[j]) js.push_back(j);
  }
  return js;
}

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Strided = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using StridedMut = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using Col = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Inputs as T (converted once, or float32 read in place), plus everything the block loops need.
template <class T>
struct Prepared {
  const AttentionProblem& p;
  const BlockMask& mask;
  const AttentionInputs* inputs = nullptr;
  HeadRows<T> q, k, v;
  const float* bias;
  T scale;
  int64_t H, Hkv, D, group, bq, bk, mq, mk;
  bool softmax, causal;

  // defer_check: float32 inputs read in place are not checked for NaN/Inf here (HeadRows::checked is
  // false); the forward checks the rows while its tasks have them in cache, then check_inputs.
  Prepared(const AttentionProblem& p_, const BlockMask& m, const AttentionInputs& in, int threads,
           bool defer_check = false)
      : p(p_), mask(m) {
    p.validate(mask);
    H = p.heads_q;
    Hkv = p.heads_kv;
    D = p.head_dim;
    group = H / Hkv;
    int64_t rq = p.varlen() ? 0 : p.q_len, rk = p.varlen() ? 0 : p.kv_len;
    q = head_rows_of<T>(in.q, p.dtype, p.total_q(), H, D, rq, "Q", threads, defer_check);
    k = head_rows_of<T>(in.k, p.dtype, p.total_k(), Hkv, D, rk, "K", threads, defer_check);
    v = head_rows_of<T>(in.v, p.dtype, p.total_k(), Hkv, D, rk, "V", threads, defer_check);
    inputs = &in;
    if (in.rab || in.gate_u)
      throw UsageError("the CPU reference takes HSTU's bias tables and U through hstu_forward (lib/hstu), not "
                       "the attention entry");
    bias = in.silu_bias;
    softmax = p.score == ScoreFn::Softmax;
    if (bias && softmax) throw UsageError("a score bias is only defined for SiLU attention");
    if (bias) {
      int64_t nb = H * p.q_len * p.kv_len;
      for (int64_t e = 0; e < nb; ++e)
        if (!std::isfinite(bias[e])) throw UsageError("SiLU bias has NaN/Inf at element " + std::to_string(e));
    }
    scale = T(p.effective_scale());
    causal = mask.causal;
    bq = mask.shape.block_q;
    bk = mask.shape.block_kv;
    mq = mask.shape.mq();
    mk = mask.shape.mk();
  }
  int64_t mask_b(int64_t b) const { return mask.shape.batch == 1 ? 0 : b; }
  // After a deferred check found a NaN/Inf (or an Inf that scaling made): convert_checked names the first
  // one of Q, then K, then V, as the check before the tasks would have (and throws; it returns when the
  // inputs were finite after all, e.g. scale * Q overflowed).
  void check_inputs() const {
    const int64_t rq = p.varlen() ? 0 : p.q_len, rk = p.varlen() ? 0 : p.kv_len;
    convert_checked<T>(inputs->q, p.dtype, p.total_q() * H * D, H, D, rq, "Q");
    convert_checked<T>(inputs->k, p.dtype, p.total_k() * Hkv * D, Hkv, D, rk, "K");
    convert_checked<T>(inputs->v, p.dtype, p.total_k() * Hkv * D, Hkv, D, rk, "V");
  }
  // n rows from packed row row0 of head h: of a BSHD tensor (dO), and of Q, K, V (HeadRows).
  Strided<T> rows_of(const T* t, int64_t heads, int64_t row0, int64_t h, int64_t n) const {
    return Strided<T>(t + (row0 * heads + h) * D, n, D, Eigen::OuterStride<>(heads * D));
  }
  Strided<T> q_rows(int64_t h, int64_t row0, int64_t n) const { return head_rows(q, h, row0, n); }
  Strided<T> k_rows(int64_t hk, int64_t row0, int64_t n) const { return head_rows(k, hk, row0, n); }
  Strided<T> v_rows(int64_t hk, int64_t row0, int64_t n) const { return head_rows(v, hk, row0, n); }
  Strided<T> head_rows(const HeadRows<T>& t, int64_t h, int64_t row0, int64_t n) const {
    return Strided<T>(t.base + h * t.head_step + row0 * t.row_step, n, D, Eigen::OuterStride<>(t.row_step));
  }
  // A hint that n rows of head h of t are needed soon (64-byte cache lines).
  void prefetch_rows(const HeadRows<T>& t, int64_t h, int64_t row0, int64_t n) const {
    const T* base = t.base + h * t.head_step + row0 * t.row_step;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t d = 0; d < D; d += 64 / int64_t(sizeof(T))) __builtin_prefetch(base + r * t.row_step + d);
  }
  // The key blocks the forward's task (batch, head, row block) computes: the visited blocks with an
  // existing key that a row of the block may see (causal).
  void forward_blocks(int64_t task, std::vector<int64_t>& js) const {
    const int64_t i = task % mq, bh = task / mq, h = bh % H, b = bh / H;
    const SeqSpan s = seq_span(p, b);
    const int64_t r0 = i * bq, rows = std::min(s.q_len, r0 + bq) - r0, off = s.kv_len - s.q_len;
    js.clear();
    if (rows <= 0) return;
    for (int64_t j : visited_blocks(mask, mask_b(b), h, i)) {
      const int64_t c0 = j * bk;
      if (c0 >= s.kv_len || (causal && c0 > r0 + rows - 1 + off)) continue;
      js.push_back(j);
    }
  }
  int64_t lse_index(int64_t b, int64_t h, int64_t r, const SeqSpan& s) const {
    return p.varlen() ? h * p.total_q() + s.q0 + r : (b * H + h) * p.q_len + r;
  }

  // S = (scale*Q_i) K_j^T (+ bias for SiLU) with invisible pairs set to -inf. Returns false when
  // the block has no visible pair (nothing to do).
  bool scores(const RowMat<T>& qi, const SeqSpan& s, int64_t h, int64_t r0, int64_t rows, int64_t j,
              RowMat<T>& S, int64_t& c0, int64_t& cols) const {
    c0 = j * bk;
    cols = std::min(s.kv_len, c0 + bk) - c0;
    if (cols <= 0) return false;
    const int64_t off = s.kv_len - s.q_len;
    if (causal && c0 > r0 + rows - 1 + off) return false;
    S.noalias() = qi * k_rows(h / group, s.k0 + c0, cols).transpose();
    if (bias)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) S(r, c) += T(bias[(h * p.q_len + r0 + r) * p.kv_len + c0 + c]);
    if (crosses_diagonal(s, r0, c0, cols)) {
      const T ninf = -std::numeric_limits<T>::infinity();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = first_hidden(s, r0 + r, c0); c < cols; ++c) S(r, c) = ninf;
    }
    return true;
  }
  bool crosses_diagonal(const SeqSpan& s, int64_t r0, int64_t c0, int64_t cols) const {
    return causal && c0 + cols - 1 > r0 + (s.kv_len - s.q_len);
  }
  // First column (relative to c0) that row `row` may not see.
  int64_t first_hidden(const SeqSpan& s, int64_t row, int64_t c0) const {
    return std::max<int64_t>(0, row + (s.kv_len - s.q_len) - c0 + 1);
  }
};

// Key columns one query block meets per pass of the forward (transpose of K, scores, softmax, weighted
// sum): several key blocks at once make the kernels' row tiles longer than one block. 512 keeps S (128 x
// 512 floats, 256 KiB) in L2; 128, 512 and 1024 timed within noise of each other on the 2-vCPU dev VM
// (loaded) with Eigen's GEMM in place of the kernels, 512 never the worst; not timed again since.
constexpr int64_t kForwardChunkCols = 512;

// One thread's forward buffers, reused from task to task: no allocation per block.
template <class T>
struct ForwardScratch {
  RowMat<T> qi, acc, S;  // scale * Q; the weighted sum of V; a chunk's scores, then weights
  RowMat<T> kt, vs;      // the chunk's keys, transposed, and its values
  Col<T> m, l, log_l;    // running maximum and sum of the online softmax; log(l)
  std::vector<int64_t> js, col_key;  // the task's key blocks; the key (in the sequence) of each chunk column
};

// dst[r][d] = scale * src[r][d] for r < rows, d < D (src, dst row-major with ld_src, ld_dst), and whether
// every src element was finite (x * 0 is NaN exactly for a NaN or Inf x): the forward's copy of its Q rows
// (scaled) and V rows (scale 1, exact) and their check in one pass, on vectors (Eigen's strided assignment
// peeled a few elements of each row one by one to align them).
template <class T>
bool scaled_copy_checked(const T* src, int64_t ld_src, int64_t rows, int64_t D, T scale, T* dst, int64_t ld_dst) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> probe{};
  T probe_tail = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = src + r * ld_src;
    T* y = dst + r * ld_dst;
    int64_t d = 0;
    for (; d + L <= D; d += L) {
      Vec<T> v;
      load_vec(v, x + d);
      probe += v * T(0);
      store_vec(y + d, v * scale);
    }
    for (; d < D; ++d) {
      probe_tail += x[d] * T(0);
      y[d] = x[d] * scale;
    }
  }
  const T sum = reduce_lanes<T>(probe, [](Vec<T>& a, const Vec<T>& b) { a += b; }) + probe_tail;
  return sum == sum;
}

// x[c] = exp(x[c] - shift) for c < n, 0 for n <= c < cols, and returns their sum as sum_of adds them; x
// must have whole vectors up to cols. One pass instead of three (exp, the zeros, the sum): the exp is
// Eigen's packet exp, which its array exp() applies to whole packets (bit for bit the same weights).
template <class T>
T exp_and_sum(T* x, int64_t n, int64_t cols, T shift) {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  constexpr int64_t L = kLanes<T>, P = Eigen::internal::packet_traits<T>::size;
  static_assert(L % P == 0, "a vector holds whole packets");
  const Packet sp = Eigen::internal::pset1<Packet>(shift);
  Vec<T> lane, acc{};
  for (int64_t j = 0; j < L; ++j) lane[j] = T(j);
  int64_t c = 0;
  for (; c < n; c += L) {
    for (int64_t j = 0; j < L; j += P)
      Eigen::internal::pstoreu(x + c + j,
                               Eigen::internal::pexp(Eigen::internal::psub(Eigen::internal::ploadu<Packet>(x + c + j), sp)));
    Vec<T> e;
    load_vec(e, x + c);
    const Vec<T> kept = lane < T(n - c) ? e : Vec<T>{};
    store_vec(x + c, kept);
    acc += kept;
  }
  for (; c < cols; c += L) store_vec(x + c, Vec<T>{});  // (x has whole vectors)
  return reduce_lanes<T>(acc, [](Vec<T>& a, const Vec<T>& b) { a += b; });
}

// SiLU(x)/n and its derivative d/dx; masked pairs (x = -inf) give 0.
template <class T>
inline void silu_terms(T x, T inv_n, T& f, T& df) {
  if (std::isinf(x) && x < 0) {  // masked pair; +inf is an overflow the result check reports
    f = df = 0;
    return;
  }
  T sg = T(1) / (T(1) + std::exp(-x));
  f = x * sg * inv_n;
  df = sg * (T(1) + x * (T(1) - sg)) * inv_n;
}

}  // namespace

// parallel_for over a pass's tasks, announced to and stepped on the progress meter when there is one.
template <class F>
void run_tasks(int64_t n, F&& fn, const CpuAttentionOptions& opt) {
  if (opt.progress) opt.progress->add_work(n);
  parallel_for(
      n,
      [&](int64_t task) {
        fn(task);
        if (opt.progress) opt.progress->step();
      },
      opt.threads);
}

template <class T>
CpuForward<T> cpu_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                          const CpuAttentionOptions& opt) {
  // float32 inputs read in place are checked for NaN/Inf by the tasks, on the rows they copy (Q, V) or
  // transpose (K) while these are in cache: a pass over all of Q, K and V before the tasks cost about a
  // tenth of a sparse forward. Key blocks no task reads are checked after the tasks (kv_read).
  Prepared<T> P(p, mask, in, opt.threads, /*defer_check=*/true);
  const int64_t H = P.H, D = P.D;
  const bool check_q = !P.q.checked, check_kv = !P.k.checked;
  std::atomic<bool> bad_input{false};
  std::unique_ptr<std::atomic<bool>[]> kv_read;  // per (batch, kv head, key block): some task checked it
  if (check_kv) {
    kv_read.reset(new std::atomic<bool>[size_t(p.batch * P.Hkv * P.mk)]);
    for (int64_t e = 0; e < p.batch * P.Hkv * P.mk; ++e) kv_read[size_t(e)].store(false, std::memory_order_relaxed);
  }
  CpuForward<T> res;
  res.out = std::vector<T>(size_t(p.total_q() * H * D));  // zeros by memset (assign's fill loop timed ~1% slower)
  const T fill = P.softmax ? -std::numeric_limits<T>::infinity() : T(0);
  res.lse.assign(size_t(p.varlen() ? H * p.total_q() : p.batch * H * p.q_len), fill);
  const T inv_n = P.softmax ? T(0) : T(1.0 / p.silu_n);
  // The first row (task * bq + row in block) whose running maximum score left the range of T, so that
  // an overflow is reported instead of being taken for a row with no visible key (O = 0, LSE = -inf).
  std::atomic<int64_t> overflow_row{-1};
  std::atomic<bool> nonfinite_out{false};  // some O row has a NaN/Inf
  run_tasks(
      p.batch * H * P.mq,
      [&](int64_t task) {
        int64_t i = task % P.mq, bh = task / P.mq, h = bh % H, b = bh / H;
        SeqSpan s = seq_span(p, b);
        int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
        if (rows <= 0) return;
        const T inf = std::numeric_limits<T>::infinity();
        const int64_t off = s.kv_len - s.q_len, hk = h / P.group;
        auto overflow = [&](int64_t r) {
          int64_t none = -1;
          overflow_row.compare_exchange_strong(none, task * P.bq + r);
        };
        thread_local ForwardScratch<T> w;
        // Key blocks with at least one existing key that some row of this block may see; none: the rows
        // keep O = 0 and LSE = -inf (SiLU: 0).
        P.forward_blocks(task, w.js);
        if (w.js.empty()) {
          if (check_q)
            for (int64_t r = 0; r < rows; ++r)
              if (!all_finite(P.q_rows(h, s.q0 + r0 + r, 1).data(), size_t(D))) bad_input = true;
          return;
        }
        // The Q rows and the K rows of the first chunk requested before Q is copied: they arrive side by
        // side (from L3 or memory, rows heads x D apart) instead of one after another. A chunk's V rows are
        // requested once its keys are transposed and copied after the softmax: they arrive during the
        // scores and the softmax.
        P.prefetch_rows(P.q, h, s.q0 + r0, rows);
        for (size_t t = 0; t < w.js.size() && int64_t(t) * P.bk < kForwardChunkCols; ++t) {
          const int64_t c0 = w.js[t] * P.bk, n = std::min(s.kv_len, c0 + P.bk) - c0;
          P.prefetch_rows(P.k, hk, s.k0 + c0, n);
        }
        w.qi.resize(rows, D);
        const Strided<T> qb = P.q_rows(h, s.q0 + r0, rows);
        if (!scaled_copy_checked(qb.data(), qb.outerStride(), rows, D, P.scale, w.qi.data(), D) && check_q)
          bad_input = true;
        w.acc.setZero(rows, D);
        w.m.setConstant(rows, -inf);
        w.l.setZero(rows);
        for (size_t t0 = 0; t0 < w.js.size();) {
          // The chunk: blocks t0..t1-1, at most kForwardChunkCols columns (one block at least).
          size_t t1 = t0;
          int64_t cols = 0;
          w.col_key.clear();
          for (; t1 < w.js.size(); ++t1) {
            const int64_t c0 = w.js[t1] * P.bk, n = std::min(s.kv_len, c0 + P.bk) - c0;
            if (t1 > t0 && cols + n > kForwardChunkCols) break;
            for (int64_t c = 0; c < n; ++c) w.col_key.push_back(c0 + c);
            cols += n;
          }
          // The chunk's keys transposed into kt and its values copied into vs, block by block (only the
          // sequence's last block can be short, and it comes last). kt has zero keys past `cols` to a
          // whole vector, and a vector more: where bk is not a multiple of the vector, a block's last tile
          // runs into the next block's columns (which that block then overwrites) or past the last one.
          const int64_t width = (cols + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
          w.kt.resize(D, width + kLanes<T>);
          w.vs.resize(cols, D);
          for (int64_t c = 0; c < cols; c += P.bk) {
            const int64_t n = std::min(P.bk, cols - c);
            const Strided<T> kb = P.k_rows(hk, s.k0 + w.col_key[size_t(c)], n);
            const bool k_finite =
                staircase::transpose_keys(kb.data(), kb.outerStride(), n, D, w.kt.data() + c, w.kt.cols());
            if (!k_finite) bad_input = true;
          }
          for (int64_t c = 0; c < cols; c += P.bk)
            P.prefetch_rows(P.v, hk, s.k0 + w.col_key[size_t(c)], std::min(P.bk, cols - c));
          // Columns row r sees: a prefix, since the chunk's keys ascend (all of them without causal), and
          // one that grows with r.
          auto visible = [&](int64_t r) {
            if (!P.causal) return cols;
            return int64_t(std::upper_bound(w.col_key.begin(), w.col_key.end(), r0 + r + off) - w.col_key.begin());
          };
          w.S.resize(rows, width);
          staircase::scores(w.qi.data(), D, w.kt.data(), w.kt.cols(), D, w.S.data(), width, rows, visible);
          int64_t n = P.causal ? 0 : cols;  // visible(r), found from visible(r - 1)
          for (int64_t r = 0; r < rows; ++r) {
            auto srow = w.S.row(r).head(cols);
            if (P.causal)
              while (n < cols && w.col_key[size_t(n)] <= r0 + r + off) ++n;
            if (!P.softmax) {
              for (int64_t c = 0; c < n; ++c) {
                T x = srow[c], df;
                if (P.bias) x += T(P.bias[(h * p.q_len + r0 + r) * p.kv_len + w.col_key[size_t(c)]]);
                silu_terms(x, inv_n, srow[c], df);
              }
              srow.tail(cols - n).setZero();
              continue;
            }
            // Online softmax over the visible columns; the hidden ones get exact zeros (never exp(-inf),
            // which Eigen's clamped exp can return as a float denormal (~4e-39): a wrong weight for huge V,
            // and denormals slowed causal masks 7x). A NaN score (+inf and -inf products in one
            // dot product) that the maximum skips makes the sum NaN, which the epilogue reports as an
            // overflow (Eigen's exp keeps NaN).
            const T mx = n > 0 ? max_of(srow.data(), n) : -inf;
            if (!(mx < inf)) overflow(r);
            const T mnew = std::max(w.m[r], mx);
            if (!(mx < inf) || mnew == -inf) {  // an overflow, or nothing visible yet
              srow.setZero();
              continue;
            }
            const T alpha = w.m[r] == -inf ? T(0) : std::exp(w.m[r] - mnew);
            // exp over whole vectors (S's rows have them): a tail of n element by element went through
            // libm's scalar expf, whose underflow path (scores far below the maximum) cost more than all
            // the vector exps of the row. The columns past n get zeros.
            w.l[r] = w.l[r] * alpha + exp_and_sum(srow.data(), n, cols, mnew);
            if (alpha != T(1) && w.m[r] != -inf) w.acc.row(r) *= alpha;  // (no maximum yet: acc's row is 0)
            w.m[r] = mnew;
          }
          for (int64_t c = 0; c < cols; c += P.bk) {
            const int64_t nv = std::min(P.bk, cols - c);
            const Strided<T> vb = P.v_rows(hk, s.k0 + w.col_key[size_t(c)], nv);
            if (!scaled_copy_checked(vb.data(), vb.outerStride(), nv, D, T(1), w.vs.row(c).data(), D)) bad_input = true;
            if (check_kv)  // K and V of the block checked
              kv_read[size_t((b * P.Hkv + hk) * P.mk + w.col_key[size_t(c)] / P.bk)].store(true, std::memory_order_relaxed);
          }
          staircase::weighted(w.S.data(), width, w.vs.data(), D, D, w.acc.data(), D, rows, visible);
          t0 = t1;
        }
        // O = acc / l with l >= 1 (the maximum's own term is exp(0)), or acc for SiLU: O has a NaN/Inf
        // exactly where acc has, and acc is checked here while it is in cache.
        if (!all_finite(w.acc.data(), size_t(rows * D))) nonfinite_out = true;
        StridedMut<T> o(res.out.data() + ((s.q0 + r0) * H + h) * D, rows, D, Eigen::OuterStride<>(H * D));
        if (P.softmax) w.log_l = w.l.array().log();  // vectorised; used where l > 0
        for (int64_t r = 0; r < rows; ++r) {
          if (!P.softmax) {
            o.row(r) = w.acc.row(r);
          } else if (!std::isfinite(w.l[r])) {  // a NaN score (+inf plus -inf in a dot product) or sum
            overflow(r);
          } else if (w.l[r] > 0) {
            const T lr = w.l[r];  // (a division, as before: the same O bit for bit)
            T* orow = o.row(r).data();
            const T* arow = w.acc.row(r).data();
            int64_t d = 0;
            for (; d + kLanes<T> <= D; d += kLanes<T>) {
              Vec<T> a;
              load_vec(a, arow + d);
              store_vec(orow + d, a / lr);
            }
            for (; d < D; ++d) orow[d] = arow[d] / lr;
            res.lse[size_t(P.lse_index(b, h, r0 + r, s))] = w.m[r] + w.log_l[r];
          }
        }
      },
      opt);
  if (check_kv) {  // the key blocks no task read
    std::vector<int64_t> unread;  // (batch * Hkv + kv head) * mk + key block
    for (int64_t e = 0; e < p.batch * P.Hkv * P.mk; ++e)
      if (!kv_read[size_t(e)].load(std::memory_order_relaxed)) unread.push_back(e);
    // Threads only where the rows to read outweigh starting them (parallel_for starts its threads per call).
    const bool few = int64_t(unread.size()) * P.bk * D < (int64_t(1) << 18);
    parallel_for(
        int64_t(unread.size()),
        [&](int64_t u) {
          const int64_t e = unread[size_t(u)], j = e % P.mk, bh = e / P.mk, b = bh / P.Hkv, hk = bh % P.Hkv;
          const SeqSpan s = seq_span(p, b);
          const int64_t c0 = j * P.bk, n = std::min(s.kv_len, c0 + P.bk) - c0;
          for (int64_t c = 0; c < n; ++c)
            if (!all_finite(P.k_rows(hk, s.k0 + c0 + c, 1).data(), size_t(D)) ||
                !all_finite(P.v_rows(hk, s.k0 + c0 + c, 1).data(), size_t(D)))
              bad_input = true;
        },
        few ? 1 : opt.threads);
  }
  if (bad_input) P.check_inputs();  // names the first NaN/Inf of Q, K, V and throws
  if (int64_t code = overflow_row.load(); code >= 0) {
    const int64_t task = code / P.bq, r = code % P.bq, i = task % P.mq, bh = task / P.mq;
    throw UsageError("attention scores overflow " + std::string(precision_name<T>()) + " for the query at [b=" +
                     std::to_string(bh / H) + ", s=" + std::to_string(i * P.bq + r) + ", h=" + std::to_string(bh % H) +
                     "]: scale*q.k is not finite (Q/K too large for this precision; scale them down" +
                     (sizeof(T) == 4 ? " or use --f64)" : ")"));
  }
  const int64_t rq = p.varlen() ? 0 : p.q_len;
  if (nonfinite_out) check_finite_result(res.out, H, D, rq, "O");  // names the first element and throws
  for (size_t e = 0; e < res.lse.size(); ++e)
    if (std::isnan(res.lse[e]) || res.lse[e] == std::numeric_limits<T>::infinity())
      throw UsageError("LSE is not finite at element " + std::to_string(e) + ": the softmax sum overflowed " +
                       precision_name<T>() + " (inputs too large for this precision)");
  return res;
}

template <class T>
CpuGradients<T> cpu_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                             const CpuForward<T>& fwd, const float* dout, const CpuAttentionOptions& opt) {
  Prepared<T> P(p, mask, in, opt.threads);
  const int64_t H = P.H, Hkv = P.Hkv, D = P.D;
  const int64_t nq = p.total_q() * H * D;
  if (int64_t(fwd.out.size()) != nq) throw UsageError("backward: O does not match the problem's sizes");
  std::vector<T> dO = convert_checked<T>(dout, ElemType::F32, nq, H, D, p.varlen() ? 0 : p.q_len, "dO");
  // Delta_i = rowsum(dO * O) per (row, head) (softmax only).
  std::vector<T> delta(size_t(p.total_q() * H), T(0));
  if (P.softmax)
    for (int64_t e = 0; e < p.total_q() * H; ++e) {
      T acc = 0;
      for (int64_t d = 0; d < D; ++d) acc += dO[size_t(e * D + d)] * fwd.out[size_t(e * D + d)];
      delta[size_t(e)] = acc;
    }
  const T inv_n = P.softmax ? T(0) : T(1.0 / p.silu_n);
  CpuGradients<T> g;
  g.dq.assign(size_t(nq), T(0));
  g.dk.assign(size_t(p.total_k() * Hkv * D), T(0));
  g.dv.assign(size_t(p.total_k() * Hkv * D), T(0));

  // dS (into S) and, for dK/dV, P or SiLU weights (into W) of one block pair.
  auto block_grads = [&](const RowMat<T>& S_in, RowMat<T>& Pm, RowMat<T>& dS, const RowMat<T>& dOi,
                         const Strided<T>& vj, int64_t b, int64_t h, int64_t r0, const SeqSpan& s) {
    int64_t rows = S_in.rows(), cols = S_in.cols();
    RowMat<T> dP = dOi * vj.transpose();
    Pm.resize(rows, cols);
    dS.resize(rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      if (P.softmax) {
        T lse = fwd.lse[size_t(P.lse_index(b, h, r0 + r, s))];
        T dl = delta[size_t((s.q0 + r0 + r) * H + h)];
        for (int64_t c = 0; c < cols; ++c) {
          T pr = std::isinf(lse) ? T(0) : std::exp(S_in(r, c) - lse);
          Pm(r, c) = pr;
          dS(r, c) = pr * (dP(r, c) - dl);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c) {
          T df;
          silu_terms(S_in(r, c), inv_n, Pm(r, c), df);
          dS(r, c) = dP(r, c) * df;
        }
      }
    }
  };

  // dQ: by (batch, head, row block).
  run_tasks(
      p.batch * H * P.mq,
      [&](int64_t task) {
        int64_t i = task % P.mq, bh = task / P.mq, h = bh % H, b = bh / H;
        SeqSpan s = seq_span(p, b);
        int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
        if (rows <= 0) return;
        RowMat<T> qi = P.q_rows(h, s.q0 + r0, rows) * P.scale;
        RowMat<T> dOi = P.rows_of(dO.data(), H, s.q0 + r0, h, rows);
        RowMat<T> dq = RowMat<T>::Zero(rows, D), S, Pm, dS;
        for (int64_t j : visited_blocks(mask, P.mask_b(b), h, i)) {
          int64_t c0, cols;
          if (!P.scores(qi, s, h, r0, rows, j, S, c0, cols)) continue;
          auto vj = P.v_rows(h / P.group, s.k0 + c0, cols);
          block_grads(S, Pm, dS, dOi, vj, b, h, r0, s);
          dq.noalias() += dS * P.k_rows(h / P.group, s.k0 + c0, cols);
        }
        StridedMut<T>(g.dq.data() + ((s.q0 + r0) * H + h) * D, rows, D, Eigen::OuterStride<>(H * D)) = dq * P.scale;
      },
      opt);

  // dK, dV: by (batch, kv head, column block), summing the query heads of the group.
  run_tasks(
      p.batch * Hkv * P.mk,
      [&](int64_t task) {
        int64_t j = task % P.mk, bh = task / P.mk, hk = bh % Hkv, b = bh / Hkv;
        SeqSpan s = seq_span(p, b);
        int64_t c0 = j * P.bk, cols = std::min(s.kv_len, c0 + P.bk) - c0;
        if (cols <= 0) return;
        RowMat<T> dk = RowMat<T>::Zero(cols, D), dv = RowMat<T>::Zero(cols, D), S, Pm, dS;
        auto vj = P.v_rows(hk, s.k0 + c0, cols);
        for (int64_t h = hk * P.group; h < (hk + 1) * P.group; ++h)
          for (int64_t i = 0; i < P.mq; ++i) {
            int64_t r0 = i * P.bq, rows = std::min(s.q_len, r0 + P.bq) - r0;
            if (rows <= 0) break;
            auto js = visited_blocks(mask, P.mask_b(b), h, i);
            if (!std::binary_search(js.begin(), js.end(), j)) continue;
            RowMat<T> qi = P.q_rows(h, s.q0 + r0, rows) * P.scale;
            int64_t cc0, ccols;
            if (!P.scores(qi, s, h, r0, rows, j, S, cc0, ccols)) continue;
            RowMat<T> dOi = P.rows_of(dO.data(), H, s.q0 + r0, h, rows);
            block_grads(S, Pm, dS, dOi, vj, b, h, r0, s);
            dv.noalias() += Pm.transpose() * dOi;
            dk.noalias() += dS.transpose() * qi;
          }
        StridedMut<T>(g.dk.data() + ((s.k0 + c0) * Hkv + hk) * D, cols, D, Eigen::OuterStride<>(Hkv * D)) = dk;
        StridedMut<T>(g.dv.data() + ((s.k0 + c0) * Hkv + hk) * D, cols, D, Eigen::OuterStride<>(Hkv * D)) = dv;
      },
      opt);
  const int64_t rq = p.varlen() ? 0 : p.q_len, rk = p.varlen() ? 0 : p.kv_len;
  check_finite_result(g.dq, H, D, rq, "dQ");
  check_finite_result(g.dk, Hkv, D, rk, "dK");
  check_finite_result(g.dv, Hkv, D, rk, "dV");
  return g;
}

template CpuForward<float> cpu_forward<float>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                              const CpuAttentionOptions&);
template CpuForward<double> cpu_forward<double>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                                const CpuAttentionOptions&);
template CpuGradients<float> cpu_backward<float>(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                                                 const CpuForward<float>&, const float*, const CpuAttentionOptions&);
template CpuGradients<double> cpu_backward<double>(const AttentionProblem&, const BlockMask&,
                                                   const AttentionInputs&, const CpuForward<double>&, const float*,
                                                   const CpuAttentionOptions&);

AttentionResult cpu_attention_forward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in) {
  auto f = cpu_forward<float>(p, mask, in);
  return AttentionResult{std::move(f.out), std::move(f.lse)};
}

AttentionGradients cpu_attention_backward(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in,
                                          const AttentionResult& fwd, const float* dout) {
  CpuForward<float> f{fwd.out, fwd.lse};
  auto g = cpu_backward<float>(p, mask, in, f, dout);
  return AttentionGradients{std::move(g.dq), std::move(g.dk), std::move(g.dv)};
}

}  // namespace bsattn
