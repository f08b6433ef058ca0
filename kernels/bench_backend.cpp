#include "kernels/bench_backend.h"

#include <cuda_runtime.h>

#include "kernels/attention_runner.h"
#include "kernels/ceilings.h"
#include "kernels/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/mask_build_device.h"
#include "kernels/timing.h"
#include "lib/error.h"
#include "lib/rng.h"

namespace bsattn::cuda {

namespace {

// One configuration, resident: the runner's inputs and CSR on the GPU, the pass timed on its stream:
// launch() (fwd), launch_backward() on the forward's O and LSE and a seeded dO (bwd), or both (fwd+bwd).
// The mask build is timed the same way: the bitmap -> row CSR kernel the runner ran once when it was
// prepared (launch_row_csr over every row of the mask, on a copy of the bitmap and its own outputs),
// plus the column CSR for the backward passes, or nothing when no head is sparse (dense and streaming
// heads are iterated from their definition).
class CudaCase : public bench::PreparedCase {
 public:
  CudaCase(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in, const AttentionOptions& opt,
           bench::Pass pass)
      : runner_(p, m, in, opt), timer_(runner_.stream(), true), pass_(pass) {
    if (pass != bench::Pass::Fwd) {
      AttentionRunner::check_backward_supported(p, m, opt);
      // dO: seeded uniform values in [-1, 1), as the bench's inputs; O and LSE from one forward pass.
      std::vector<float> dout(size_t(p.total_q() * p.heads_q * p.head_dim));
      Rng rng(0x62776420);
      for (float& x : dout) x = float(rng.uniform() * 2.0 - 1.0);
      runner_.launch();
      runner_.prepare_backward(dout.data(), opt.deterministic);
    }
    for (auto& h : m.heads) any_sparse_ |= h.type == HeadType::Sparse;
    if (!any_sparse_) return;
    rows_ = m.shape.batch * m.shape.heads * m.shape.mq();
    mk_ = int(m.shape.mk());
    mq_ = int(m.shape.mq());
    auto s = static_cast<cudaStream_t>(runner_.stream());
    bits_.upload(m.bits.data(), m.bits.size(), s);
    num_.alloc(size_t(rows_) * 4);
    idx_.alloc(size_t(rows_) * size_t(mk_) * 4);
    if (pass != bench::Pass::Fwd) {
      col_num_.alloc(size_t(m.shape.batch * m.shape.heads * mk_) * 4);
      col_idx_.alloc(size_t(rows_) * size_t(mk_) * 4);
    }
    CUDA_CHECK(cudaStreamSynchronize(s));
  }
  bench::TimingStats time(const bench::TimingOptions& opt) override {
    auto run = [&]() {
      if (pass_ != bench::Pass::Bwd) runner_.launch();
      if (pass_ != bench::Pass::Fwd) runner_.launch_backward();
    };
    auto s = bench::measure([&]() { return timer_.sample_ms(run); }, opt);
    clock_ = timer_.measure_sm_clock_mhz();
    return s;
  }
  double sm_clock_mhz() override { return clock_; }
  std::string kernel() const override {
    if (pass_ == bench::Pass::Fwd) return runner_.kernel_name();
    if (pass_ == bench::Pass::Bwd) return runner_.backward_name();
    return runner_.kernel_name() + "+" + runner_.backward_name();
  }
  std::unique_ptr<bench::MaskBuildTiming> time_mask_build(const bench::TimingOptions& opt) override {
    auto r = std::make_unique<bench::MaskBuildTiming>();
    if (!any_sparse_) {
      r->kind = "none";
      return r;
    }
    auto s = static_cast<cudaStream_t>(runner_.stream());
    const bool columns = pass_ != bench::Pass::Fwd;  // the backward walks the column CSR too
    r->kind = columns ? "gpu_row_and_column_csr" : "gpu_row_csr";
    r->stats = bench::measure(
        [&]() {
          return timer_.sample_ms([&]() {
            launch_row_csr(bits_.get<uint8_t>(), rows_, mk_, num_.get<int32_t>(), idx_.get<int32_t>(), s);
            if (columns)
              launch_column_csr(bits_.get<uint8_t>(), rows_ / mq_, mq_, mk_, col_num_.get<int32_t>(),
                                col_idx_.get<int32_t>(), s);
          });
        },
        opt);
    return r;
  }

