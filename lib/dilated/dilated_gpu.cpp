#include "lib/dilated/dilated_gpu.h"

namespace bsattn::dilated {

namespace {
DilatedGpu* registered = nullptr;
}

void register_dilated_gpu(DilatedGpu* g) { registered = g; }
DilatedGpu* dilated_gpu() { return registered; }

}  // namespace bsattn::dilated
