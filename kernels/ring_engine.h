// The ring's GPU pieces (lib/ring/ring_gpu.h), plain C++ types only so that kernels/gpu_backend.cpp
// registers them without CUDA headers: the CUDA engine (ring_engine.cu) and the NCCL transport
// (nccl_transport.cpp, built against nccl.h when CMake finds it; libnccl is loaded with dlopen on first use).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lib/ring/rank_engine.h"
#include "lib/ring/transport.h"

namespace bsattn::cuda {

std::unique_ptr<ring::RankEngine> make_ring_engine(int device, const ring::EngineSizes& sizes, const AttentionOptions& opt);
int ring_device_count();

// Whether NCCL can be used: built with nccl.h and libnccl loads; else `why` says which is missing.
bool nccl_usable(std::string* why);
// One communicator per GPU 0..ranks-1 (ncclCommInitAll) and a transport per rank on its compute stream.
std::vector<std::unique_ptr<ring::Transport>> make_nccl_transports(int ranks, const std::vector<void*>& compute_streams);

}  // namespace bsattn::cuda
