// GPU dense reference: cuBLAS for Q K^T and P V with a masking softmax kernel between, S x S in memory
// per (batch, head), so only for moderate sizes. It reads the mask's bitmap for every head (never the
// head types or the CSR), so it checks the forward kernel's block iteration independently.
#pragma once
#include "lib/attention.h"

namespace bsattn::cuda {

// Same contract as attention_forward (bf16/f16 inputs); P is rounded to the input dtype before P V,
// as the fused kernel does. silu_bias is not supported (UsageError).
AttentionResult gpu_dense_reference(const AttentionProblem& p, const BlockMask& mask, const AttentionInputs& in);

}  // namespace bsattn::cuda