 private:
  AttentionRunner runner_;
  GpuTimer timer_;
  bench::Pass pass_;
  double clock_ = 0;
  bool any_sparse_ = false;
  int64_t rows_ = 0;
  int mk_ = 0, mq_ = 1;
  DeviceBuffer bits_, num_, idx_, col_num_, col_idx_;
};

class CudaBackend : public bench::BenchBackend {
 public:
  explicit CudaBackend(const bench::CudaBenchOptions& o) : opt_(o) {
    run_.backend = Backend::Cuda;
    run_.kernel = o.kernel;
    run_.max_ctas = o.max_ctas;
    run_.deterministic = o.deterministic;
    run_.bwd_kernel = o.bwd_kernel;
    // The kernel name and max_ctas are checked with each configuration, by the one support check
    // (AttentionRunner::check_supported): what it refuses is skipped with its message. An empty
    // kernel: each configuration runs the default for its shape on this GPU; the records name the
    // kernel that ran.
  }
  std::string name() const override { return "cuda"; }
  std::string kernel() const override { return opt_.kernel; }
  bench::BackendCaps caps() const override {
    bench::BackendCaps c;
    c.dtypes = {ElemType::BF16, ElemType::F16};
    c.blocks = {64, 128};
    c.passes = {bench::Pass::Fwd, bench::Pass::Bwd, bench::Pass::FwdBwd};
    return c;
  }
  nlohmann::json device_context() override {
    auto d = device_info();
    auto v = cuda_versions();
    return {{"device", "cuda"},
            {"gpu", d.name},
            {"sms", d.sm_count},
            {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
            {"sm_clock_mhz_nominal", d.sm_clock_mhz},
            {"mem_clock_mhz_nominal", d.mem_clock_mhz},
            {"l2_bytes", d.l2_bytes},
            {"global_bytes", d.global_bytes},
            {"cuda_toolkit", v.toolkit},
            {"cuda_runtime", v.runtime},
            {"cuda_driver_api", v.driver},
            {"max_ctas", opt_.max_ctas},
            {"deterministic", opt_.deterministic},
            {"bwd_kernel", opt_.bwd_kernel},
            {"kernel_variants", AttentionRunner::kernel_variants()}};
  }
  bench::Ceilings ceilings(const bench::TimingOptions& opt) override {
    bench::Ceilings c;
    if (!opt_.ceilings) return c;
    auto r = measure_ceilings([&](const std::function<double()>& s) { return bench::measure(s, opt).median_ms; });
    c.measured = true;
    c.gemm_tflops = r.gemm_tflops;
    c.copy_gbs = r.copy_gbs;
    c.detail = {{"gemm_n", r.gemm_n},
                {"gemm_median_ms", r.gemm_median_ms},
                {"copy_bytes", r.copy_bytes},
                {"copy_median_ms", r.copy_median_ms}};
    return c;
  }
  std::unique_ptr<bench::PreparedCase> prepare(const AttentionProblem& p, const BlockMask& m, const AttentionInputs& in,
                                               bench::Pass pass) override {
    return std::make_unique<CudaCase>(p, m, in, run_, pass);
  }

 private:
  bench::CudaBenchOptions opt_;
  AttentionOptions run_;
};

}  // namespace

std::unique_ptr<bench::BenchBackend> make_bench_backend(const bench::CudaBenchOptions& opt) {
  if (!gpu_present()) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
  return std::make_unique<CudaBackend>(opt);
}

}  // namespace bsattn::cuda
