// An owning device allocation (cudaMalloc / cudaFree) with checked copies. OOM -> RuntimeFailure.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda_check.h"

namespace bsattn::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) { alloc(bytes); }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  void alloc(size_t bytes) {
    if (p_) cudaFree(p_), p_ = nullptr;
    n_ = bytes;
    if (bytes) CUDA_CHECK(cudaMalloc(&p_, bytes));
  }
  void upload(const void* host, size_t bytes, cudaStream_t s = 0) {
    alloc(bytes);
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(p_, host, bytes, cudaMemcpyHostToDevice, s));
  }
  void download(void* host, size_t bytes, cudaStream_t s = 0) const {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(host, p_, bytes, cudaMemcpyDeviceToHost, s));
  }
  // `rows` rows of row_bytes each from host memory into rows `pitch` bytes apart (pitch >= row_bytes:
  // the bytes past row_bytes of every row are zero), and back: the padded head dims of the kernels.
  // upload_rows allocates; write_rows writes into the allocation there is (its address, which launch
  // parameters hold, stays).
  void upload_rows(const void* host, size_t rows, size_t row_bytes, size_t pitch, cudaStream_t s = 0) {
    alloc(rows * pitch);
    write_rows(host, rows, row_bytes, pitch, s);
  }
  void write_rows(const void* host, size_t rows, size_t row_bytes, size_t pitch, cudaStream_t s = 0) {
    if (rows * pitch > n_) throw RuntimeFailure("DeviceBuffer::write_rows past the allocation");
    if (!rows) return;
    if (pitch == row_bytes) {
      CUDA_CHECK(cudaMemcpyAsync(p_, host, rows * row_bytes, cudaMemcpyHostToDevice, s));
      return;
    }
    CUDA_CHECK(cudaMemsetAsync(p_, 0, rows * pitch, s));
    CUDA_CHECK(cudaMemcpy2DAsync(p_, pitch, host, row_bytes, row_bytes, rows, cudaMemcpyHostToDevice, s));
  }
  void download_rows(void* host, size_t rows, size_t row_bytes, size_t pitch, cudaStream_t s = 0) const {
    if (pitch == row_bytes) return download(host, rows * row_bytes, s);
    if (rows) CUDA_CHECK(cudaMemcpy2DAsync(host, row_bytes, p_, pitch, row_bytes, rows, cudaMemcpyDeviceToHost, s));
  }
  template <class T = void>
  T* get() const { return static_cast<T*>(p_); }
  size_t bytes() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace bsattn::cuda
