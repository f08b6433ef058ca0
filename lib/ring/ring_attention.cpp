#include "lib/ring/ring_attention.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

#include "lib/backend.h"
#include "lib/error.h"
#include "lib/reference/parallel.h"
#include "lib/ring/loopback.h"
#include "lib/ring/rank_engine.h"
#include "lib/ring/ring_gpu.h"
#include "lib/ring/ring_plan.h"

namespace bsattn::ring {

const char* transport_name(TransportKind t) { return t == TransportKind::Nccl ? "nccl" : "loopback"; }

TransportKind parse_transport(const std::string& s) {
  if (s == "loopback") return TransportKind::Loopback;
  if (s == "nccl") return TransportKind::Nccl;
  throw UsageError("--transport " + s + ": allowed: loopback, nccl");
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct RankJob {
  const AttentionProblem* p;
  const RingLayout* L;
  const std::vector<RingStep>* steps;
  Transport* transport;
  RankEngine* engine;
  std::mutex* serialize;  // null: steps run concurrently
  ElemType engine_dtype;
};

AttentionProblem engine_problem(const RankJob& j, int owner) {
  AttentionProblem s = step_problem(*j.p, *j.L, j.transport->rank(), owner);
  s.dtype = j.engine_dtype;
  return s;
}

// One rank's forward ring: at step t the K/V of rank (r - t) mod N are in slot `cur`; the next shard is
// received into the other slot while this one is computed on.
void rank_forward(const RankJob& j, RankReport& rep) {
  Transport& t = *j.transport;
  RankEngine& e = *j.engine;
  const int r = t.rank(), n = t.size();
  int cur = 0;
  for (int step = 0; step < n; ++step) {
    const int owner = (r - step + n) % n, next = (r - step - 1 + 2 * n) % n;
    const bool shift = step + 1 < n;
    auto t0 = Clock::now();
    if (shift)
      t.start_shift(e.slot(cur), e.shard_bytes(j.L->shard_len(owner), false), e.slot(1 - cur),
                    e.shard_bytes(j.L->shard_len(next), false));
    rep.shift_seconds += since(t0);
    const RingStep& st = (*j.steps)[size_t(r * n + owner)];
    if (st.empty) {
      ++rep.steps_skipped;
    } else {
      std::unique_lock<std::mutex> lock;
      if (j.serialize) lock = std::unique_lock<std::mutex>(*j.serialize);
      auto t1 = Clock::now();
      e.forward_step(cur, engine_problem(j, owner), st.mask);
      e.synchronize();
      rep.step_seconds += since(t1);
      ++rep.steps_computed;
      rep.computed_pairs += st.computed_pairs;
    }
    t0 = Clock::now();
    if (shift) t.finish_shift();
    rep.shift_seconds += since(t0);
    cur ^= 1;
  }
}

// One rank's backward ring: the gradients of a step are added to the dK/dV travelling with its K/V before
// they move on, so the shift follows the step; after N shifts slot `cur` holds the rank's own dK/dV.
int rank_backward(const RankJob& j, RankReport& rep) {
  Transport& t = *j.transport;
  RankEngine& e = *j.engine;
  const int r = t.rank(), n = t.size();
  int cur = 0;
  for (int step = 0; step < n; ++step) {
    const int owner = (r - step + n) % n, next = (r - step - 1 + 2 * n) % n;
    const RingStep& st = (*j.steps)[size_t(r * n + owner)];
    if (!st.empty) {
      std::unique_lock<std::mutex> lock;
      if (j.serialize) lock = std::unique_lock<std::mutex>(*j.serialize);
      auto t1 = Clock::now();
      e.backward_step(cur, engine_problem(j, owner), st.mask);
      e.synchronize();
      rep.step_seconds += since(t1);
    }
    auto t0 = Clock::now();
    if (n > 1) {
      t.start_shift(e.slot(cur), e.shard_bytes(j.L->shard_len(owner), true), e.slot(1 - cur),
                    e.shard_bytes(j.L->shard_len(next), true));
      t.finish_shift();
      cur ^= 1;
    }
    rep.shift_seconds += since(t0);
  }
  return cur;
}

}  // namespace

RingResult ring_attention(const AttentionProblem& p, const BlockMask& mask, const float* q, const float* k,
                          const float* v, const float* dout, const RingConfig& cfg) {
  p.validate(mask);
  const RingLayout L = make_ring_layout(cfg.ranks, cfg.layout, p.q_len, mask.shape.block_q, mask.shape.block_kv);
  check_ring_problem(p, mask, L);
  const bool cuda = cfg.attention.backend == Backend::Cuda;
  const bool nccl = cfg.transport == TransportKind::Nccl;
  if (nccl && !cuda)
    throw UsageError("--transport nccl moves GPU memory between GPUs: it needs --backend cuda (the CPU reference "
                     "runs with --transport loopback)");
  if (cuda) {
    if (p.dtype == ElemType::F32)
      throw UsageError("the CUDA backend takes bf16 or f16 inputs (--dtype bf16 or f16), or use --backend cpu");
    if (GpuBackend* g = gpu_backend()) g->check_supported(p, mask, cfg.attention);
    // The backward kernels' limits, before any rank starts (a rank failing mid-ring stalls NCCL peers).
    if (RingGpu* rg = ring_gpu(); rg && dout) rg->check_backward(p, mask, cfg.attention);
  }
  const int n = cfg.ranks;
  const std::vector<RingStep> steps = ring_steps(mask, L);

  // Engines and transports (RuntimeFailure for what the machine lacks), before any rank starts.
  RingGpu* gpu = cuda ? ring_gpu() : nullptr;
  if (nccl) {
    std::string why;
    if (!gpu) throw RuntimeFailure("--transport nccl: this bsattn was built without CUDA (and NCCL); use --transport loopback");
    if (!gpu->nccl_available(&why)) throw RuntimeFailure("--transport nccl: " + why + "; use --transport loopback");
  }
  if (cuda && !gpu) throw RuntimeFailure("this bsattn was built without CUDA; use --backend cpu");
  if (cuda && gpu->device_count() == 0) throw RuntimeFailure("--backend cuda: no CUDA GPU is available here; use --backend cpu");
  if (nccl) {
    if (gpu->device_count() < n)
      throw RuntimeFailure("--transport nccl runs one rank per GPU: --ranks " + std::to_string(n) + " but this machine has " +
                           std::to_string(gpu->device_count()) + " GPU(s); use fewer ranks or --transport loopback");
  }
  std::vector<std::unique_ptr<RankEngine>> engines;
  // Ranks computing at once share the threads; ranks taking turns each get them all.
  const int cpu_threads = cfg.serialize_steps ? resolve_threads(cfg.threads) : std::max(1, resolve_threads(cfg.threads) / n);
  for (int r = 0; r < n; ++r) {
    EngineSizes s;
    s.batch = p.batch, s.heads_q = p.heads_q, s.heads_kv = p.heads_kv, s.head_dim = p.head_dim;
    s.own_rows = L.shard_len(r);
    s.max_rows = L.max_shard_len();
    s.dtype = cuda ? p.dtype : ElemType::F32;
    s.gradients = dout != nullptr;
    engines.push_back(cuda ? gpu->make_engine(nccl ? r : 0, s, cfg.attention) : make_cpu_engine(s, cpu_threads));
  }
  LoopbackHub hub(n);
  std::vector<std::unique_ptr<Transport>> transports;
  if (nccl) {
    std::vector<void*> streams;
    for (auto& e : engines) streams.push_back(e->compute_stream());
    transports = gpu->make_nccl(n, streams);
  } else {
    for (int r = 0; r < n; ++r) {
      RankEngine* e = engines[size_t(r)].get();
      transports.push_back(std::make_unique<LoopbackTransport>(
          hub, r, [e](void* dst, const void* src, size_t bytes) { e->copy(dst, src, bytes); }));
    }
  }

  RingResult res;
  const int64_t B = p.batch, S = p.q_len, Hq = p.heads_q, Hkv = p.heads_kv, D = p.head_dim;
  // NaN until a rank writes its rows: every element has exactly one owner, and a gap would show.
  const float poison = std::numeric_limits<float>::quiet_NaN();
  res.out.assign(size_t(B * S * Hq * D), poison);
  res.lse.assign(size_t(B * Hq * S), poison);
  if (dout) {
    res.dq.assign(res.out.size(), poison);
    res.dk.assign(size_t(B * S * Hkv * D), poison);
    res.dv.assign(res.dk.size(), poison);
  }
  res.ranks.resize(size_t(n));
  std::mutex serialize;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::atomic<int> first_failure{-1};  // the rank that failed first; the others' errors are its consequences

  auto rank_main = [&](int r) {
    try {
      RankEngine& e = *engines[size_t(r)];
      RankReport& rep = res.ranks[size_t(r)];
      rep.rank = r;
      const std::vector<int64_t> tok = L.shard_tokens(r);
      const int64_t rows = int64_t(tok.size());
      rep.shard_tokens = rows;
      {
        const std::vector<float> qs = gather_rows(q, B, S, Hq * D, tok);
        const std::vector<float> ks = gather_rows(k, B, S, Hkv * D, tok), vs = gather_rows(v, B, S, Hkv * D, tok);
        e.load(qs.data(), ks.data(), vs.data());
      }
      for (int o = 0; o < n; ++o)
        if (!steps[size_t(r * n + o)].empty) e.prepare(steps[size_t(r * n + o)].mask);
      RankJob job{&p, &L, &steps, transports[size_t(r)].get(), &e,
                  cfg.serialize_steps && !nccl ? &serialize : nullptr, cuda ? p.dtype : ElemType::F32};
      transports[size_t(r)]->barrier();
      auto started = Clock::now();
      rank_forward(job, rep);
      rep.wall_seconds = since(started);
      std::vector<float> os(size_t(B * rows * Hq * D)), ls(size_t(B * Hq * rows));
      e.read_output(os.data(), ls.data());
      scatter_rows(os.data(), res.out.data(), B, S, Hq * D, tok);
      scatter_rows(ls.data(), res.lse.data(), B * Hq, S, 1, tok);
      if (dout) {
        const std::vector<float> qs = gather_rows(q, B, S, Hq * D, tok);
        const std::vector<float> ks = gather_rows(k, B, S, Hkv * D, tok), vs = gather_rows(v, B, S, Hkv * D, tok);
        e.load(qs.data(), ks.data(), vs.data());
        const std::vector<float> dos = gather_rows(dout, B, S, Hq * D, tok);
        e.begin_backward(dos.data(), os.data(), ls.data());
        transports[size_t(r)]->barrier();
        started = Clock::now();
        const int home = rank_backward(job, rep);
        rep.wall_seconds += since(started);
        std::vector<float> dqs(os.size()), dks(size_t(B * rows * Hkv * D)), dvs(dks.size());
        e.read_gradients(home, dqs.data(), dks.data(), dvs.data());
        scatter_rows(dqs.data(), res.dq.data(), B, S, Hq * D, tok);
        scatter_rows(dks.data(), res.dk.data(), B, S, Hkv * D, tok);
        scatter_rows(dvs.data(), res.dv.data(), B, S, Hkv * D, tok);
      }
      rep.bytes_sent = transports[size_t(r)]->bytes_sent();
      rep.copy_seconds = transports[size_t(r)]->copy_seconds();
      rep.memory_bytes = e.memory_bytes();
      if (mask.shape.batch == 1) rep.computed_pairs *= B;
    } catch (...) {
      errors[size_t(r)] = std::current_exception();
      int none = -1;
      first_failure.compare_exchange_strong(none, r);
      transports[size_t(r)]->abort();
    }
  };

  if (n == 1) {
    rank_main(0);
  } else {
    std::vector<std::thread> threads;
    for (int r = 0; r < n; ++r) threads.emplace_back(rank_main, r);
    for (auto& th : threads) th.join();
  }
  for (const RankReport& rep : res.ranks) res.seconds = std::max(res.seconds, rep.wall_seconds);
  if (first_failure >= 0) std::rethrow_exception(errors[size_t(first_failure.load())]);
  res.engine = engines[0]->name();
  res.transport = transports[0]->name();
  res.overlapped = transports[0]->overlaps_compute();
  return res;
}

}  // namespace bsattn::ring
