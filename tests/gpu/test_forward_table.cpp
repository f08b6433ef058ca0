// Timing driver for the forward kernel (a report, never an assertion on time): runs only when
// BSATTN_FWD_TABLE names an output folder, e.g.
//   BSATTN_FWD_TABLE=$OUT test_gpu -tc="forward table*"
// bf16, B=1, H=16, D=128, block 128, non-causal, S in BSATTN_FWD_SEQS (default 8192,32768), densities
// 0.1..1.0: each sparse head keeps round(d*Mk) random key blocks per row (so computed pairs are exact);
// "dense" is our kernel on dense heads (no CSR). FLOPs = 4*D*computed pairs (DESIGN.md). Timing: CUDA
// events around one launch, L2 flushed (a 256 MiB memset) before each, 3 warm-ups, median of N reps.
// Also: mask-build time vs attention time at S = BSATTN_MASKBUILD_S (default 131072).
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/attention_runner.h"
#include "lib/build_info.h"
#include "kernels/mask_build.h"
#include "lib/atomic_file.h"
#include "lib/error.h"
#include "lib/npy.h"
#include "lib/rng.h"

using namespace bsattn;

namespace {

#define TCHECK(x)                                                                             \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) throw RuntimeFailure(std::string(#x) + ": " + cudaGetErrorString(e_)); \
  } while (0)

// Uniform [-1, 1) bf16 values, 4 per 64-bit draw (fast enough for 10^9 elements).
std::vector<uint16_t> fast_bf16(size_t n, uint64_t seed) {
  std::vector<uint16_t> x(n);
  Rng r(seed);
  for (size_t i = 0; i < n; i += 4) {
    uint64_t b = r.next();
    for (size_t j = 0; j < 4 && i + j < n; ++j) x[i + j] = float_to_bf16(float(int16_t(b >> (16 * j))) / 32768.f);
  }
  return x;
}

struct Timer {
  void* flush = nullptr;
  size_t flush_bytes = size_t(256) << 20;
  cudaEvent_t a, b;
  Timer() {
    TCHECK(cudaMalloc(&flush, flush_bytes));
    TCHECK(cudaEventCreate(&a));
    TCHECK(cudaEventCreate(&b));
  }
  ~Timer() {
    cudaFree(flush);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  // Median and min/max in ms of `reps` launches.
  std::vector<double> time(cuda::AttentionRunner& r, int reps) {
    cudaStream_t s = static_cast<cudaStream_t>(r.stream());
    for (int w = 0; w < 3; ++w) r.launch();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      TCHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, s));
      TCHECK(cudaEventRecord(a, s));
      r.launch();
      TCHECK(cudaEventRecord(b, s));
      TCHECK(cudaEventSynchronize(b));
      float ms = 0;
      TCHECK(cudaEventElapsedTime(&ms, a, b));
      t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return {t[t.size() / 2], t.front(), t.back()};
  }
};

BlockMask density_mask(int64_t S, int64_t H, double d, uint64_t seed, bool dense_heads) {
  BlockMask m(MaskShape{1, H, S, S, 128, 128});
  int64_t M = m.shape.mq();
  int64_t keep = std::max<int64_t>(1, std::llround(d * double(M)));
  Rng r(seed);
  std::vector<int64_t> perm = std::vector<int64_t>(size_t(M));
  for (int64_t h = 0; h < H; ++h) {
    m.heads[h].type = dense_heads ? HeadType::Dense : HeadType::Sparse;
    for (int64_t i = 0; i < M; ++i) {
      uint8_t* row = m.head_bits(0, h) + i * M;
      if (dense_heads) {
        std::fill(row, row + M, uint8_t(1));
        continue;
      }
      for (int64_t j = 0; j < M; ++j) perm[j] = j;
      for (int64_t j = 0; j < keep; ++j) std::swap(perm[j], perm[j + int64_t(r.below(uint64_t(M - j)))]);
      for (int64_t j = 0; j < keep; ++j) row[perm[j]] = 1;
    }
  }
  return m;
}

int64_t kept_blocks(const BlockMask& m) {
  int64_t n = 0;
  for (uint8_t b : m.bits) n += b;
  return n;
}

