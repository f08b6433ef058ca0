#include "lib/nsa/nsa_gpu.h"

namespace bsattn {

namespace {
NsaGpu* registered = nullptr;
}

void register_nsa_gpu(NsaGpu* g) { registered = g; }
NsaGpu* nsa_gpu() { return registered; }

}  // namespace bsattn
