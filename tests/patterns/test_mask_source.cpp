// The MASK argument of run and analyze: a file or a pattern, parsed once and resolved on the inputs.
#include <doctest/doctest.h>

#include <string>

#include "lib/error.h"
#include "lib/mask_io.h"
#include "patterns/mask_source.h"

using namespace bsattn;

namespace {

// Self-attention inputs: batch 2, 3 query heads over 1 KV head, head dim 16.
Qkv inputs(int64_t seq) {
  QkvSource s;
  s.synthetic = "decay";
  s.sizes = {2, seq, 3, 1, 16};
  s.seed = 11;
  return load_qkv(s, false);
}

}  // namespace

TEST_CASE("a pattern spec is parsed where MASK is read and generated for the inputs' sizes") {
  MaskSource src = parse_mask_source("local:window=1", {32, 64}, true, 5);
  CHECK(src.file.empty());
  REQUIRE(src.request.pattern.def);
  CHECK(src.request.pattern.def->name == "local");
  CHECK(src.request.pattern.params.get_int("window") == 1);
  CHECK(src.request.shape.block_q == 32);
  CHECK(src.request.shape.block_kv == 64);

  Qkv in = inputs(300);
  BlockMask m = resolve_mask(src, in);
  // Heads and lengths from Q/K; batch 1 broadcasts a pattern that does not depend on the batch.
  CHECK(m.shape == MaskShape{1, 3, 300, 300, 32, 64});
  CHECK(m.causal);
  CHECK(m.spec["seed"] == 5);
  CHECK(m.spec["pattern"] == src.request.pattern.spec());
}

TEST_CASE("adaptive patterns get the inputs' Q/K and one mask per batch entry") {
  Qkv in = inputs(256);
  MaskSource src = parse_mask_source("topk:k=2", {64, 64}, false, 1);
  BlockMask m = resolve_mask(src, in);
  CHECK(m.shape.batch == 2);
  CHECK(m.shape.heads == 3);

  PatternInputs pi = pattern_inputs(in);
  CHECK(pi.q == in.q.data.data());
  CHECK(pi.k == in.k.data.data());
  CHECK(pi.heads_q == 3);
  CHECK(pi.heads_kv == 1);
  CHECK(pi.head_dim == 16);
  MaskRequest sized = request_for_inputs(src.request, in, &pi);
  CHECK(sized.shape == MaskShape{2, 3, 256, 256, 64, 64});
  CHECK(sized.inputs == &pi);
}

TEST_CASE("an existing file is loaded with the block sizes as hints and checked against the inputs") {
  MaskShape shape{1, 3, 256, 256, 64, 64};
  BlockMask saved = generate_mask(shape, false, 3, "random:density=0.5");
  save_mask("mask_source.npy", saved);

  MaskSource src = parse_mask_source("mask_source.npy", {64, 64}, false, 0);
  CHECK(src.file == "mask_source.npy");
  CHECK_FALSE(src.request.pattern.def);
  BlockMask m = resolve_mask(src, inputs(256));
  CHECK(m.shape == shape);
  CHECK(m.bits == saved.bits);
  // The same file on longer inputs does not fit.
  CHECK_THROWS_AS(resolve_mask(src, inputs(512)), UsageError);
}

TEST_CASE("bad MASK arguments are usage errors naming MASK") {
  CHECK_THROWS_WITH_AS(parse_mask_source("", {128, 128}, false, 0), doctest::Contains("MASK missing"), UsageError);
  CHECK_THROWS_WITH_AS(parse_mask_source("no-such-pattern", {128, 128}, false, 0), doctest::Contains("unknown pattern"),
                       UsageError);
  CHECK_THROWS_WITH_AS(parse_mask_source("local:window=-1", {128, 128}, false, 0), doctest::Contains("'window'"),
                       UsageError);
}