std::vector<int64_t> parse_list(const char* s, std::vector<int64_t> def) {
  if (!s) return def;
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) v.push_back(std::stoll(x));
  return v;
}

// The timed problem: bf16, B=1, S x S, H heads of D, seeded uniform inputs kept alive in `data`.
struct TimedProblem {
  AttentionProblem p;
  std::vector<uint16_t> q, k, v;
  AttentionInputs in() const { return {q.data(), k.data(), v.data(), nullptr}; }
};
TimedProblem timed_problem(int64_t S, int64_t H, int64_t D, uint64_t seed) {
  TimedProblem t;
  t.p.q_len = t.p.kv_len = S;
  t.p.heads_q = t.p.heads_kv = H;
  t.p.head_dim = D;
  t.p.dtype = ElemType::BF16;
  size_t n = size_t(S * H * D);
  t.q = fast_bf16(n, seed), t.k = fast_bf16(n, seed + 1), t.v = fast_bf16(n, seed + 2);
  return t;
}

std::string context_header(nlohmann::json& ctx) {
  auto d = cuda::device_info();
  const char* env_commit = std::getenv("BSATTN_COMMIT");  // the GPU host's tree has no .git
  std::string commit = env_commit ? env_commit : bsattn::build_commit();
  ctx = {{"gpu", d.name},         {"sm_count", d.sm_count},   {"sm_clock_mhz", d.sm_clock_mhz},
         {"driver", d.driver_version}, {"runtime", d.runtime_version}, {"commit", commit},
         {"l2_bytes", d.l2_bytes}};
  const char* cmd = std::getenv("BSATTN_COMMAND");
  if (cmd) ctx["command"] = cmd;
  std::ostringstream o;
  o << "GPU: " << d.name << " (" << d.sm_count << " SMs, CUDA driver " << d.driver_version << ", runtime "
    << d.runtime_version << "), commit " << commit << "\n";
  if (cmd) o << "Command: `" << cmd << "`\n";
  return o.str();
}

}  // namespace

TEST_CASE("forward table (report; runs when BSATTN_FWD_TABLE is set)") {
  const char* dir = std::getenv("BSATTN_FWD_TABLE");
  if (!dir) return;
  const int64_t H = 16, D = 128;
  auto seqs = parse_list(std::getenv("BSATTN_FWD_SEQS"), {8192, 32768});
  std::vector<std::string> variants = cuda::AttentionRunner::kernel_variants();
  if (const char* v = std::getenv("BSATTN_FWD_VARIANTS")) {
    variants.clear();
    std::stringstream ss(v);
    std::string x;
    while (std::getline(ss, x, ',')) variants.push_back(x);
  }
  nlohmann::json ctx, records = nlohmann::json::array();
  std::string head = context_header(ctx);
  std::ostringstream md;
  md << "# Forward kernel: bf16, B=1, H=16, D=128, block 128x128, non-causal\n\n" << head
     << "\nEffective TFLOP/s = 4*D*computed pairs / median time (L2 flushed before each rep). "
        "Speedup and budget are against our dense kernel (dense heads, no CSR) of the same variant; "
        "budget = time(d) / ((d+0.03) * dense time), target <= 1.\n\n"
     << "| S | variant | density | time ms (min-max) | eff. TFLOP/s | speedup vs dense | budget |\n"
     << "|---|---|---|---|---|---|---|\n";
  Timer timer;
  for (int64_t S : seqs) {
    TimedProblem tp = timed_problem(S, H, D, 1);
    const AttentionProblem& p = tp.p;
    AttentionInputs in = tp.in();
    int reps = S >= 32768 ? 10 : 30;
    for (auto& var : variants) {
      double dense_ms = 0;
      for (int di = 10; di >= 1; --di) {
        double d = di / 10.0;
        bool dense = di == 10;
        BlockMask m = density_mask(S, H, d, uint64_t(S * 100 + di), dense);
        double pairs = double(kept_blocks(m)) * 128 * 128;
        cuda::AttentionRunner r(p, m, in, var);
        auto t = timer.time(r, reps);
        double tflops = 4.0 * D * pairs / (t[0] * 1e-3) / 1e12;
        double dens = pairs / (double(S) * S * H);
        if (dense) dense_ms = t[0];
        double budget = t[0] / ((dens + 0.03) * dense_ms);
        char line[256];
        std::snprintf(line, sizeof line, "| %ld | %s | %.2f%s | %.3f (%.3f-%.3f) | %.1f | %.2f | %.2f |\n", long(S),
                      var.c_str(), dens, dense ? " (dense)" : "", t[0], t[1], t[2], tflops, dense_ms / t[0], budget);
        md << line;
        std::printf("%s", line);
        std::fflush(stdout);
        records.push_back({{"seq", S}, {"variant", var}, {"density", dens}, {"dense_heads", dense},
                           {"median_ms", t[0]}, {"min_ms", t[1]}, {"max_ms", t[2]}, {"reps", reps},
                           {"computed_pairs", pairs}, {"effective_tflops", tflops},
                           {"speedup_vs_dense", dense_ms / t[0]}, {"budget_ratio", budget}});
      }
    }
  }
  nlohmann::json j = {{"schema", "bsattn.forward-table/v1"}, {"context", ctx}, {"records", records}};
  write_text_file(std::string(dir) + "/forward-table.md", md.str());
  write_text_file(std::string(dir) + "/forward-table.json", j.dump(1));
}

