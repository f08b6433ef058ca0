#include "lib/dilated/dilated.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "lib/dilated/dilated_gpu.h"
#include "lib/error.h"
#include "lib/reference/cpu_attention.h"
#include "lib/sizes.h"
#include "lib/spec.h"

namespace bsattn::dilated {

std::string DilatedSpec::str() const {
  std::string s;
  for (const Branch& b : branches) s += (s.empty() ? "" : ",") + std::to_string(b.segment) + ":" + std::to_string(b.rate);
  return s;
}

nlohmann::json DilatedSpec::to_json() const {
  nlohmann::json br = nlohmann::json::array();
  for (const Branch& b : branches) br.push_back({{"segment", b.segment}, {"rate", b.rate}});
  return {{"spec", str()}, {"branches", br}, {"causal", causal}, {"head_offset", "head mod rate"}};
}

namespace {

// A positive integer in 1..2^40 (longer than any sequence the library takes), or -1.
int64_t parse_count(const std::string& t) {
  if (t.empty() || t.size() > 13) return -1;
  int64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v >= 1 && v <= (int64_t(1) << 40) ? v : -1;
}

}  // namespace

DilatedSpec parse_dilated(const std::string& text, bool causal, const std::string& what) {
  const std::string allowed = " (allowed: SEGMENT:RATE pairs separated by commas, e.g. 2048:1,4096:2,8192:4; 1 to " +
                              std::to_string(kMaxBranches) + " pairs, segment >= 1, rate >= 1 dividing the segment)";
  DilatedSpec spec;
  spec.causal = causal;
  if (text.empty()) throw UsageError(what + " is empty" + allowed);
  for (const std::string& item : split_list(text, what, "2048:1,4096:2,8192:4")) {
    size_t colon = item.find(':');
    if (colon == std::string::npos)
      throw UsageError(what + ": '" + item + "' is not SEGMENT:RATE" + allowed);
    int64_t w = parse_count(item.substr(0, colon)), r = parse_count(item.substr(colon + 1));
    if (w < 0) throw UsageError(what + ": segment '" + item.substr(0, colon) + "' in '" + item + "' is not an integer in 1..2^40" + allowed);
    if (r < 0) throw UsageError(what + ": rate '" + item.substr(colon + 1) + "' in '" + item + "' is not an integer in 1..2^40" + allowed);
    if (w % r != 0)
      throw UsageError(what + ": rate " + std::to_string(r) + " does not divide segment " + std::to_string(w) + " in '" +
                       item + "'" + allowed);
    if (int(spec.branches.size()) == kMaxBranches) throw UsageError(what + ": more than " + std::to_string(kMaxBranches) + " pairs" + allowed);
    spec.branches.push_back({w, r});
  }
  return spec;
}

void check_problem(const AttentionProblem& p, const DilatedSpec& spec) {
  if (spec.branches.empty()) throw UsageError("--dilated: no SEGMENT:RATE pair given");
  if (p.varlen()) throw UsageError("--dilated takes fixed-length batches (no cu_seqlens)");
  if (p.q_len != p.kv_len)
    throw UsageError("--dilated needs as many keys as queries (self-attention), got q_len=" + std::to_string(p.q_len) +
                     " and kv_len=" + std::to_string(p.kv_len));
  if (p.score != ScoreFn::Softmax) throw UsageError("--dilated merges branches by their softmax denominators: it needs --score softmax");
  if (p.batch <= 0 || p.q_len <= 0 || p.heads_q <= 0 || p.heads_kv <= 0 || p.head_dim <= 0)
    throw UsageError("attention sizes must be positive (batch, seq, heads, head_dim)");
  if (p.heads_q % p.heads_kv != 0)
    throw UsageError("query heads (" + std::to_string(p.heads_q) + ") must be a multiple of key/value heads (" +
                     std::to_string(p.heads_kv) + ")");
  // The branches run as varlen batches, whose offsets are int32 (FlashAttention's cu_seqlens).
  if (p.batch * p.q_len > std::numeric_limits<int32_t>::max())
    throw UsageError("--dilated: batch * seq = " + std::to_string(p.batch * p.q_len) + " tokens (allowed: at most 2^31-1)");
}

BranchPlan plan_branch(const AttentionProblem& p, const Branch& b, bool causal, int64_t block_q, int64_t block_kv) {
  const int64_t S = p.q_len, w = b.segment, r = b.rate;
  BranchPlan plan;
  plan.branch = b;
  // Strided when r divides S (then every segment, the tail too, holds S_seg / r tokens of each class) and
  // the r * Hq virtual heads stay within a grid dimension of the kernels that launch one CTA row per head.
  plan.strided = S % r == 0 && r * p.heads_q <= kMaxGridDim;
  AttentionProblem& bp = plan.problem;
  bp = p;
  // Runs: strided, one per (batch, segment), all classes in it (each class its virtual heads); residue
  // form, one per (batch, segment, class).
  std::vector<int64_t> lens;
  for (int64_t bi = 0; bi < p.batch; ++bi)
    for (int64_t s0 = 0; s0 < S; s0 += w) {
      const int64_t len = std::min(w, S - s0);
      if (plan.strided) {
        lens.push_back(len / r);
        continue;
      }
      for (int64_t c = 0; c < r && c < len; ++c) {  // class c: positions c, c + r, ... of the segment
        lens.push_back((len - c + r - 1) / r);
        plan.run_class.push_back(c);
      }
    }
  if (plan.strided) {
    bp.heads_q = p.heads_q * r;
    bp.heads_kv = p.heads_kv * r;
  } else {
    plan.perm = curves::residue_order(S, w, r);
    plan.inv.resize(plan.perm.size());
    for (size_t j = 0; j < plan.perm.size(); ++j) plan.inv[size_t(plan.perm[j])] = int64_t(j);
  }
  const int64_t runs = int64_t(lens.size()), maxlen = *std::max_element(lens.begin(), lens.end());
  bp.batch = runs;
  bp.q_len = bp.kv_len = maxlen;
  bp.cu_seqlens_q.assign(size_t(runs + 1), 0);
  for (int64_t i = 0; i < runs; ++i) bp.cu_seqlens_q[size_t(i + 1)] = int32_t(bp.cu_seqlens_q[size_t(i)] + lens[size_t(i)]);
  bp.cu_seqlens_k = bp.cu_seqlens_q;

  MaskShape ms;
  ms.batch = runs;
  ms.heads = bp.heads_q;
  ms.q_len = ms.kv_len = maxlen;
  ms.block_q = block_q;
  ms.block_kv = block_kv;
  ms.validate();
  BlockMask& m = plan.mask;
  m = BlockMask(ms);
  m.causal = causal;
  for (int64_t run = 0; run < runs; ++run) {
    const int64_t n = lens[size_t(run)], nbq = (n + block_q - 1) / block_q, nbk = (n + block_kv - 1) / block_kv;
    for (int64_t h = 0; h < p.heads_q; ++h) {
      const int64_t c = head_offset(h, r);
      if (!plan.strided && c != plan.run_class[size_t(run)]) continue;
      const int64_t head = plan.strided ? c * p.heads_q + h : h;
      for (int64_t i = 0; i < nbq; ++i) {
        const int64_t last_q = std::min(n, (i + 1) * block_q) - 1;
        for (int64_t j = 0; j < nbk && (!causal || j * block_kv <= last_q); ++j) m.set(run, head, i, j);
      }
    }
  }
  m.normalize_head_types();
  m.spec = {{"pattern", "dilated-branch"}, {"segment", w}, {"rate", r}, {"causal", causal}};
  return plan;
}

int64_t dilated_pairs(const AttentionShape& s, const DilatedSpec& spec) {
  int64_t total = 0;
  const int64_t S = s.q_len;
  for (const Branch& b : spec.branches)
    for (int64_t s0 = 0; s0 < S; s0 += b.segment) {
      const int64_t len = std::min(b.segment, S - s0);
      for (int64_t h = 0; h < s.heads_q; ++h) {
        const int64_t c = head_offset(h, b.rate);
        const int64_t n = c < len ? (len - c + b.rate - 1) / b.rate : 0;
        total += spec.causal ? n * (n + 1) / 2 : n * n;
      }
    }
  return total * s.batch;
}

std::vector<uint8_t> permute_token_rows(const void* src, size_t row_bytes, int64_t batch, const curves::Perm& perm) {
  const int64_t S = int64_t(perm.size());
  std::vector<uint8_t> dst(size_t(batch * S) * row_bytes);
  const uint8_t* s = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < S; ++j)
      std::memcpy(dst.data() + size_t(b * S + j) * row_bytes, s + size_t(b * S + perm[size_t(j)]) * row_bytes, row_bytes);
  return dst;
}

