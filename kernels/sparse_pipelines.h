// The GPU pipelines of computations made of several passes (dilated attention; NSA), which lib/ reaches
// through their registries (lib/dilated/dilated_gpu.h, lib/nsa/nsa_gpu.h). kernels/gpu_backend.cpp
// registers them with the GPU backend.
#pragma once

namespace bsattn {
namespace dilated {
class DilatedGpu;
}
class NsaGpu;
}  // namespace bsattn

namespace bsattn::cuda {

dilated::DilatedGpu& dilated_gpu_instance();
NsaGpu& nsa_gpu_instance();

}  // namespace bsattn::cuda
