// The CPU reference engine of the ring, and the LSE merge both engines follow.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "lib/reference/cpu_attention.h"
#include "lib/ring/rank_engine.h"

namespace bsattn::ring {

void merge_partial(float* out, float* lse, const float* part_out, const float* part_lse, int64_t batch, int64_t rows,
                   int64_t heads, int64_t head_dim) {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t li = (b * heads + h) * rows + i;
        const float la = lse[li], lb = part_lse[li];
        if (lb == ninf) continue;  // the step saw no key for this row
        float* o = out + ((b * rows + i) * heads + h) * head_dim;
        const float* ob = part_out + ((b * rows + i) * heads + h) * head_dim;
        if (la == ninf) {
          std::copy(ob, ob + head_dim, o);
          lse[li] = lb;
          continue;
        }
        const float m = std::max(la, lb);
        const float wa = std::exp(la - m), wb = std::exp(lb - m), s = wa + wb;
        for (int64_t d = 0; d < head_dim; ++d) o[d] = (wa * o[d] + wb * ob[d]) / s;
        lse[li] = m + std::log(s);
      }
}

namespace {

class CpuEngine : public RankEngine {
 public:
  CpuEngine(const EngineSizes& s, int threads) : s_(s), threads_(threads) {
    const size_t bytes = shard_bytes(s.max_rows, s.gradients);
    for (auto& sl : slots_) sl.assign(bytes / sizeof(float), 0.f);
  }
  size_t shard_bytes(int64_t rows, bool gradients) const override {
    return size_t(kv_elems(rows)) * (gradients ? 4 : 2) * sizeof(float);
  }
  void* slot(int s) override { return slots_[s].data(); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void* compute_stream() override { return nullptr; }

  void load(const float* q, const float* k, const float* v) override {
    const int64_t nq = q_elems(), nk = kv_elems(s_.own_rows);
    q_.assign(q, q + nq);
    float* s0 = slots_[0].data();
    std::copy(k, k + nk, s0);
    std::copy(v, v + nk, s0 + nk);
    if (s_.gradients) std::fill(s0 + 2 * nk, s0 + 4 * nk, 0.f);
    out_.assign(size_t(nq), 0.f);
    lse_.assign(size_t(lse_elems()), -std::numeric_limits<float>::infinity());
  }

  void forward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) override {
    const float* kv = slots_[slot].data();
    const AttentionInputs in{q_.data(), kv, kv + kv_elems(sub.kv_len), nullptr};
    CpuForward<float> f = cpu_forward<float>(sub, mask, in, CpuAttentionOptions{threads_, nullptr});
    merge_partial(out_.data(), lse_.data(), f.out.data(), f.lse.data(), s_.batch, s_.own_rows, s_.heads_q, s_.head_dim);
  }

  void read_output(float* out, float* lse) override {
    std::copy(out_.begin(), out_.end(), out);
    std::copy(lse_.begin(), lse_.end(), lse);
  }

  void begin_backward(const float* dout, const float* out, const float* lse) override {
    dout_.assign(dout, dout + q_elems());
    fwd_.out.assign(out, out + q_elems());
    fwd_.lse.assign(lse, lse + lse_elems());
    dq_.assign(size_t(q_elems()), 0.f);
  }

  void backward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) override {
    float* kv = slots_[slot].data();
    const int64_t nk = kv_elems(sub.kv_len);
    const AttentionInputs in{q_.data(), kv, kv + nk, nullptr};
    CpuGradients<float> g = cpu_backward<float>(sub, mask, in, fwd_, dout_.data(), CpuAttentionOptions{threads_, nullptr});
    for (size_t e = 0; e < dq_.size(); ++e) dq_[e] += g.dq[e];
    float* dk = kv + 2 * nk;
    float* dv = kv + 3 * nk;
    for (int64_t e = 0; e < nk; ++e) dk[e] += g.dk[size_t(e)], dv[e] += g.dv[size_t(e)];
  }

  void read_gradients(int slot, float* dq, float* dk, float* dv) override {
    std::copy(dq_.begin(), dq_.end(), dq);
    const int64_t nk = kv_elems(s_.own_rows);
    const float* kv = slots_[slot].data();
    std::copy(kv + 2 * nk, kv + 3 * nk, dk);
    std::copy(kv + 3 * nk, kv + 4 * nk, dv);
  }

  void synchronize() override {}
  size_t memory_bytes() const override {
    size_t n = q_.size() + out_.size() + lse_.size() + dout_.size() + fwd_.out.size() + fwd_.lse.size() + dq_.size();
    for (const auto& sl : slots_) n += sl.size();
    return n * sizeof(float);
  }
  const char* name() const override { return "cpu (float32)"; }

 private:
  int64_t q_elems() const { return s_.batch * s_.own_rows * s_.heads_q * s_.head_dim; }
  int64_t lse_elems() const { return s_.batch * s_.heads_q * s_.own_rows; }
  int64_t kv_elems(int64_t rows) const { return s_.batch * rows * s_.heads_kv * s_.head_dim; }

  EngineSizes s_;
  int threads_;
  std::vector<float> slots_[2];
  std::vector<float> q_, out_, lse_, dout_, dq_;
  CpuForward<float> fwd_;
};

}  // namespace

std::unique_ptr<RankEngine> make_cpu_engine(const EngineSizes& sizes, int threads) {
  return std::make_unique<CpuEngine>(sizes, threads);
}

}  // namespace bsattn::ring
