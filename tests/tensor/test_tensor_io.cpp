// load_tensor's --dtype: float32 files rounded to bf16 / f16 (nearest even) on loading, overflow named
// by position, mismatches rejected; to_16bit gives the bit patterns the CUDA backend takes.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <stdexcept>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/tensor/tensor_io.h"

using namespace bsattn;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// [1, S=2, H=1, D=4] float32 .npy with the given 8 values.
std::string write_f32(const std::string& name, const std::vector<float>& v) {
  NpyArray a(DType::Float32, {1, 2, 1, 4});
  std::memcpy(a.data.data(), v.data(), v.size() * 4);
  write_npy(name, a);
  return name;
}

}  // namespace

TEST_CASE("load_tensor --dtype bf16 / f16 rounds float32 files to nearest even") {
  // Ties and near-ties hand-computed for both types (see tests/core/test_npy.cpp).
  std::vector<float> v = {1.0f,
                          from_bits(0x3f808000),  // 1 + 2^-8: bf16 tie, even -> 1; exact in f16
                          from_bits(0x3f818000),  // 1 + 3*2^-8: bf16 tie, odd -> 1 + 2^-6; exact in f16
                          1.0f + 1.0f / 2048,     // f16 tie, even -> 1; bf16 -> 1
                          1.0f + 3.0f / 2048,     // f16 tie, odd -> 1 + 2^-9; bf16 -> 1
                          -2.5f,
                          3.14159265f,
                          0.0f};
  std::string path = write_f32("tio_round.npy", v);

  Tensor b = load_tensor(path, "--q", Layout::BSHD, "bf16");
  CHECK(b.dtype == ElemType::BF16);
  CHECK(b.file_dtype == ElemType::F32);
  std::vector<float> want_b = {1.0f, 1.0f, 1.0f + 1.0f / 64, 1.0f, 1.0f, -2.5f, 3.140625f, 0.0f};
  REQUIRE(b.data.size() == want_b.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(b.data[i] == want_b[i]);

  Tensor h = load_tensor(path, "--q", Layout::BSHD, "f16");
  CHECK(h.dtype == ElemType::F16);
  std::vector<float> want_h = {1.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 1.0f, 1.0f + 1.0f / 512, -2.5f, 3.140625f, 0.0f};
  for (size_t i = 0; i < v.size(); ++i) CHECK(h.data[i] == want_h[i]);

  // auto / f32 keep the float32 values as they are.
  for (const char* dt : {"auto", "f32"}) {
    Tensor f = load_tensor(path, "--q", Layout::BSHD, dt);
    CHECK(f.dtype == ElemType::F32);
    for (size_t i = 0; i < v.size(); ++i) CHECK(f.data[i] == v[i]);
  }

  // The bits the CUDA backend gets are the rounded values' own (exact), and equal float_to_bf16 of
  // the file's values.
  auto bits = to_16bit(b.data, ElemType::BF16);
  for (size_t i = 0; i < v.size(); ++i) {
    CHECK(bits[i] == float_to_bf16(v[i]));
    CHECK(bf16_to_float(bits[i]) == b.data[i]);
  }
  CHECK(to_16bit({1.0f + 3.0f / 256}, ElemType::BF16)[0] == 0x3f82);
  CHECK(to_16bit({1.0f + 3.0f / 2048}, ElemType::F16)[0] == 0x3c02);
  CHECK_THROWS_AS(to_16bit({1.0f}, ElemType::F32), std::logic_error);
}

TEST_CASE("load_tensor --dtype: overflow on rounding names the position; mismatched files rejected") {
  std::vector<float> v(8, 0.5f);
  v[6] = 70000.0f;  // [b=0, s=1, h=0, d=2]: finite in bf16, overflows f16 (max 65504)
  std::string path = write_f32("tio_overflow.npy", v);
  CHECK_THROWS_WITH_AS(load_tensor(path, "--k", Layout::BSHD, "f16"),
                       doctest::Contains("70000 at [b=0, s=1, h=0, d=2] overflows f16"), UsageError);
  Tensor b = load_tensor(path, "--k", Layout::BSHD, "bf16");
  CHECK(b.data[6] == 70144.0f);  // 70000 = 0x4788b800 -> 0x4789 (dropped 0xb800 > 0x8000: up)
  v[6] = std::numeric_limits<float>::max();
  path = write_f32("tio_overflow.npy", v);
  CHECK_THROWS_WITH_AS(load_tensor(path, "--k", Layout::BSHD, "bf16"), doctest::Contains("overflows bf16"), UsageError);

  // A float16 file is not reinterpreted as bf16, nor uint16 bits as f16.
  NpyArray h(DType::Float16, {1, 2, 1, 4});
  write_npy("tio_f16.npy", h);
  CHECK_THROWS_WITH_AS(load_tensor("tio_f16.npy", "--v", Layout::BSHD, "bf16"),
                       doctest::Contains("holds float16 but --dtype is bf16"), UsageError);
  CHECK_THROWS_WITH_AS(load_tensor("tio_f16.npy", "--v", Layout::BSHD, "f32"),
                       doctest::Contains("holds float16 but --dtype is f32"), UsageError);
  NpyArray u(DType::UInt16, {1, 2, 1, 4});
  write_npy("tio_u16.npy", u);
  CHECK_THROWS_WITH_AS(load_tensor("tio_u16.npy", "--v", Layout::BSHD, "f16"), doctest::Contains("--dtype bf16"),
                       UsageError);
  Tensor ub = load_tensor("tio_u16.npy", "--v", Layout::BSHD, "bf16");
  CHECK(ub.dtype == ElemType::BF16);
  CHECK(ub.file_dtype == ElemType::BF16);
}
