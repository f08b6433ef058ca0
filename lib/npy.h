// NumPy .npy files. The writer is strict (format 1.0, byte-identical to numpy.save: sorted keys,
// the growth padding NumPy adds after the header dict, data aligned to 64 bytes); the reader is
// liberal (format 1.0/2.0/3.0, any header padding) but rejects truncated or corrupt files with a
// UsageError naming the file.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bsattn {

enum class DType { Bool, Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float16, Float32, Float64 };

size_t dtype_size(DType t);
const char* dtype_descr(DType t);  // "|b1", "<f4", ...
const char* dtype_name(DType t);   // "bool", "float32", ...

struct NpyArray {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // little-endian, C order

  NpyArray() = default;
  NpyArray(DType t, std::vector<int64_t> s);  // zero-filled
  int64_t numel() const;
  template <class T> T* as() { return reinterpret_cast<T*>(data.data()); }
  template <class T> const T* as() const { return reinterpret_cast<const T*>(data.data()); }
  std::string shape_str() const;  // "(2, 3)"
};

// The header NumPy writes for this dtype/shape (magic through the final '\n').
std::string npy_header(DType t, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const NpyArray& a);
// Reads the header first (magic, version, dict), checks that the file's length on disk is exactly
// header + data, and only then reads the data: a file that is not .npy, or whose header promises more
// (or less) than it holds, is refused before its body is read or any buffer sized from it.
NpyArray read_npy(const std::string& path);

// What a .npy header says: the array's type and shape, where its data starts and how long it is.
struct NpyHeader {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes of magic + version + length field + dict
  uint64_t data_bytes = 0;  // numel * dtype size (checked: at most 2^50)
};
// Parses the header at the start of `bytes` (which may end anywhere after it). UsageError naming
// `name` for a missing magic, a bad dict or a shape past the limit; `need` reports how many bytes the
// header needs when `bytes` is too short (then the result is not valid and `need` > bytes.size()).
NpyHeader parse_npy_header(const uint8_t* bytes, size_t size, const std::string& name, size_t* need = nullptr);
// The header of a .npy file alone (checked against the file's length; the data is not read).
NpyHeader read_npy_header(const std::string& path);
// Parses an in-memory .npy image; `name` is used in error messages.
NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name);

// Number conversions shared by the CPU and CUDA paths.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);  // round to nearest even
inline float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float f);  // round to nearest even, NaN kept NaN

}  // namespace bsattn