namespace {

// A branch's forward (varlen LSE layout [Hq, total]) and gradients, in the precision T of the merge.
template <class T>
struct BranchRunner {
  virtual ~BranchRunner() = default;
  virtual CpuForward<T> forward(const BranchPlan& b, const AttentionInputs& in) = 0;
  virtual CpuGradients<T> backward(const BranchPlan& b, const AttentionInputs& in, const CpuForward<T>& fwd,
                                   const float* dout) = 0;
  // The whole forward (branches and merge) in one call when the backend has it: out [B*S, Hq, D], lse
  // [B, Hq, S] in the original order. False: the branches run one by one and merge on the host.
  virtual bool whole_forward(const AttentionProblem&, const std::vector<BranchPlan>&, const AttentionInputs&,
                             std::vector<T>&, std::vector<T>&) {
    return false;
  }
};

template <class T>
struct CpuRunner : BranchRunner<T> {
  CpuAttentionOptions opt;
  CpuForward<T> forward(const BranchPlan& b, const AttentionInputs& in) override {
    return cpu_forward<T>(b.problem, b.mask, in, opt);
  }
  CpuGradients<T> backward(const BranchPlan& b, const AttentionInputs& in, const CpuForward<T>& fwd,
                           const float* dout) override {
    return cpu_backward<T>(b.problem, b.mask, in, fwd, dout, opt);
  }
};

// Any backend of attention_forward / attention_backward (the cuda one in practice), float32.
struct EntryRunner : BranchRunner<float> {
  AttentionOptions opt;
  CpuForward<float> forward(const BranchPlan& b, const AttentionInputs& in) override {
    AttentionResult r = attention_forward(b.problem, b.mask, in, opt);
    return {std::move(r.out), std::move(r.lse)};
  }
  CpuGradients<float> backward(const BranchPlan& b, const AttentionInputs& in, const CpuForward<float>& fwd,
                               const float* dout) override {
    AttentionResult f{fwd.out, fwd.lse};
    AttentionGradients g = attention_backward(b.problem, b.mask, in, f, dout, opt);
    return {std::move(g.dq), std::move(g.dk), std::move(g.dv)};
  }
  // cuda: gathers, branches and the LSE merge on the GPU (lib/dilated/dilated_gpu.h).
  bool whole_forward(const AttentionProblem& p, const std::vector<BranchPlan>& plans, const AttentionInputs& in,
                     std::vector<float>& out, std::vector<float>& lse) override {
    if (opt.backend != Backend::Cuda || !dilated_gpu()) return false;
    DilatedResult r = dilated_gpu()->forward(p, plans, in, opt);
    out = std::move(r.out), lse = std::move(r.lse);
    return true;
  }
};

template <class T>
std::vector<float> to_float(const std::vector<T>& x, const char* name) {
  if constexpr (std::is_same_v<T, double>) return narrow_to_float32(x, name);
  else return x;
}

template <class T>
DilatedResult run_dilated(const AttentionProblem& p, const DilatedSpec& spec, const AttentionInputs& in,
                          const float* dout, const DilatedOptions& opt, BranchRunner<T>& runner) {
  const int64_t B = p.batch, S = p.q_len, H = p.heads_q, Hkv = p.heads_kv, D = p.head_dim, BS = B * S;
  const size_t es = elem_size(p.dtype), qrow = size_t(H * D) * es, krow = size_t(Hkv * D) * es;
  const T ninf = -std::numeric_limits<T>::infinity();
  std::vector<T> out(size_t(BS * H * D), T(0)), lse(size_t(B * H * S), ninf);
  std::vector<BranchPlan> plans;
  for (const Branch& br : spec.branches) plans.push_back(plan_branch(p, br, spec.causal, opt.block_q, opt.block_kv));

  // A branch's inputs: the caller's (strided form) or permuted into its residue order.
  struct BranchInputs {
    std::vector<uint8_t> q, k, v;
    AttentionInputs view;
  };
  auto branch_inputs = [&](const BranchPlan& b) {
    BranchInputs x;
    if (b.strided) {
      x.view = {in.q, in.k, in.v, nullptr};
      return x;
    }
    x.q = permute_token_rows(in.q, qrow, B, b.perm), x.k = permute_token_rows(in.k, krow, B, b.perm);
    x.v = permute_token_rows(in.v, krow, B, b.perm);
    x.view = {x.q.data(), x.k.data(), x.v.data(), nullptr};
    return x;
  };

  // Forward: each branch's rows merged into (out, lse) as they come: the running merge keeps one
  // output, normalized, and its log-denominator. A branch's LSE is [its heads, its rows] (varlen).
  const bool whole = runner.whole_forward(p, plans, in, out, lse);
  for (const BranchPlan& b : plans) {
    if (whole) break;
    BranchInputs x = branch_inputs(b);
    CpuForward<T> f = runner.forward(b, x.view);
    const int64_t brows = b.rows(BS), bheads = b.heads(H);
    for (int64_t g = 0; g < BS; ++g)
      for (int64_t h = 0; h < H; ++h) {
        const BranchPlan::Slot sl = b.slot(g, h, H, S);
        const T lb = f.lse[size_t(sl.head * brows + sl.row)];
        if (lb == ninf) continue;  // the branch does not select this token for head h
        T& L = lse[size_t(((g / S) * H + h) * S + g % S)];
        T* o = out.data() + (g * H + h) * D;
        const T* ob = f.out.data() + (sl.row * bheads + sl.head) * D;
        if (L == ninf) {
          L = lb;
          std::copy(ob, ob + D, o);
          continue;
        }
        const T mx = std::max(L, lb), wa = std::exp(L - mx), wb = std::exp(lb - mx), s = wa + wb;
        for (int64_t d = 0; d < D; ++d) o[d] = (wa * o[d] + wb * ob[d]) / s;
        L = mx + std::log(s);
      }
  }

  DilatedResult res;
  if (dout) {
    // Backward: each branch with the merged O and LSE in its own layout, dO likewise; the branches'
    // gradients, back in the original order, add up.
    std::vector<T> dq(size_t(BS * H * D), T(0)), dk(size_t(BS * Hkv * D), T(0)), dv(size_t(BS * Hkv * D), T(0));
    for (const BranchPlan& b : plans) {
      BranchInputs x = branch_inputs(b);
      const int64_t brows = b.rows(BS), bheads = b.heads(H), bkv = b.heads(Hkv);
      CpuForward<T> f;
      f.out.resize(out.size());
      f.lse.resize(size_t(H * BS));
      std::vector<float> dob(size_t(BS * H * D));
      for (int64_t g = 0; g < BS; ++g)
        for (int64_t h = 0; h < H; ++h) {
          const BranchPlan::Slot sl = b.slot(g, h, H, S);
          const int64_t src = (g * H + h) * D, dst = (sl.row * bheads + sl.head) * D;
          std::copy(out.begin() + src, out.begin() + src + D, f.out.begin() + dst);
          std::copy(dout + src, dout + src + D, dob.begin() + dst);
          f.lse[size_t(sl.head * brows + sl.row)] = lse[size_t(((g / S) * H + h) * S + g % S)];
        }
      CpuGradients<T> gr = runner.backward(b, x.view, f, dob.data());
      for (int64_t g = 0; g < BS; ++g) {
        for (int64_t h = 0; h < H; ++h) {
          const BranchPlan::Slot sl = b.slot(g, h, H, S);
          const T* src = gr.dq.data() + (sl.row * bheads + sl.head) * D;
          for (int64_t d = 0; d < D; ++d) dq[size_t((g * H + h) * D + d)] += src[d];
        }
        for (int64_t h = 0; h < Hkv; ++h) {
          const BranchPlan::Slot sl = b.slot(g, h, Hkv, S);
          const int64_t src = (sl.row * bkv + sl.head) * D, dst = (g * Hkv + h) * D;
          for (int64_t d = 0; d < D; ++d) {
            dk[size_t(dst + d)] += gr.dk[size_t(src + d)];
            dv[size_t(dst + d)] += gr.dv[size_t(src + d)];
          }
        }
      }
    }
    res.dq = to_float(dq, "dQ"), res.dk = to_float(dk, "dK"), res.dv = to_float(dv, "dV");
  }
  res.out = to_float(out, "O");
  if constexpr (std::is_same_v<T, double>) {
    res.lse.resize(lse.size());  // -inf stays -inf; finite log-sums are far inside float32's range
    for (size_t i = 0; i < lse.size(); ++i) res.lse[i] = float(lse[i]);
  } else {
    res.lse = std::move(lse);
  }
  return res;
}

}  // namespace

DilatedResult dilated_attention(const AttentionProblem& p, const DilatedSpec& spec, const AttentionInputs& in,
                                const float* dout, const DilatedOptions& opt) {
  check_problem(p, spec);
  if (opt.attention.backend == Backend::Cuda) {
    if (opt.f64) throw UsageError("--f64 is computed by the CPU reference: add --backend cpu");
    EntryRunner r;
    r.opt = opt.attention;
    return run_dilated<float>(p, spec, in, dout, opt, r);
  }
  if (!opt.attention.kernel.empty()) throw UsageError("--kernel selects a CUDA kernel; it needs --backend cuda");
  if (opt.f64) {
    CpuRunner<double> r;
    r.opt.threads = opt.threads;
    return run_dilated<double>(p, spec, in, dout, opt, r);
  }
  CpuRunner<float> r;
  r.opt.threads = opt.threads;
  return run_dilated<float>(p, spec, in, dout, opt, r);
}

}  // namespace bsattn::dilated
