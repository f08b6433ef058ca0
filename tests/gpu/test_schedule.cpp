// launch_work_schedule (kernels/mask_build_device.h): per (mask batch, head) segment, a permutation of
// the query tiles ordered by descending work, stable, checked against std::stable_sort on the host for
// sparse (CSR row lengths), streaming, dense and causal dense heads, with the output poisoned first.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/device_buffer.h"
#include "kernels/mask_build_device.h"
#include "lib/rng.h"

using namespace bsattn;

TEST_CASE("mask build: launch schedule is a stable sort by descending row work") {
  for (int mq : {1, 7, 64, 300, 1025}) {
    for (bool causal : {false, true}) {
      CAPTURE(mq);
      CAPTURE(causal);
      const int heads = 4, batch = 2;  // types: sparse, streaming, dense, sparse
      const std::vector<uint8_t> type = {1, 2, 0, 1};
      const std::vector<int32_t> sink = {0, 1, 0, 0}, local = {0, 3, 0, 0};
      Rng r(uint64_t(mq) * 31 + causal);
      std::vector<int32_t> num(size_t(batch * heads * mq));
      for (auto& x : num) x = int32_t(r.below(uint64_t(std::min(mq, 20)) + 1));  // many ties
      cuda::DeviceBuffer dnum, dtype, dsink, dlocal, dsched(num.size() * 4);
      dnum.upload(num.data(), num.size() * 4);
      dtype.upload(type.data(), type.size());
      dsink.upload(sink.data(), sink.size() * 4);
      dlocal.upload(local.data(), local.size() * 4);
      CUDA_CHECK(cudaMemset(dsched.get(), 0xFF, dsched.bytes()));
      cuda::launch_work_schedule(dnum.get<int32_t>(), dtype.get<uint8_t>(), dsink.get<int32_t>(), dlocal.get<int32_t>(),
                                 batch * heads, heads, mq, causal, dsched.get<int32_t>(), 0);
      std::vector<int32_t> got(num.size());
      dsched.download(got.data(), dsched.bytes());
      CUDA_CHECK(cudaDeviceSynchronize());
      for (int seg = 0; seg < batch * heads; ++seg) {
        const int h = seg % heads;
        std::vector<int> work(static_cast<size_t>(mq)), want(static_cast<size_t>(mq));
        for (int i = 0; i < mq; ++i)
          work[size_t(i)] = type[size_t(h)] == 1 ? num[size_t(seg * mq + i)]
                            : type[size_t(h)] == 2 ? sink[size_t(h)] + local[size_t(h)]
                            : causal               ? i + 1
                                                   : mq;
        std::iota(want.begin(), want.end(), 0);
        std::stable_sort(want.begin(), want.end(), [&](int a, int b) { return work[size_t(a)] > work[size_t(b)]; });
        std::vector<int> g(got.begin() + seg * mq, got.begin() + (seg + 1) * mq);
        CHECK_MESSAGE(g == want, "segment " << seg << " (type " << int(type[size_t(h)]) << ")");
      }
    }
  }
}
