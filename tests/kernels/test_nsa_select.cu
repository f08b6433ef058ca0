// NSA's block selection rule as the GPU kernel applies it (kernels/nsa_select.h), on the host: a hand-computed
// row, then random rows (with deliberate ties) against a selection written here as lib/nsa describes it:
// forced blocks first, then the others sorted by decreasing importance, ties to the lower index.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/nsa_select.h"
#include "lib/rng.h"

using namespace bsattn;
namespace nsa = bsattn::cuda::nsa;

namespace {

std::vector<int> taken_by_rule(const std::vector<float>& imp, int64_t c, int64_t init, int64_t local, int64_t topn) {
  std::vector<int> out;
  for (int64_t j = 0; j <= c; ++j)
    if (nsa::block_taken(imp.data(), j, c, init, local, topn)) out.push_back(int(j));
  return out;
}

std::vector<int> taken_by_sort(const std::vector<float>& imp, int64_t c, int64_t init, int64_t local, int64_t topn) {
  std::vector<int> take, rest;
  for (int64_t j = 0; j <= c; ++j) (j < init || j > c - local ? take : rest).push_back(int(j));
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) { return imp[size_t(a)] > imp[size_t(b)]; });
  for (int j : rest)
    if (int64_t(take.size()) < topn) take.push_back(j);
  std::sort(take.begin(), take.end());
  return take;
}

}  // namespace

TEST_CASE("NSA block selection: a hand-computed row") {
  // Blocks 0..5: forced 0 (init 1) and 4, 5 (local 2); one slot left of topn 4; blocks 2 and 3 tie at 3.0,
  // the lower index wins.
  const std::vector<float> imp = {5, 1, 3, 3, 2, 0};
  CHECK(nsa::forced_count(5, 1, 2) == 3);
  CHECK(taken_by_rule(imp, 5, 1, 2, 4) == std::vector<int>{0, 2, 4, 5});
  CHECK(taken_by_rule(imp, 5, 1, 2, 3) == std::vector<int>{0, 4, 5});        // no slot left
  CHECK(taken_by_rule(imp, 5, 1, 2, 2) == std::vector<int>{0, 4, 5});        // forced blocks even past topn
  CHECK(taken_by_rule(imp, 5, 0, 0, 2) == std::vector<int>{0, 2});           // nothing forced
  CHECK(taken_by_rule(imp, 1, 1, 2, 4) == std::vector<int>{0, 1});           // init and local overlap
  CHECK(nsa::forced_count(1, 1, 2) == 2);
  CHECK(nsa::forced_count(9, 3, 0) == 3);
  CHECK(nsa::forced_count(9, 0, 4) == 4);
  CHECK(nsa::forced_count(2, 5, 5) == 3);
}

TEST_CASE("NSA block selection: random rows with ties against a stable sort") {
  Rng r(2112);
  for (int trial = 0; trial < 3000; ++trial) {
    const int64_t c = int64_t(r.uniform() * 70), init = int64_t(r.uniform() * 3), local = int64_t(r.uniform() * 4);
    const int64_t topn = 1 + int64_t(r.uniform() * 20);
    std::vector<float> imp(size_t(c + 1));
    for (float& x : imp) x = float(int(r.uniform() * 8)) * 0.25f;  // few distinct values: many ties
    CAPTURE(trial);
    int64_t forced = 0;
    for (int64_t j = 0; j <= c; ++j) forced += nsa::forced_block(j, c, init, local);
    CHECK(nsa::forced_count(c, init, local) == forced);
    CHECK(taken_by_rule(imp, c, init, local, topn) == taken_by_sort(imp, c, init, local, topn));
  }
}
