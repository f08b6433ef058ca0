// The GPU backend registry (lib/backend.h) and the attention entry point's order of checks: a fake
// backend stands in for kernels/ so that this runs on any machine and in any build.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/backend.h"
#include "lib/bench/runner.h"
#include "lib/error.h"

using namespace bsattn;

namespace {

// Records what the library asks; check_supported refuses head_dim 96, as the kernels do.
class FakeGpu : public GpuBackend {
 public:
  bool present = true;
  mutable int checks = 0;
  int forwards = 0, backwards = 0;
  AttentionOptions last;

  bool available() const override { return present; }
  GpuDeviceInfo device_info() const override { return {}; }
  std::vector<std::string> kernels() const override { return {"k1", "k2"}; }
  void check_supported(const AttentionProblem& p, const BlockMask&, const AttentionOptions&) const override {
    ++checks;
    if (p.head_dim == 96) throw UsageError("head_dim 96 (allowed: 64, 128)");
  }
  AttentionResult forward(const AttentionProblem& p, const BlockMask&, const AttentionInputs&,
                          const AttentionOptions& opt) override {
    ++forwards;
    last = opt;
    AttentionResult r;
    r.out.assign(size_t(p.total_q() * p.heads_q * p.head_dim), 1.f);
    return r;
  }
  AttentionGradients backward(const AttentionProblem& p, const BlockMask&, const AttentionInputs&,
                              const AttentionResult&, const float*, const AttentionOptions& opt) override {
    ++backwards;
    last = opt;
    AttentionGradients g;
    g.dq.assign(size_t(p.total_q() * p.heads_q * p.head_dim), 1.f);
    g.dk.assign(size_t(p.total_k() * p.heads_kv * p.head_dim), 1.f);
    g.dv = g.dk;
    return g;
  }
  size_t workspace = 0;
  int device_forwards = 0, device_backwards = 0;
  size_t device_workspace_bytes(const DeviceAttention&, bool) const override { return workspace; }
  void forward_device(const DeviceAttention&) override { ++device_forwards; }
  void backward_device(const DeviceAttention&) override { ++device_backwards; }
  std::unique_ptr<bench::BenchBackend> make_bench_backend(const bench::CudaBenchOptions&) override {
    return bench::make_cpu_backend();
  }
  GpuQuality evaluate_mask(const AttentionProblem&, const BlockMask&, const AttentionInputs&,
                           const GpuQualityOptions& opt) override {
    GpuQuality q;
    q.kernel = opt.kernel;
    return q;
  }
  int adaptive_calls = 0;
  GpuAdaptiveConfig last_adaptive;
  BlockMask adaptive_mask(const AttentionProblem& p, const AttentionInputs&, const GpuAdaptiveConfig& c,
                          GpuAdaptiveTiming*) override {
    ++adaptive_calls;
    last_adaptive = c;
    return BlockMask(MaskShape{p.batch, p.heads_q, p.q_len, p.kv_len, c.block_q, c.block_kv});
  }
};

// Installs a backend (or none) for one test and puts the build's own back afterwards.
struct Installed {
  GpuBackend* saved = gpu_backend();
  explicit Installed(GpuBackend* b) { register_gpu_backend(b); }
  ~Installed() { register_gpu_backend(saved); }
};

struct Problem {
  AttentionProblem p;
  BlockMask m;
  std::vector<uint16_t> x;
  AttentionInputs in;
  explicit Problem(int64_t head_dim) : m(MaskShape{1, 2, 128, 128, 64, 64}) {
    p.q_len = p.kv_len = 128;
    p.heads_q = p.heads_kv = 2;
    p.head_dim = head_dim;
    x.assign(size_t(128 * 2 * head_dim), 0x3f80);
    in = {x.data(), x.data(), x.data(), nullptr};
  }
};

AttentionOptions cuda(const std::string& kernel = "", int max_ctas = 0) {
  return AttentionOptions{Backend::Cuda, kernel, max_ctas};
}

}  // namespace

