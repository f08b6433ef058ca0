// libbsattn: the C ABI (apps/capi/bsattn.h) over the library. Each entry point checks its C arguments
// (null pointers, dtypes, shapes, strides), translates them into the library's types and makes one
// library call: attention_forward / attention_backward (CPU reference), device_attention_* (CUDA,
// lib/backend.h), generate_mask, load_mask, row_csr / column_csr. Library errors become status codes
// and a per-thread message; nothing escapes as an exception.
#include "apps/capi/bsattn.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "lib/attention.h"
#include "lib/backend.h"
#include "lib/error.h"
#include "lib/mask.h"
#include "lib/mask_io.h"
#include "lib/reference/cpu_attention.h"
#include "lib/tensor/tensor_io.h"
#include "patterns/registry.h"

struct bsattn_mask {
  bsattn::BlockMask mask;
  std::string json;  // bsattn_mask_json's text, made on demand
};

namespace {

using namespace bsattn;

thread_local std::string last_error;
constexpr const char* kSameAsQ = "the dtype of q";
constexpr const char* kAlwaysF32 = "always f32";
constexpr const char* kGradDtype = "f32, or the dtype of q for all three gradients";

// Runs `body`, turning every exception into a status and the thread's message.
template <class F>
int guarded(F&& body) {
  try {
    body();
    last_error.clear();
    return BSATTN_OK;
  } catch (const UsageError& e) {
    last_error = e.what();
    return BSATTN_ERROR_USAGE;
  } catch (const RuntimeFailure& e) {
    last_error = e.what();
    return BSATTN_ERROR_RUNTIME;
  } catch (const std::bad_alloc&) {
    last_error = "out of host memory";
    return BSATTN_ERROR_RUNTIME;
  } catch (const std::exception& e) {
    last_error = std::string("internal error: ") + e.what();
    return BSATTN_ERROR_RUNTIME;
  } catch (...) {
    last_error = "internal error: unknown exception";
    return BSATTN_ERROR_RUNTIME;
  }
}

void need(const void* p, const std::string& name) {
  if (!p) throw UsageError(name + " is a null pointer");
}

std::string dims(const int64_t* v, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

ElemType elem_type(int32_t dtype, const std::string& name) {
  switch (dtype) {
    case BSATTN_F32: return ElemType::F32;
    case BSATTN_F16: return ElemType::F16;
    case BSATTN_BF16: return ElemType::BF16;
  }
  throw UsageError(name + ": dtype " + std::to_string(dtype) + " (allowed: BSATTN_F32=0, BSATTN_F16=1, BSATTN_BF16=2)");
}

// `t` has `dtype`, the shape `want` and contiguous rows (strides of size-1 dimensions are free).
// `why` says why that dtype ("the dtype of q", "always f32").
void check_tensor(const bsattn_tensor* t, const std::string& name, int32_t dtype, const std::vector<int64_t>& want,
                  const char* why) {
  need(t, name);
  need(t->data, name + ".data");
  if (t->dtype != dtype)
    throw UsageError(name + ": dtype " + elem_type_name(elem_type(t->dtype, name)) + " (allowed: " +
                     elem_type_name(elem_type(dtype, name)) + ", " + why + ")");
  const int n = int(want.size());
  if (t->ndim != n || !std::equal(want.begin(), want.end(), t->shape))
    throw UsageError(name + ": shape " + dims(t->shape, std::clamp(t->ndim, 0, 4)) + " (expected " +
                     dims(want.data(), n) + ")");
  int64_t expect = 1;
  for (int i = n - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->strides[i] != expect)
      throw UsageError(name + ": strides " + dims(t->strides, n) + " are not contiguous for shape " +
                       dims(t->shape, n) + " (allowed: row-major, BSHD; make the tensor contiguous)");
    expect *= t->shape[i];
  }
}

// The attention problem that q, k, v describe, checked against each other and the options.
struct Call {
  AttentionProblem p;
  ElemType dtype{};
  std::vector<int64_t> q_shape, k_shape, lse_shape;
  bool varlen = false;
};

Call describe(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v, const bsattn_mask_desc* mask,
              const bsattn_options* opt) {
  need(q, "q");
  need(k, "k");
  need(v, "v");
  need(mask, "mask");
  need(opt, "options");
  Call c;
  c.dtype = elem_type(q->dtype, "q");
  AttentionProblem& p = c.p;
  p.dtype = c.dtype;
  if (opt->score != BSATTN_SCORE_SOFTMAX && opt->score != BSATTN_SCORE_SILU)
    throw UsageError("options.score: " + std::to_string(opt->score) + " (allowed: BSATTN_SCORE_SOFTMAX=0, BSATTN_SCORE_SILU=1)");
  p.score = opt->score == BSATTN_SCORE_SILU ? ScoreFn::Silu : ScoreFn::Softmax;
  p.scale = opt->scale;
  p.silu_n = opt->silu_n;
  c.varlen = opt->cu_seqlens_q || opt->cu_seqlens_k;
  if (c.varlen) {
    if (!opt->cu_seqlens_q || !opt->cu_seqlens_k) throw UsageError("cu_seqlens_q and cu_seqlens_k: give both or neither");
    if (q->ndim != 3 || k->ndim != 3)
      throw UsageError("varlen (cu_seqlens given): q and k must be packed [total_rows, heads, head_dim] (ndim 3), got ndim " +
                       std::to_string(q->ndim) + " and " + std::to_string(k->ndim));
    if (opt->varlen_batch < 1)
      throw UsageError("options.varlen_batch = " + std::to_string(opt->varlen_batch) +
                       " (allowed: >= 1, the number of sequences; cu_seqlens have varlen_batch+1 entries)");
    p.batch = opt->varlen_batch;
    p.q_len = mask->q_len;  // the maxima: the mask's geometry
    p.kv_len = mask->kv_len;
    p.heads_q = q->shape[1];
    p.heads_kv = k->shape[1];
    p.head_dim = q->shape[2];
    c.q_shape = {q->shape[0], p.heads_q, p.head_dim};
    c.k_shape = {k->shape[0], p.heads_kv, p.head_dim};
    c.lse_shape = {p.heads_q, q->shape[0]};
  } else {
    if (q->ndim != 4 || k->ndim != 4)
      throw UsageError("q and k must be [batch, seq, heads, head_dim] (ndim 4; packed ndim 3 needs cu_seqlens), got ndim " +
                       std::to_string(q->ndim) + " and " + std::to_string(k->ndim));
    p.batch = q->shape[0];
    p.q_len = q->shape[1];
    p.kv_len = k->shape[1];
    p.heads_q = q->shape[2];
    p.heads_kv = k->shape[2];
    p.head_dim = q->shape[3];
    c.q_shape = {p.batch, p.q_len, p.heads_q, p.head_dim};
    c.k_shape = {p.batch, p.kv_len, p.heads_kv, p.head_dim};
    c.lse_shape = {p.batch, p.heads_q, p.q_len};
  }
  for (int64_t x : c.q_shape)
    if (x < 1) throw UsageError("q: shape " + dims(q->shape, q->ndim) + " (every size must be >= 1)");
  check_tensor(q, "q", q->dtype, c.q_shape, kSameAsQ);
  check_tensor(k, "k", q->dtype, c.k_shape, kSameAsQ);
  check_tensor(v, "v", q->dtype, c.k_shape, kSameAsQ);
  return c;
}

MaskShape mask_shape(const bsattn_mask_desc* d) {
  MaskShape s{d->batch, d->heads, d->q_len, d->kv_len, d->block_q, d->block_kv};
  s.validate();
  return s;
}

// A library mask from host arrays: the bitmap (values 0/1) or the row CSR, then the head types, whose
// dense and streaming heads get the blocks of their definition.
BlockMask host_mask(const bsattn_mask_desc* d) {
  need(d, "mask");
  const MaskShape s = mask_shape(d);
  BlockMask m;
  if (d->bitmap) {
    m = BlockMask(s);
    for (size_t x = 0; x < m.bits.size(); ++x) {
      if (d->bitmap[x] > 1)
        throw UsageError("mask.bitmap: element " + std::to_string(x) + " is " + std::to_string(d->bitmap[x]) +
                         " (allowed: 0 or 1)");
      m.bits[x] = d->bitmap[x];
    }
  } else if (d->kv_num_blocks || d->kv_indices) {
    need(d->kv_num_blocks, "mask.kv_num_blocks");
    need(d->kv_indices, "mask.kv_indices");
    BlockCSR csr;
    csr.counts_shape = {s.batch, s.heads, s.mq()};
    csr.indices_shape = {s.batch, s.heads, s.mq(), s.mk()};
    const size_t rows = size_t(s.batch * s.heads * s.mq());
    csr.num_blocks.assign(d->kv_num_blocks, d->kv_num_blocks + rows);
    csr.indices.assign(d->kv_indices, d->kv_indices + rows * size_t(s.mk()));
    m = mask_from_row_csr(s, csr, "mask (row CSR)");
  } else {
    throw UsageError("mask: give the bitmap or the row CSR (kv_num_blocks, kv_indices)");
  }
  m.causal = d->causal != 0;
  if (d->head_type) {
    const BlockGeometry g = m.geometry();
    for (int64_t h = 0; h < s.heads; ++h) {
      const uint8_t t = d->head_type[h];
      if (t > BSATTN_HEAD_STREAMING)
        throw UsageError("mask.head_type[" + std::to_string(h) + "] = " + std::to_string(t) +
                         " (allowed: 0 dense, 1 sparse, 2 streaming)");
      HeadInfo info;
      info.type = HeadType(t);
      if (info.type == HeadType::Streaming) {
        info.sink_blocks = d->head_sink ? d->head_sink[h] : 0;
        info.local_blocks = d->head_local ? d->head_local[h] : 0;
        check_head_info(info, s, h, "mask");
      }
      m.heads[size_t(h)] = info;
      for (int64_t b = 0; b < s.batch; ++b) {
        uint8_t* hb = m.head_bits(b, h);
        if (info.type == HeadType::Dense) std::fill(hb, hb + s.head_cells(), uint8_t(1));
        if (info.type == HeadType::Streaming) fill_streaming(g, info.sink_blocks, info.local_blocks, hb);
      }
    }
  }
  // The bitmap stays as given (no apply_causal): causal is applied per sequence, which for varlen
  // batches of unequal q/k lengths keeps blocks that the mask's own geometry would clear.
  return m;
}

// O as the caller's dtype (the library computes f32).
void write_out(const std::vector<float>& x, ElemType t, void* out) {
  if (t == ElemType::F32) {
    std::memcpy(out, x.data(), x.size() * 4);
    return;
  }
  const std::vector<uint16_t> r = to_16bit(x, t);
  std::memcpy(out, r.data(), r.size() * 2);
}

size_t count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t x : shape) n *= size_t(x);
  return n;
}

