// The benchmark driver: for every configuration of a sweep plan it builds the mask (timed; on the GPU
// backend also the GPU part of the build, which the mask-build share then reports), draws
// seeded random inputs, lets the backend prepare the problem once, times it through the harness
// (lib/bench/stats.h), times the dense baseline of the same shape once, and writes one record with
// the accounting of lib/bench/accounting.h. Backends: the CPU reference (here) and CUDA
// (kernels/bench_backend.cpp, reached through the GPU backend registry of lib/backend.h).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "lib/progress.h"

#include <nlohmann/json.hpp>

#include "lib/attention.h"
#include "lib/bench/results.h"
#include "lib/bench/stats.h"
#include "lib/bench/sweep.h"

namespace bsattn::bench {

// The mask build a backend does itself for a prepared problem, timed by the same loop as the attention.
struct MaskBuildTiming {
  std::string kind;   // the record's mask_build_kind, e.g. "gpu_row_csr"; "none": nothing to build
  TimingStats stats;  // median_ms = 0 for "none"
};

// One problem, resident in the backend, ready to be timed many times.
class PreparedCase {
 public:
  virtual ~PreparedCase() = default;
  virtual TimingStats time(const TimingOptions& opt) = 0;
  virtual double sm_clock_mhz() { return 0; }  // measured after timing; 0 when unknown
  // The backend's own mask build for this problem (CUDA: bitmap -> row CSR on the GPU, CUDA events).
  // Null: the backend builds nothing itself, and the record reports the CPU pattern generation time
  // as the mask build (kind "cpu_generate_mask").
  virtual std::unique_ptr<MaskBuildTiming> time_mask_build(const TimingOptions&) { return nullptr; }
  virtual std::string kernel() const { return ""; }  // the kernel variant this case runs ("": the backend's)
};

struct Ceilings {
  bool measured = false;
  double gemm_tflops = 0;  // bf16 GEMM through cuBLAS
  double copy_gbs = 0;     // device-to-device copy, bytes read + written
  nlohmann::json detail;   // sizes, timings
};

class BenchBackend {
 public:
  virtual ~BenchBackend() = default;
  virtual std::string name() const = 0;    // "cpu" | "cuda"
  virtual std::string kernel() const = 0;  // the variant timed ("" for cpu)
  virtual BackendCaps caps() const = 0;
  virtual nlohmann::json device_context() = 0;  // merged into the context block
  virtual Ceilings ceilings(const TimingOptions& opt) = 0;
  // The problem ready to be timed for `pass` (one of caps().passes: the forward, the backward alone
  // on the forward's O and LSE and a seeded dO, or both in sequence). Throws UsageError when the backend
  // cannot run this problem: the configuration is skipped with that message. RuntimeFailure stops the
  // whole run.
  virtual std::unique_ptr<PreparedCase> prepare(const AttentionProblem& p, const BlockMask& mask,
                                                const AttentionInputs& in, Pass pass) = 0;
};

std::unique_ptr<BenchBackend> make_cpu_backend();

struct CudaBenchOptions {
  std::string kernel;    // forward kernel ("" = the default for each configuration's shape on this GPU)
  int max_ctas = 0;      // the persistent Hopper kernel's CTA cap (0 = one per SM)
  bool ceilings = true;  // measure the cuBLAS GEMM and device copy ceilings
  bool deterministic = false;  // backward: dQ by its own pass instead of fp32 atomics
  std::string bwd_kernel;      // backward kernel ("" = the default for each configuration)
};
// The registered GPU backend's bench backend; RuntimeFailure in a build without CUDA ("use --backend
// cpu") or without a GPU. A kernel or max_ctas the kernels refuse skips each configuration with the
// reason, as any configuration they cannot run.
std::unique_ptr<BenchBackend> make_cuda_backend(const CudaBenchOptions& opt);

// Builds the mask of a configuration (the app passes the pattern registry's generate_mask).
using MaskFactory = std::function<BlockMask(const BenchConfig& c, uint64_t seed)>;

struct BenchRunOptions {
  TimingOptions timing;
  uint64_t seed = 0;
  std::string save_masks_dir;  // non-empty: every mask saved as DIR/<name>.npy + CSR (for peers.py)
  std::function<void(const std::string&)> progress;  // one line per configuration (may be empty)
  ProgressMeter* meter = nullptr;                     // counts the configurations done (may be null)
};

// Runs the plan; `context` is the caller's context block (argv, config, ...), completed with the
// backend's device context and ceilings.
BenchDoc run_bench(const SweepPlan& plan, BenchBackend& backend, const MaskFactory& make_mask,
                   const BenchRunOptions& opt, nlohmann::json context);

// Host part of the context block: commit and dirty flag (BSATTN_COMMIT / BSATTN_DIRTY from the
// environment when set, else git in the working folder, else the build's commit), compiler,
// bsattn version, UTC time, host name.
nlohmann::json host_context();

}  // namespace bsattn::bench
