// The forward kernel family's host entry (kernels/attention_fwd.cuh holds the kernel and its log).
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/fwd_params.h"
#include "lib/attention.h"

namespace bsattn::cuda {

std::vector<std::string> fwd_variants();  // first = default
// UsageError when the kernel cannot run this problem (head_dim, block sizes, variant).
void check_fwd_supported(const FwdParams& p, const std::string& variant);
void launch_attention_fwd(const FwdParams& p, ElemType dtype, const std::string& variant, cudaStream_t stream);

// Per-dtype instantiations (attention_fwd_bf16.cu, attention_fwd_f16.cu).
void launch_attention_fwd_bf16(const FwdParams& p, const std::string& variant, cudaStream_t stream);
void launch_attention_fwd_f16(const FwdParams& p, const std::string& variant, cudaStream_t stream);

}  // namespace bsattn::cuda