// The CPU problem: varlen offsets are host memory here.
void set_host_varlen(Call& c, const bsattn_options* opt) {
  if (!c.varlen) return;
  const size_t n = size_t(c.p.batch + 1);
  c.p.cu_seqlens_q.assign(opt->cu_seqlens_q, opt->cu_seqlens_q + n);
  c.p.cu_seqlens_k.assign(opt->cu_seqlens_k, opt->cu_seqlens_k + n);
}

void check_totals(const Call& c, const bsattn_tensor* q, const bsattn_tensor* k) {
  if (!c.varlen) return;
  if (c.p.total_q() != q->shape[0] || c.p.total_k() != k->shape[0])
    throw UsageError("varlen: cu_seqlens end at " + std::to_string(c.p.total_q()) + " query and " +
                     std::to_string(c.p.total_k()) + " key rows but q has " + std::to_string(q->shape[0]) +
                     " and k " + std::to_string(k->shape[0]));
}

// The device problem (CUDA backend): every pointer on the current device.
DeviceAttention device_call(const Call& c, const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                            const bsattn_mask_desc* mask, const bsattn_options* opt) {
  DeviceAttention a;
  a.problem = c.p;
  a.mask_shape = mask_shape(mask);
  a.causal = mask->causal != 0;
  if (c.varlen) {
    a.cu_q = opt->cu_seqlens_q;
    a.cu_k = opt->cu_seqlens_k;
    a.total_q = q->shape[0];
    a.total_k = k->shape[0];
  }
  a.head_type = mask->head_type;
  a.head_sink = mask->head_sink;
  a.head_local = mask->head_local;
  a.bits = mask->bitmap;
  a.kv_num_blocks = mask->kv_num_blocks;
  a.kv_indices = mask->kv_indices;
  a.q_num_blocks = mask->q_num_blocks;
  a.q_indices = mask->q_indices;
  a.q = q->data;
  a.k = k->data;
  a.v = v->data;
  a.workspace = opt->workspace;
  a.workspace_bytes = opt->workspace_bytes;
  a.stream = opt->stream;
  a.options.backend = Backend::Cuda;
  a.options.kernel = opt->kernel ? opt->kernel : "";
  a.options.bwd_kernel = opt->bwd_kernel ? opt->bwd_kernel : "";
  a.options.deterministic = opt->deterministic != 0;
  return a;
}

