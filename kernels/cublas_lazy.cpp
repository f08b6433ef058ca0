// cuBLAS loaded when first called, not when bsattn starts (issue 25). Linking libcublas made the dynamic
// loader map and relocate libcublas + libcublasLt (about 600 MB of files) at every start, GPU or not:
// `bsattn --version` took 0.3-2 s and 200+ MB. bsattn calls six cuBLAS functions (the GEMM ceiling, the
// dense reference and NSA's compressed branch); this file defines them with the signatures of cublas_api.h, and each forwards
// to the real one, found with dlopen/dlsym on first use. Without the library the call returns
// CUBLAS_STATUS_NOT_INITIALIZED, which CUBLAS_CHECK reports like any other cuBLAS failure.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <cstdio>
#include <mutex>
#include <string>

namespace {

#define BSATTN_STR2(x) #x
#define BSATTN_STR(x) BSATTN_STR2(x)
// The soname of the cuBLAS the headers come from (libcublas.so.13 for CUDA 13).
constexpr const char* kCublasSoname = "libcublas.so." BSATTN_STR(CUBLAS_VER_MAJOR);

void* cublas_library() {
  static void* handle = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    handle = ::dlopen(kCublasSoname, RTLD_NOW | RTLD_LOCAL);
#ifdef BSATTN_CUBLAS_DIR
    // The toolkit's folder, as the link-time RUNPATH used to give it, for machines whose loader cache
    // does not list it.
    if (!handle) handle = ::dlopen((std::string(BSATTN_CUBLAS_DIR) + "/" + kCublasSoname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (!handle) std::fprintf(stderr, "bsattn: cannot load %s: %s\n", kCublasSoname, ::dlerror());
  });
  return handle;
}

template <class Fn>
Fn cublas_symbol(const char* name) {
  void* lib = cublas_library();
  return lib ? reinterpret_cast<Fn>(::dlsym(lib, name)) : nullptr;
}

}  // namespace

// Each wrapper resolves its symbol once (a function-local static) and forwards every argument.
#define BSATTN_CUBLAS_FORWARD(name, params, args)                                        \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                                   \
    using Fn = cublasStatus_t(CUBLASWINAPI*) params;                                     \
    static Fn fn = cublas_symbol<Fn>(#name);                                             \
    return fn ? fn args : CUBLAS_STATUS_NOT_INITIALIZED;                                 \
  }

BSATTN_CUBLAS_FORWARD(cublasCreate_v2, (cublasHandle_t * handle), (handle))
BSATTN_CUBLAS_FORWARD(cublasDestroy_v2, (cublasHandle_t handle), (handle))
BSATTN_CUBLAS_FORWARD(cublasSetStream_v2, (cublasHandle_t handle, cudaStream_t stream), (handle, stream))
BSATTN_CUBLAS_FORWARD(cublasGemmEx,
                      (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                       const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                       cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                       cublasComputeType_t computeType, cublasGemmAlgo_t algo),
                      (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
                       computeType, algo))
BSATTN_CUBLAS_FORWARD(cublasGemmStridedBatchedEx,
                      (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                       const void* alpha, const void* A, cudaDataType Atype, int lda, long long int strideA,
                       const void* B, cudaDataType Btype, int ldb, long long int strideB, const void* beta, void* C,
                       cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
                       cublasComputeType_t computeType, cublasGemmAlgo_t algo),
                      (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C,
                       Ctype, ldc, strideC, batchCount, computeType, algo))
BSATTN_CUBLAS_FORWARD(cublasSgemmStridedBatched,
                      (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                       const float* alpha, const float* A, int lda, long long int strideA, const float* B, int ldb,
                       long long int strideB, const float* beta, float* C, int ldc, long long int strideC,
                       int batchCount),
                      (handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC,
                       batchCount))
