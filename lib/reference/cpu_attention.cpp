// Placeholder until the CPU reference backend lands (issue: CPU reference attention).
#include "lib/attention.h"
#include "lib/error.h"

namespace bsattn {
AttentionResult cpu_attention_forward(const AttentionProblem&, const BlockMask&, const AttentionInputs&) {
  throw RuntimeFailure("the CPU attention backend is not built yet in this version");
}
}  // namespace bsattn