void check_backend(const bsattn_options* opt) {
  if (opt->backend != BSATTN_BACKEND_CPU && opt->backend != BSATTN_BACKEND_CUDA)
    throw UsageError("options.backend: " + std::to_string(opt->backend) +
                     " (allowed: BSATTN_BACKEND_CPU=0, BSATTN_BACKEND_CUDA=1)");
  if (opt->backend == BSATTN_BACKEND_CPU && ((opt->kernel && *opt->kernel) || (opt->bwd_kernel && *opt->bwd_kernel)))
    throw UsageError("options.kernel / bwd_kernel name a CUDA kernel; they need BSATTN_BACKEND_CUDA");
}

}  // namespace

extern "C" {

void bsattn_options_init(bsattn_options* opt) {
  if (!opt) return;
  *opt = bsattn_options{};
  opt->backend = BSATTN_BACKEND_CPU;
  opt->score = BSATTN_SCORE_SOFTMAX;
}

const char* bsattn_last_error(void) { return last_error.c_str(); }
int bsattn_abi_version(void) { return BSATTN_ABI_VERSION; }
const char* bsattn_version(void) { return BSATTN_VERSION; }

int bsattn_cuda_available(void) {
  try {
    return gpu_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int bsattn_workspace_size(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                          const bsattn_mask_desc* mask, const bsattn_options* opt, int backward, size_t* bytes) {
  return guarded([&] {
    need(bytes, "bytes");
    *bytes = 0;
    Call c = describe(q, k, v, mask, opt);
    check_backend(opt);
    if (opt->backend == BSATTN_BACKEND_CPU) return;
    DeviceAttention a = device_call(c, q, k, v, mask, opt);
    *bytes = device_attention_workspace(a, backward != 0);
  });
}

int bsattn_attention_forward(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                             const bsattn_mask_desc* mask, const bsattn_options* opt, bsattn_tensor* o,
                             bsattn_tensor* lse) {
  return guarded([&] {
    Call c = describe(q, k, v, mask, opt);
    check_backend(opt);
    check_tensor(o, "o", q->dtype, c.q_shape, kSameAsQ);
    check_tensor(lse, "lse", BSATTN_F32, c.lse_shape, kAlwaysF32);
    if (opt->backend == BSATTN_BACKEND_CUDA) {
      DeviceAttention a = device_call(c, q, k, v, mask, opt);
      a.o = o->data;
      a.lse = static_cast<float*>(lse->data);
      device_attention_forward(a);
      return;
    }
    set_host_varlen(c, opt);
    const BlockMask m = host_mask(mask);
    c.p.validate(m);
    check_totals(c, q, k);
    AttentionInputs in{q->data, k->data, v->data, nullptr};
    AttentionResult r = attention_forward(c.p, m, in, AttentionOptions{});
    write_out(r.out, c.dtype, o->data);
    std::memcpy(lse->data, r.lse.data(), r.lse.size() * 4);
  });
}

int bsattn_attention_backward(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                              const bsattn_tensor* o, const bsattn_tensor* lse, const bsattn_tensor* dout,
                              const bsattn_mask_desc* mask, const bsattn_options* opt, bsattn_tensor* dq,
                              bsattn_tensor* dk, bsattn_tensor* dv) {
  return guarded([&] {
    Call c = describe(q, k, v, mask, opt);
    check_backend(opt);
    check_tensor(o, "o", q->dtype, c.q_shape, kSameAsQ);
    check_tensor(lse, "lse", BSATTN_F32, c.lse_shape, kAlwaysF32);
    check_tensor(dout, "dout", q->dtype, c.q_shape, kSameAsQ);
    // The gradients: f32, or all three in q's dtype (written from the kernels' f32 sums, no extra pass).
    need(dq, "dq");
    const int32_t gdt = dq->dtype == q->dtype ? q->dtype : BSATTN_F32;
    check_tensor(dq, "dq", gdt, c.q_shape, kGradDtype);
    check_tensor(dk, "dk", gdt, c.k_shape, kGradDtype);
    check_tensor(dv, "dv", gdt, c.k_shape, kGradDtype);
    if (opt->backend == BSATTN_BACKEND_CUDA) {
      DeviceAttention a = device_call(c, q, k, v, mask, opt);
      a.o = o->data;
      a.lse = static_cast<float*>(lse->data);
      a.dout = dout->data;
      a.dq = static_cast<float*>(dq->data);
      a.dk = static_cast<float*>(dk->data);
      a.dv = static_cast<float*>(dv->data);
      a.grads16 = gdt != BSATTN_F32;
      device_attention_backward(a);
      return;
    }
    set_host_varlen(c, opt);
    const BlockMask m = host_mask(mask);
    c.p.validate(m);
    check_totals(c, q, k);
    AttentionInputs in{q->data, k->data, v->data, nullptr};
    AttentionResult fwd;
    // O and dO as f32, the first NaN/Inf a usage error naming its position (as the reference's inputs).
    const int64_t rows = c.varlen ? 0 : c.p.q_len, n = int64_t(count(c.q_shape));
    fwd.out = convert_checked<float>(o->data, c.dtype, n, c.p.heads_q, c.p.head_dim, rows, "O");
    const float* l = static_cast<const float*>(lse->data);
    fwd.lse.assign(l, l + count(c.lse_shape));
    const std::vector<float> d = convert_checked<float>(dout->data, c.dtype, n, c.p.heads_q, c.p.head_dim, rows, "dO");
    AttentionGradients g = attention_backward(c.p, m, in, fwd, d.data(), AttentionOptions{});
    const ElemType gt = gdt == BSATTN_F32 ? ElemType::F32 : c.dtype;
    write_out(g.dq, gt, dq->data);
    write_out(g.dk, gt, dk->data);
    write_out(g.dv, gt, dv->data);
  });
}

int bsattn_mask_generate(const char* pattern, const char* head_map, int64_t batch, int64_t heads, int64_t q_len,
                         int64_t kv_len, int64_t block_q, int64_t block_kv, int32_t causal, uint64_t seed,
                         bsattn_mask** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    if ((pattern == nullptr) == (head_map == nullptr))
      throw UsageError("give a pattern spec or a head map (one of the two)");
    MaskRequest req;
    req.shape = MaskShape{batch, heads, q_len, kv_len, block_q ? block_q : 128, block_kv ? block_kv : 128};
    req.causal = causal != 0;
    req.seed = seed;
    if (pattern) req.pattern = parse_pattern(pattern, "pattern");
    if (head_map) req.head_map = parse_head_map(head_map, heads);
    if (!resolve_natural_lengths(req)) throw UsageError("give the sequence length (q_len and kv_len >= 1)");
    auto h = std::make_unique<bsattn_mask>();
    h->mask = generate_mask(req);
    *out = h.release();
  });
}

int bsattn_mask_load(const char* path, int64_t q_len, int64_t kv_len, int64_t block_q, int64_t block_kv,
                     int32_t causal, bsattn_mask** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    need(path, "path");
    MaskSizesHint hint;
    if (q_len > 0) hint.q_len = q_len;
    if (kv_len > 0) hint.kv_len = kv_len;
    if (block_q > 0) hint.block_q = block_q;
    if (block_kv > 0) hint.block_kv = block_kv;
    hint.causal = causal != 0;
    auto h = std::make_unique<bsattn_mask>();
    h->mask = load_mask(path, hint);
    *out = h.release();
  });
}