TEST_CASE("attention_forward on cuda: validated and checked once, before the GPU is looked for") {
  FakeGpu gpu;
  Installed scope(&gpu);
  REQUIRE(gpu_backend() == &gpu);

  Problem ok(64);
  AttentionResult r = attention_forward(ok.p, ok.m, ok.in, cuda("k2", 8));
  CHECK(gpu.checks == 1);
  CHECK(gpu.forwards == 1);
  CHECK(gpu.last.kernel == "k2");
  CHECK(gpu.last.max_ctas == 8);
  CHECK(r.out.size() == size_t(128 * 2 * 64));

  // A problem that does not fit its mask never reaches the backend.
  Problem bad(64);
  bad.p.heads_q = 4;
  CHECK_THROWS_AS(attention_forward(bad.p, bad.m, bad.in, cuda()), UsageError);
  CHECK(gpu.checks == 1);

  // What the kernels cannot run is a usage error even without a GPU; no GPU is a runtime failure.
  gpu.present = false;
  Problem d96(96);
  CHECK_THROWS_AS(attention_forward(d96.p, d96.m, d96.in, cuda()), UsageError);
  CHECK_THROWS_WITH_AS(attention_forward(ok.p, ok.m, ok.in, cuda()), doctest::Contains("no CUDA GPU"), RuntimeFailure);
  CHECK(gpu.forwards == 1);
  CHECK_FALSE(gpu_available());
  gpu.present = true;
  CHECK(gpu_available());

  CHECK(gpu_evaluate_mask(ok.p, ok.m, ok.in, GpuQualityOptions{"k1"}).kernel == "k1");
}

TEST_CASE("attention_backward on cuda: checked once (sizes of the forward result, dO finite), then the backend") {
  FakeGpu gpu;
  Installed scope(&gpu);
  Problem ok(64);
  AttentionResult fwd;
  fwd.out.assign(size_t(128 * 2 * 64), 0.5f);
  fwd.lse.assign(size_t(2 * 128), 1.f);
  std::vector<float> dout(size_t(128 * 2 * 64), 0.25f);
  AttentionOptions opt = cuda("k1");
  opt.deterministic = true;
  AttentionGradients g = attention_backward(ok.p, ok.m, ok.in, fwd, dout.data(), opt);
  CHECK(gpu.checks == 1);
  CHECK(gpu.backwards == 1);
  CHECK(gpu.last.deterministic);
  CHECK(g.dq.size() == size_t(128 * 2 * 64));
  // A forward result of other sizes, or a non-finite dO, never reaches the backend.
  AttentionResult short_fwd = fwd;
  short_fwd.lse.pop_back();
  CHECK_THROWS_WITH_AS(attention_backward(ok.p, ok.m, ok.in, short_fwd, dout.data(), opt), doctest::Contains("LSE"),
                       UsageError);
  dout[7] = std::nanf("");
  CHECK_THROWS_WITH_AS(attention_backward(ok.p, ok.m, ok.in, fwd, dout.data(), opt),
                       doctest::Contains("dO has NaN at [row=0, h=0, d=7]"), UsageError);
  CHECK(gpu.backwards == 1);
}

TEST_CASE("attention_forward on cpu: a kernel name is a usage error") {
  Problem ok(64);
  CHECK_THROWS_WITH_AS(attention_forward(ok.p, ok.m, ok.in, AttentionOptions{Backend::Cpu, "k1", 0}),
                       doctest::Contains("--backend cuda"), UsageError);
}

TEST_CASE("without a registered GPU backend: 'built without CUDA' (runtime failure)") {
  Installed scope(nullptr);
  CHECK(gpu_backend() == nullptr);
  CHECK_FALSE(gpu_available());
  Problem ok(64);
  const char* msg = "this bsattn was built without CUDA; use --backend cpu";
  CHECK_THROWS_WITH_AS(attention_forward(ok.p, ok.m, ok.in, cuda()), msg, RuntimeFailure);
  Problem bad(64);  // usage errors still come first
  bad.p.heads_q = 4;
  CHECK_THROWS_WITH_AS(attention_forward(bad.p, bad.m, bad.in, cuda()), doctest::Contains("mask"), UsageError);
  CHECK_THROWS_WITH_AS(bench::make_cuda_backend({}), msg, RuntimeFailure);
  CHECK_THROWS_WITH_AS(gpu_evaluate_mask(ok.p, ok.m, ok.in), msg, RuntimeFailure);
  CHECK_THROWS_WITH_AS(require_gpu_backend(), msg, RuntimeFailure);
}

