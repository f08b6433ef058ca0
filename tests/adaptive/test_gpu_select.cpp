// The energy selector's GPU configuration (gen-mask --backend cuda, bench --synthetic on a GPU) and
// bench's masks from synthetic Q/K (issue 23, case 11); the GPU selection itself is tested in
// tests/gpu/test_adaptive_level.cpp.
#include <doctest/doctest.h>

#include "lib/error.h"
#include "lib/tensor/qkv_source.h"
#include "patterns/adaptive/gpu_select.h"
#include "patterns/mask_source.h"

using namespace bsattn;

namespace {
MaskRequest energy(const std::string& spec) {
  MaskRequest req;
  req.shape = MaskShape{1, 2, 1024, 1024, 64, 64};
  req.pattern = parse_pattern(spec, "--pattern");
  return req;
}
}  // namespace

TEST_CASE("gpu_energy_config: energy's parameters become the GPU selection's, at the pooling level asked") {
  GpuAdaptiveConfig c = adaptive::gpu_energy_config(energy("energy:tau=0.7,pool=4,min_blocks=6"));
  CHECK(c.level == 4);
  CHECK(c.levels == std::vector<int>{4});
  CHECK(c.mass == doctest::Approx(0.7));
  CHECK(c.top_k == 2);  // ceil(6 blocks / 4 per unit)
  CHECK_FALSE(c.keep_diagonal);
  CHECK(c.block_q == 64);
  CHECK(adaptive::gpu_energy_config(energy("energy:min_blocks=0")).top_k == 1);
  CHECK_THROWS_WITH_AS(adaptive::gpu_energy_config(energy("energy:max_blocks=3")), doctest::Contains("max_blocks"),
                       UsageError);
  CHECK_THROWS_WITH_AS(adaptive::gpu_energy_config(energy("topk")), doctest::Contains("allowed: energy"), UsageError);
  MaskRequest map = energy("energy");
  map.head_map = parse_head_map("0-1=energy", 2);
  CHECK_THROWS_WITH_AS(adaptive::gpu_energy_config(map), doctest::Contains("--head-map"), UsageError);
}

TEST_CASE("bench_mask: adaptive patterns select from the synthetic Q/K of the configuration; others as before") {
  bench::BenchConfig c;
  c.shape.batch = 1;
  c.shape.q_len = c.shape.kv_len = 512;
  c.shape.heads_q = c.shape.heads_kv = 2;
  c.shape.head_dim = 16;
  c.block = 32;
  c.pattern = c.spec = "energy:tau=0.6";
  BlockMask m = adaptive::bench_mask(c, 11, "decay", false);
  // the same as generating with those inputs directly
  QkvSource src;
  src.synthetic = "decay";
  src.sizes = SyntheticSizes{1, 512, 2, 2, 16};
  src.seed = 11;
  Qkv in = load_qkv(src, false);
  PatternInputs pi = pattern_inputs(in);
  MaskRequest req;
  req.shape = c.mask_shape();
  req.seed = 11;
  req.pattern = parse_pattern(c.spec, "--pattern");
  BlockMask want = generate_mask(request_for_inputs(req, in, &pi));
  CHECK(m.bits == want.bits);
  CHECK_FALSE(m.spec.contains("mask_build"));  // timed as bench always does on the CPU
  // without --synthetic an adaptive pattern still needs inputs; a plain pattern ignores --synthetic
  CHECK_THROWS_AS(adaptive::bench_mask(c, 11, "", false), UsageError);
  c.pattern = c.spec = "local:window=1";
  CHECK(adaptive::bench_mask(c, 11, "decay", false).bits == generate_mask(c.mask_shape(), false, 11, c.spec).bits);
}
