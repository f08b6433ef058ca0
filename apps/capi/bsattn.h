/* libbsattn: the C ABI of bsattn (docs/c-api.md).
 *
 * Attention forward and backward on caller-owned memory (host memory for the CPU reference, memory of
 * the current CUDA device for the GPU kernels), masks from pattern specs and mask files, and the CSR
 * forms of a bitmap. Every function returns a status (BSATTN_OK, or an error code) and never aborts or
 * exits; after an error, bsattn_last_error() gives one line naming what is wrong and what is allowed
 * (per thread, until the next call on that thread). */
#ifndef BSATTN_CAPI_H
#define BSATTN_CAPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BSATTN_ABI_VERSION 1

/* Status codes: those of the command's exit status. */
enum {
  BSATTN_OK = 0,
  BSATTN_ERROR_RUNTIME = 1, /* a failure at run time: a CUDA error, out of memory, a file that cannot be read */
  BSATTN_ERROR_USAGE = 2,   /* bad input: sizes, dtypes, strides, null pointers, a bad spec */
};

enum { BSATTN_F32 = 0, BSATTN_F16 = 1, BSATTN_BF16 = 2 };               /* bsattn_tensor.dtype */
enum { BSATTN_BACKEND_CPU = 0, BSATTN_BACKEND_CUDA = 1 };               /* bsattn_options.backend */
enum { BSATTN_SCORE_SOFTMAX = 0, BSATTN_SCORE_SILU = 1 };               /* bsattn_options.score */
enum { BSATTN_HEAD_DENSE = 0, BSATTN_HEAD_SPARSE = 1, BSATTN_HEAD_STREAMING = 2 }; /* head types */

/* A strided tensor. Q, K, V, O, dO and the gradients are [batch, seq, heads, head_dim] (ndim 4, BSHD)
 * or, for varlen batches, packed [total_rows, heads, head_dim] (ndim 3); LSE is [batch, heads_q, q_len]
 * (ndim 3) or, varlen, [heads_q, total_q] (ndim 2). Strides count elements. The kernels and the
 * reference read contiguous rows only: any other strides are refused (make the tensor contiguous). */
typedef struct bsattn_tensor {
  void* data;
  int32_t dtype; /* BSATTN_F32, BSATTN_F16, BSATTN_BF16 */
  int32_t ndim;
  int64_t shape[4];
  int64_t strides[4];
} bsattn_tensor;

/* A block mask given as arrays, on the side of the backend (host for the CPU, device for CUDA).
 * Sizes: batch 1 (broadcast) or the input batch; heads = Q's heads; q_len/kv_len the (maximum)
 * sequence lengths; Mq = ceil(q_len/block_q), Mk = ceil(kv_len/block_kv). Give the bitmap, or the row
 * CSR (FlexAttention's kv_num_blocks/kv_indices, ascending), or both. The CUDA backward also reads the
 * column CSR, built from the bitmap when not given. Head types (dense heads ignore the bitmap,
 * streaming heads keep head_sink first blocks and head_local blocks up to the diagonal) may be NULL:
 * every head is then sparse. */
typedef struct bsattn_mask_desc {
  int64_t batch, heads, q_len, kv_len, block_q, block_kv;
  int32_t causal; /* bottom-right aligned when q_len != kv_len */
  const uint8_t* bitmap;        /* [batch, heads, Mq, Mk], 0 or 1 */
  const int32_t* kv_num_blocks; /* [batch, heads, Mq] */
  const int32_t* kv_indices;    /* [batch, heads, Mq, Mk] */
  const int32_t* q_num_blocks;  /* [batch, heads, Mk] (CUDA backward) */
  const int32_t* q_indices;     /* [batch, heads, Mk, Mq] */
  const uint8_t* head_type;     /* [heads] BSATTN_HEAD_*, or NULL */
  const int32_t* head_sink;     /* [heads], or NULL (zeros) */
  const int32_t* head_local;    /* [heads], or NULL (zeros) */
} bsattn_mask_desc;

/* How a pass runs. Initialize with bsattn_options_init. */
typedef struct bsattn_options {
  int32_t backend;           /* BSATTN_BACKEND_CPU (default) or BSATTN_BACKEND_CUDA */
  int32_t score;             /* BSATTN_SCORE_SOFTMAX (default) or BSATTN_SCORE_SILU (HSTU) */
  double scale;              /* 0: 1/sqrt(head_dim) */
  double silu_n;             /* SiLU: the divisor n > 0 */
  int64_t varlen_batch;      /* varlen: the number of sequences (cu_seqlens have varlen_batch+1 entries) */
  const int32_t* cu_seqlens_q; /* varlen offsets, on the backend's side, or NULL (fixed length) */
  const int32_t* cu_seqlens_k;
  void* stream;              /* CUDA: the cudaStream_t the pass is enqueued on (NULL: the default stream) */
  const char* kernel;        /* CUDA: a forward kernel by name, or NULL/"" for the default */
  const char* bwd_kernel;    /* CUDA: the backward's kernel, "sm90" or "sm80", or NULL/"" for the default */
  int32_t deterministic;     /* CUDA backward: dQ without atomics, bit-identical from run to run */
  void* workspace;           /* CUDA: scratch of at least bsattn_workspace_size bytes on the device */
  size_t workspace_bytes;
} bsattn_options;