int bsattn_mask_create(const bsattn_mask_desc* desc, bsattn_mask** out) {
  return guarded([&] {
    need(out, "out");
    *out = nullptr;
    auto h = std::make_unique<bsattn_mask>();
    h->mask = host_mask(desc);
    *out = h.release();
  });
}

void bsattn_mask_free(bsattn_mask* mask) { delete mask; }

int bsattn_mask_get_info(const bsattn_mask* mask, bsattn_mask_info* info) {
  return guarded([&] {
    need(mask, "mask");
    need(info, "info");
    const MaskShape& s = mask->mask.shape;
    *info = bsattn_mask_info{s.batch, s.heads, s.q_len, s.kv_len, s.block_q, s.block_kv, s.mq(), s.mk(),
                             mask->mask.causal ? 1 : 0};
  });
}

int bsattn_mask_copy_bitmap(const bsattn_mask* mask, uint8_t* bitmap, size_t n) {
  return guarded([&] {
    need(mask, "mask");
    const std::vector<uint8_t>& bits = mask->mask.bits;
    if (n != bits.size())
      throw UsageError("bitmap: " + std::to_string(n) + " elements given, the mask has " + std::to_string(bits.size()));
    if (bitmap) std::memcpy(bitmap, bits.data(), bits.size());
  });
}