TEST_CASE("mask build vs attention (report; runs when BSATTN_FWD_TABLE is set)") {
  const char* dir = std::getenv("BSATTN_FWD_TABLE");
  if (!dir) return;
  int64_t S = parse_list(std::getenv("BSATTN_MASKBUILD_S"), {131072})[0];
  const int64_t H = 16, D = 128;
  TimedProblem tp = timed_problem(S, H, D, 4);
  const AttentionProblem& p = tp.p;
  AttentionInputs in = tp.in();
  cuda::AdaptiveSelectConfig cfg;
  cfg.top_k = 8;
  cfg.mass = 0.5;
  cfg.causal = false;
  cuda::AdaptiveSelectTiming t1, t;
  cuda::gpu_adaptive_mask(p, in, cfg, &t1);  // warm-up (module load, cuBLAS handle)
  BlockMask m = cuda::gpu_adaptive_mask(p, in, cfg, &t);
  double pairs = double(kept_blocks(m)) * 128 * 128;
  Timer timer;
  cuda::AttentionRunner r(p, m, in);
  auto ta = timer.time(r, 5);
  nlohmann::json ctx;
  std::string head = context_header(ctx);
  double dens = pairs / (double(S) * S * H);
  std::ostringstream md;
  char line[512];
  std::snprintf(line, sizeof line,
                "| %ld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.4f | %.3f | %.3f |\n", long(S), t.pool_ms,
                t.score_ms, t.select_ms, t.csr_ms, t.total_ms, ta[0], dens, t.total_ms / ta[0],
                4.0 * D * pairs / (ta[0] * 1e-3) / 1e12);
  md << "# Adaptive mask build on the GPU vs the attention it feeds\n\n" << head
     << "\nbf16, B=1, H=16, D=128, block 128, non-causal, top_k 8 + cumulative mass 0.5 (random inputs: pooled scores are nearly flat, so the density is high), pooling levels 1/2/4/8. "
        "Build = pool + pooled scores (cuBLAS SGEMM) + per-row selection + row CSR, CUDA events, inputs "
        "already on the GPU (upload excluded). Attention = median of 5 launches with the selected mask.\n\n"
     << "| S | pool ms | score ms | select ms | csr ms | build ms | attention ms | density | build/attention | attn TFLOP/s |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n"
     << line;
  std::printf("%s", line);
  nlohmann::json j = {{"schema", "bsattn.mask-build/v1"},
                      {"context", ctx},
                      {"seq", S},
                      {"pool_ms", t.pool_ms},
                      {"score_ms", t.score_ms},
                      {"select_ms", t.select_ms},
                      {"csr_ms", t.csr_ms},
                      {"build_ms", t.total_ms},
                      {"attention_ms", ta[0]},
                      {"density", dens},
                      {"ratio", t.total_ms / ta[0]}};
  write_text_file(std::string(dir) + "/mask-build.md", md.str());
  write_text_file(std::string(dir) + "/mask-build.json", j.dump(1));
}