TEST_CASE("lib/bench's make_cuda_backend is the registered backend's") {
  FakeGpu gpu;
  Installed scope(&gpu);
  auto b = bench::make_cuda_backend({"k1", 0, false});
  REQUIRE(b);
  CHECK(b->name() == "cpu");  // the fake hands out the CPU backend
}

TEST_CASE("gpu_adaptive_mask: arguments checked before the backend; the level reaches it; no GPU is a runtime failure") {
  FakeGpu gpu;
  Installed installed(&gpu);
  AttentionProblem p;
  p.q_len = p.kv_len = 1024;
  p.head_dim = 64;
  p.dtype = ElemType::BF16;
  GpuAdaptiveConfig c;
  c.level = 3;  // not 1, 2, 4 or 8
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, c), UsageError);
  c.level = 4;
  c.mass = 0;
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, c), UsageError);
  c.mass = 0.9;
  p.dtype = ElemType::F32;
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, c), UsageError);
  p.dtype = ElemType::BF16;
  CHECK(gpu.adaptive_calls == 0);
  gpu_adaptive_mask(p, AttentionInputs{}, c);
  CHECK(gpu.adaptive_calls == 1);
  CHECK(gpu.last_adaptive.level == 4);
  gpu.present = false;
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, c), RuntimeFailure);
  Installed none(nullptr);
  CHECK_THROWS_AS(gpu_adaptive_mask(p, AttentionInputs{}, c), RuntimeFailure);
}

TEST_CASE("device passes (the C ABI's): pointers, mask forms, varlen rows and workspace checked before the backend") {
  FakeGpu gpu;
  Installed scope(&gpu);
  Problem ok(64);
  DeviceAttention a;
  a.problem = ok.p;
  a.mask_shape = ok.m.shape;
  uint16_t buf[4] = {};
  float lse[4] = {}, grad[4] = {};
  a.q = a.k = a.v = a.dout = buf;
  a.o = buf;
  a.lse = lse;
  a.dq = a.dk = a.dv = grad;
  a.bits = ok.m.bits.data();
  device_attention_forward(a);
  device_attention_backward(a);
  CHECK(gpu.device_forwards == 1);
  CHECK(gpu.device_backwards == 1);
  CHECK(gpu.checks == 2);

  auto refused = [&](DeviceAttention bad, bool backward, const char* what) {
    CHECK_THROWS_WITH_AS(backward ? device_attention_backward(bad) : device_attention_forward(bad),
                         doctest::Contains(what), UsageError);
  };
  DeviceAttention b = a;
  b.q = nullptr;
  refused(b, false, "q is a null pointer");
  b = a;
  b.dk = nullptr;
  refused(b, true, "dk is a null pointer");
  device_attention_forward(b);  // the forward does not read dK
  b = a;
  b.bits = nullptr;
  refused(b, false, "the bitmap or the row CSR");
  int32_t num[4] = {}, idx[4] = {};
  b.kv_num_blocks = num;
  refused(b, false, "both kv_num_blocks and kv_indices");
  b.kv_indices = idx;
  device_attention_forward(b);
  refused(b, true, "the column CSR");
  b = a;
  b.cu_q = num;
  refused(b, false, "give both or neither");
  b.cu_k = idx;
  b.total_q = 129;  // batch 1 x q_len 128
  refused(b, false, "total_q=129");
  b = a;
  b.problem.heads_q = 4;
  refused(b, false, "mask has 2 heads");
  gpu.workspace = 1000;
  refused(a, false, "workspace: 0 bytes given, this pass needs 1000");
  b = a;
  std::vector<char> ws(1000);
  b.workspace = ws.data();
  b.workspace_bytes = ws.size();
  device_attention_forward(b);
  CHECK(device_attention_workspace(a, true) == 1000);
  CHECK(gpu.device_forwards == 4);
  CHECK(gpu.device_backwards == 1);
}