int bsattn_mask_copy_heads(const bsattn_mask* mask, uint8_t* head_type, int32_t* head_sink, int32_t* head_local,
                           size_t heads) {
  return guarded([&] {
    need(mask, "mask");
    const std::vector<HeadInfo>& info = mask->mask.heads;
    if (heads != info.size())
      throw UsageError("heads: " + std::to_string(heads) + " given, the mask has " + std::to_string(info.size()));
    for (size_t h = 0; h < info.size(); ++h) {
      if (head_type) head_type[h] = uint8_t(info[h].type);
      if (head_sink) head_sink[h] = int32_t(info[h].sink_blocks);
      if (head_local) head_local[h] = int32_t(info[h].local_blocks);
    }
  });
}

int bsattn_mask_copy_csr(const bsattn_mask* mask, int32_t* kv_num_blocks, int32_t* kv_indices,
                         int32_t* q_num_blocks, int32_t* q_indices, size_t rows_q, size_t rows_k) {
  return guarded([&] {
    need(mask, "mask");
    const MaskShape& s = mask->mask.shape;
    const size_t want_q = size_t(s.batch * s.heads * s.mq()), want_k = size_t(s.batch * s.heads * s.mk());
    if (rows_q != want_q || rows_k != want_k)
      throw UsageError("CSR rows: " + std::to_string(rows_q) + " and " + std::to_string(rows_k) +
                       " given, the mask has B*H*Mq = " + std::to_string(want_q) + " and B*H*Mk = " + std::to_string(want_k));
    if (kv_num_blocks || kv_indices) {
      const BlockCSR r = row_csr(mask->mask);
      if (kv_num_blocks) std::memcpy(kv_num_blocks, r.num_blocks.data(), r.num_blocks.size() * 4);
      if (kv_indices) std::memcpy(kv_indices, r.indices.data(), r.indices.size() * 4);
    }
    if (q_num_blocks || q_indices) {
      const BlockCSR c = column_csr(mask->mask);
      if (q_num_blocks) std::memcpy(q_num_blocks, c.num_blocks.data(), c.num_blocks.size() * 4);
      if (q_indices) std::memcpy(q_indices, c.indices.data(), c.indices.size() * 4);
    }
  });
}

const char* bsattn_mask_json(const bsattn_mask* mask) {
  if (!mask) {
    last_error = "mask is a null pointer";
    return nullptr;
  }
  const char* text = nullptr;
  const int rc = guarded([&] {
    bsattn_mask* m = const_cast<bsattn_mask*>(mask);
    m->json = mask_to_json(m->mask).dump();
    text = m->json.c_str();
  });
  return rc == BSATTN_OK ? text : nullptr;
}

int bsattn_mask_save(const bsattn_mask* mask, const char* path) {
  return guarded([&] {
    need(mask, "mask");
    need(path, "path");
    save_mask(path, mask->mask);
  });
}

}  // extern "C"