void bsattn_options_init(bsattn_options* opt);

/* One line about the last error on this thread ("" when there was none). */
const char* bsattn_last_error(void);
int bsattn_abi_version(void);
const char* bsattn_version(void);
/* 1 when this library has the CUDA kernels and a CUDA GPU is present. */
int bsattn_cuda_available(void);

/* Bytes of device workspace a CUDA pass needs (0 for the CPU backend). */
int bsattn_workspace_size(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                          const bsattn_mask_desc* mask, const bsattn_options* opt, int backward, size_t* bytes);

/* O = attention(Q, K, V) under the mask, and LSE (natural log, -inf for a row that sees no key; 0 for
 * SiLU). O has Q's dtype and shape; LSE is float32. The CPU backend takes f32, f16 and bf16 and returns
 * when done; the CUDA backend takes f16 and bf16 and only enqueues the pass on opt->stream. */
int bsattn_attention_forward(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                             const bsattn_mask_desc* mask, const bsattn_options* opt, bsattn_tensor* o,
                             bsattn_tensor* lse);

/* dQ, dK, dV (the shapes of Q, K, V; dK/dV summed over each GQA group) from dO (Q's dtype) and the
 * forward's O and LSE. The three gradients are float32, or all three in Q's dtype: the kernels round
 * their float32 sums once when they store them (no conversion pass). */
int bsattn_attention_backward(const bsattn_tensor* q, const bsattn_tensor* k, const bsattn_tensor* v,
                              const bsattn_tensor* o, const bsattn_tensor* lse, const bsattn_tensor* dout,
                              const bsattn_mask_desc* mask, const bsattn_options* opt, bsattn_tensor* dq,
                              bsattn_tensor* dk, bsattn_tensor* dv);

/* Masks held by the library (host memory). */
typedef struct bsattn_mask bsattn_mask;

typedef struct bsattn_mask_info {
  int64_t batch, heads, q_len, kv_len, block_q, block_kv, mq, mk;
  int32_t causal;
} bsattn_mask_info;

/* A mask from a pattern spec, as `bsattn gen-mask --pattern SPEC` (or --head-map MAP when head_map is
 * not NULL; then pattern must be NULL). q_len/kv_len 0 take an image or video pattern's own lengths. */
int bsattn_mask_generate(const char* pattern, const char* head_map, int64_t batch, int64_t heads, int64_t q_len,
                         int64_t kv_len, int64_t block_q, int64_t block_kv, int32_t causal, uint64_t seed,
                         bsattn_mask** out);
/* A mask file as `bsattn gen-mask` writes it: .json (self-describing), .npy (bool [B,H,Mq,Mk]) or a CSR
 * prefix; q_len/kv_len/block_q/block_kv (0: full blocks of 128) and causal describe .npy and CSR files. */
int bsattn_mask_load(const char* path, int64_t q_len, int64_t kv_len, int64_t block_q, int64_t block_kv,
                     int32_t causal, bsattn_mask** out);
/* A mask from host arrays (bitmap or row CSR, optional head types), checked: values, index ranges,
 * streaming heads' numbers. Dense and streaming heads' blocks follow from their definition. */
int bsattn_mask_create(const bsattn_mask_desc* desc, bsattn_mask** out);
void bsattn_mask_free(bsattn_mask* mask);
int bsattn_mask_get_info(const bsattn_mask* mask, bsattn_mask_info* info);
/* Copies into caller arrays of the sizes given (elements); any pointer may be NULL to skip it. */
int bsattn_mask_copy_bitmap(const bsattn_mask* mask, uint8_t* bitmap, size_t n);
int bsattn_mask_copy_heads(const bsattn_mask* mask, uint8_t* head_type, int32_t* head_sink, int32_t* head_local,
                           size_t heads);
/* Row CSR: kv_num_blocks [B,H,Mq], kv_indices [B,H,Mq,Mk]; column CSR: q_num_blocks [B,H,Mk],
 * q_indices [B,H,Mk,Mq]; ascending, rows padded with 0 (what `bsattn gen-mask --csr` writes). */
int bsattn_mask_copy_csr(const bsattn_mask* mask, int32_t* kv_num_blocks, int32_t* kv_indices,
                         int32_t* q_num_blocks, int32_t* q_indices, size_t rows_q, size_t rows_k);
/* The mask as `bsattn.mask/v1` JSON (docs/mask-json.md), valid until the mask is freed. */
const char* bsattn_mask_json(const bsattn_mask* mask);
/* Writes the mask to PATH (.npy or .json, by extension). */
int bsattn_mask_save(const bsattn_mask* mask, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* BSATTN_CAPI_H */
