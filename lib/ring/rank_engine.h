// What one rank of the ring computes on: its buffers and its steps. The CPU engine (lib/ring/cpu_engine.cpp)
// keeps host float32 buffers and runs the CPU reference; the CUDA engine (kernels/ring_engine.cu, reached
// through lib/ring/ring_gpu.h) keeps the rank's shards on its GPU and runs the device passes there.
//
// A travelling shard of R tokens is one contiguous buffer: K [B,R,Hkv,D] then V, in the engine's element
// type, and in the backward pass dK then dV (float32) after them. Two such slots per rank: one computed on,
// one being received into.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "lib/attention.h"
#include "lib/mask.h"

namespace bsattn::ring {

struct EngineSizes {
  int64_t batch = 1, heads_q = 1, heads_kv = 1, head_dim = 64;
  int64_t own_rows = 0;  // this rank's shard
  int64_t max_rows = 0;  // the largest shard of any rank (slot capacity)
  ElemType dtype = ElemType::F32;
  bool gradients = false;
};

class RankEngine {
 public:
  virtual ~RankEngine() = default;
  // Bytes of a travelling shard of `rows` tokens (with dK/dV when `gradients`).
  virtual size_t shard_bytes(int64_t rows, bool gradients) const = 0;
  virtual void* slot(int s) = 0;  // s = 0, 1
  // A complete copy between two ranks' slots (the loopback transport's).
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  // The stream the steps run on (cudaStream_t), or null on the CPU.
  virtual void* compute_stream() = 0;
  // Called before the ring starts with the mask of every step the rank will compute (the GPU engine uploads
  // it); the mask outlives the ring.
  virtual void prepare(const BlockMask& mask) { (void)mask; }
  // The rank's own shards, host float32 BSHD [B, own_rows, H, D] (values exact in dtype): Q kept, K/V into
  // slot 0; the running output reset to empty (O = 0, LSE = -inf); with gradients, slot 0's dK/dV zeroed.
  virtual void load(const float* q, const float* k, const float* v) = 0;
  // The step's attention of the Q shard against the K/V in `slot` (sub.kv_len tokens), merged by LSE into
  // the running output.
  virtual void forward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) = 0;
  // The merged output, host: O [B, own_rows, Hq, D] and LSE [B, Hq, own_rows].
  virtual void read_output(float* out, float* lse) = 0;
  // Backward: dO of the shard and the merged O and LSE of the whole ring (host, as read_output gives them);
  // dQ reset to 0. Call after load().
  virtual void begin_backward(const float* dout, const float* out, const float* lse) = 0;
  // The step's gradients: dQ added to the rank's, dK/dV added to those travelling in `slot`.
  virtual void backward_step(int slot, const AttentionProblem& sub, const BlockMask& mask) = 0;
  // dQ [B, own_rows, Hq, D] and the dK/dV in `slot` (the rank's own shard, back home) [B, own_rows, Hkv, D].
  virtual void read_gradients(int slot, float* dq, float* dk, float* dv) = 0;
  // Waits for the work enqueued so far (GPU); nothing on the CPU.
  virtual void synchronize() = 0;
  // Bytes this rank holds: shards, slots, running output, scratch.
  virtual size_t memory_bytes() const = 0;
  virtual const char* name() const = 0;  // "cpu (float32)", "cuda (bf16)"
};

// The CPU reference engine: float32 host buffers, `threads` CPU threads for each step (<= 0: all).
std::unique_ptr<RankEngine> make_cpu_engine(const EngineSizes& sizes, int threads);

// Merges a step's partial output into the running one, row by row: L = log(e^La + e^Lb),
// O = e^(La-L) Oa + e^(Lb-L) Ob; a row empty in both stays O = 0, LSE = -inf. O [B, rows, H, D] and LSE
// [B, H, rows], float32.
void merge_partial(float* out, float* lse, const float* part_out, const float* part_lse, int64_t batch, int64_t rows,
                   int64_t heads, int64_t head_dim);

}  // namespace bsattn::ring
