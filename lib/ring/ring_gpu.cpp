#include "lib/ring/ring_gpu.h"

namespace bsattn::ring {

namespace {
RingGpu*& registered() {
  static RingGpu* gpu = nullptr;
  return gpu;
}
}  // namespace

void register_ring_gpu(RingGpu* gpu) { registered() = gpu; }
RingGpu* ring_gpu() { return registered(); }

}  // namespace bsattn::ring
