// Dense block mass and per-row recall (lib/quality/block_mass.h) against probabilities computed
// plainly in float64 from the naive scores.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "lib/quality/block_mass.h"
#include "lib/rng.h"
#include "tests/reference/naive.h"

using namespace bsattn;

TEST_CASE("dense block mass and row recall match the naive dense probabilities") {
  for (bool causal : {false, true}) {
    // Batch 2, 2 query heads over 1 KV head, D = 8, 16x16 blocks with partial last blocks.
    AttentionProblem p;
    p.batch = 2;
    p.q_len = 45;
    p.kv_len = 70;
    p.heads_q = 2;
    p.heads_kv = 1;
    p.head_dim = 8;
    p.dtype = ElemType::F32;
    BlockMask m(MaskShape{2, 2, 45, 70, 16, 16});
    m.causal = causal;
    Rng rng(21);
    for (auto& bit : m.bits) bit = rng.uniform() < 0.5;
    if (causal) m.apply_causal();
    auto q = naive::randn(size_t(2 * 45 * 2 * 8), 22, 2.0);
    auto k = naive::randn(size_t(2 * 70 * 1 * 8), 23, 2.0);
    auto mass = dense_block_mass(p, q.data(), k.data(), causal, 16, 16);
    auto recall = row_recall(p, q.data(), k.data(), m);
    // Dense probabilities from the naive attention with V = one-hot of the key index is too big; do it
    // directly: P_rc from the naive scores.
    int64_t mq = 3, mk = 5;
    std::vector<double> want(size_t(2 * 2 * mq * mk), 0.0);
    std::vector<int64_t> live(size_t(2 * 2 * mq), 0);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t r = 0; r < 45; ++r) {
          std::vector<double> x(70, -INFINITY);
          double mx = -INFINITY;
          for (int64_t cc = 0; cc < 70; ++cc) {
            if (causal && cc > r + 25) continue;
            double dot = 0;
            for (int64_t d = 0; d < 8; ++d) dot += double(q[size_t(((b * 45 + r) * 2 + h) * 8 + d)]) * k[size_t((b * 70 + cc) * 8 + d)];
            x[cc] = dot / std::sqrt(8.0);
            mx = std::max(mx, x[cc]);
          }
          double sum = 0, kept = 0;
          for (int64_t cc = 0; cc < 70; ++cc) sum += std::exp(x[cc] - mx);
          ++live[size_t((b * 2 + h) * mq + r / 16)];
          for (int64_t cc = 0; cc < 70; ++cc) {
            double pr = std::exp(x[cc] - mx) / sum;
            want[size_t(((b * 2 + h) * mq + r / 16) * mk + cc / 16)] += pr;
            if (m.at(b, h, r / 16, cc / 16)) kept += pr;
          }
          CHECK(recall[size_t((b * 2 + h) * 45 + r)] == doctest::Approx(kept).epsilon(1e-5));
        }
    for (size_t e = 0; e < want.size(); ++e) {
      double w = want[e] / double(live[e / size_t(mk)]);
      CHECK(mass[e] == doctest::Approx(w).epsilon(1e-5));  // f32 scores: ~1e-6 relative
    }
  }
}
