// Block sizes as every subcommand takes them: --block for both sides, --block-q / --block-kv for one
// side each (overriding --block). The command line keeps the text as typed; this is the one place
// that turns it into sizes and checks their range.
#pragma once
#include <cstdint>
#include <string>

namespace bsattn {

struct BlockOptions {
  std::string block, block_q, block_kv;  // as typed; "" when not given
};

struct BlockSizes {
  int64_t q = 0, kv = 0;
};

// The largest block size any layer accepts (the mask model's limit, not a kernel's).
constexpr int64_t kMaxBlockSize = int64_t(1) << 30;
// The block size of masks when none is given: the forward kernels' tile on both sides.
constexpr int64_t kDefaultBlockSize = 128;

// --block-q (else --block, else `fallback`) and --block-kv (likewise). UsageError naming the option
// when a value is not an integer in 1..kMaxBlockSize. A fallback of 0 leaves an unset side 0, for
// callers where the mask file decides (.json masks carry their block sizes).
BlockSizes resolve_block_sizes(const BlockOptions& o, int64_t fallback);

}  // namespace bsattn
