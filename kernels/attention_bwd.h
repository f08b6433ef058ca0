// The backward kernel family's host entry. The family lives in kernels/bwd/: column-form block iteration
// (block.cuh, beside the forward's kernels/fwd/block.cuh, whose row form the deterministic dQ pass
// walks), the sm80 kernels (mainloop_sm80.cuh: preprocess, dK/dV loop, dQ pass, dQ postprocess), the
// choice of configuration (config.h: select_bwd_config) and the launch sequence (launch.cuh; one
// instantiation file per dtype x head dim). Masking, the tile steps and the PTX wrappers are the
// forward's (kernels/fwd/mask.cuh, mainloop_sm80.cuh, ptx.cuh).
#pragma once
#include <cuda_runtime.h>

#include "kernels/bwd/config.h"
#include "kernels/bwd_params.h"
#include "lib/attention.h"

namespace bsattn::cuda {

// UsageError when the backward cannot run p: select_bwd_config with the current GPU's compute
// capability when there is a GPU, without an architecture check otherwise.
// `kernel`: "" (the default), "sm90" or "sm80" (select_bwd_config).
void check_bwd_supported(const BwdParams& p, const std::string& kernel = "");
// The configuration that runs p on the current GPU.
BwdConfig resolve_bwd_config(const BwdParams& p, const std::string& kernel = "");
// Enqueues one backward pass on `stream`: p's O, LSE and dO are on the device, delta, dq_accum (atomic
// mode) and the outputs allocated; every element of dQ, dK, dV is written.
void launch_attention_bwd(const BwdParams& p, ElemType dtype, cudaStream_t stream, const std::string& kernel = "");

namespace bwd {
// One per dtype x head dim (kernels/bwd/bwd_<dtype>_d<D>.cu).
void launch_bf16_d64(const BwdParams& p, const BwdConfig& c, cudaStream_t s);
void launch_bf16_d128(const BwdParams& p, const BwdConfig& c, cudaStream_t s);
void launch_f16_d64(const BwdParams& p, const BwdConfig& c, cudaStream_t s);
void launch_f16_d128(const BwdParams& p, const BwdConfig& c, cudaStream_t s);
}  // namespace bwd

}  // namespace bsattn::cuda
