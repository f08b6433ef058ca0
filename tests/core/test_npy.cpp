// .npy: the writer is byte-identical to NumPy (golden headers below were written by NumPy 1.24,
// /usr/bin/python3: np.lib.format.write_array_header_1_0, which np.save uses); the reader is liberal
// but rejects truncated and corrupt files. tests/python/test_npy_interop.py checks whole files both ways.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/rng.h"

using namespace bsattn;

namespace {
struct Golden {
  DType t;
  std::vector<int64_t> shape;
  std::string bytes;
};
const Golden kGolden[] = {
    {DType::Bool, {1, 16, 64, 64}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (1, 16, 64, 64), }                                                 \n", 128)},
    {DType::Int32, {2, 3, 5}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3, 5), }                                                       \n", 128)},
    {DType::Int32, {7}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }                                                            \n", 128)},
    {DType::Float32, {}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), }                                                              \n", 128)},
    {DType::Bool, {1, 2, 1024, 1024}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (1, 2, 1024, 1024), }                                              \n", 128)},
    {DType::Float16, {3, 0, 2}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '<f2', 'fortran_order': False, 'shape': (3, 0, 2), }                                                       \n", 128)},
    {DType::Float64, {12345678901}, std::string("\x93NUMPY\x01\x00" "v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (12345678901,), }                                                  \n", 128)},
};

std::vector<uint8_t> bytes_of(const std::string& header, size_t data_bytes, uint8_t fill = 1) {
  std::vector<uint8_t> b(header.begin(), header.end());
  b.insert(b.end(), data_bytes, fill);
  return b;
}
// A header dict wrapped as format 1.0 or 2.0 with the given total padding.
std::string wrap(const std::string& dict, int major = 1) {
  std::string h = "\x93NUMPY";
  h += char(major);
  h += char(0);
  size_t n = dict.size();
  h += char(n & 0xff);
  h += char((n >> 8) & 0xff);
  if (major >= 2) h += std::string(2, '\0');
  return h + dict;
}
}  // namespace

TEST_CASE("npy header is byte-identical to NumPy's") {
  for (auto& g : kGolden) {
    CAPTURE(g.bytes);
    CHECK(npy_header(g.t, g.shape) == g.bytes);
  }
}

TEST_CASE("npy write/read round trip of every dtype, data after a 64-byte aligned header") {
  Rng rng(3);
  for (DType t : {DType::Bool, DType::Int8, DType::UInt8, DType::Int16, DType::UInt16, DType::Int32, DType::UInt32,
                  DType::Int64, DType::UInt64, DType::Float16, DType::Float32, DType::Float64}) {
    NpyArray a(t, {3, 5, 7});
    for (auto& byte : a.data) byte = t == DType::Bool ? uint8_t(rng.below(2)) : uint8_t(rng.below(256));
    std::string path = std::string("npy_rt_") + dtype_name(t) + ".npy";
    write_npy(path, a);
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t hlen = file[8] | (size_t(file[9]) << 8);
    CHECK((10 + hlen) % 64 == 0);
    auto b = read_npy(path);
    CHECK(b.dtype == t);
    CHECK(b.shape == a.shape);
    CHECK(b.data == a.data);
    std::remove(path.c_str());
  }
}

TEST_CASE("npy reader is liberal") {
  // Format 2.0, double quotes, another key order, no trailing comma, no padding.
  auto a = parse_npy(bytes_of(wrap("{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<i2\"}\n", 2), 12), "v2");
  CHECK(a.dtype == DType::Int16);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  // Python 2 long suffixes and '=' / '>' byte order on one-byte types.
  auto b = parse_npy(bytes_of(wrap("{'descr': '>u1', 'fortran_order': False, 'shape': (4L, 2L), }\n"), 8), "long");
  CHECK(b.dtype == DType::UInt8);
  CHECK(b.shape == std::vector<int64_t>{4, 2});
  auto c = parse_npy(bytes_of(wrap("{'descr': '=f4', 'fortran_order': False, 'shape': (3,), }" + std::string(300, ' ') + "\n"), 12), "pad");
  CHECK(c.dtype == DType::Float32);
  auto d = parse_npy(bytes_of(wrap("{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n"), 1), "scalar");
  CHECK(d.numel() == 1);
}

TEST_CASE("npy reader rejects truncated and corrupt files with a UsageError") {
  std::string good = wrap("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n");
  auto ok = bytes_of(good, 24);
  CHECK_NOTHROW(parse_npy(ok, "ok"));
  auto truncated = ok;
  truncated.resize(ok.size() - 1);
  CHECK_THROWS_WITH_AS(parse_npy(truncated, "t.npy"), doctest::Contains("truncated"), UsageError);
  auto extra = ok;
  extra.push_back(0);
  CHECK_THROWS_WITH_AS(parse_npy(extra, "e.npy"), doctest::Contains("after the data"), UsageError);
  std::vector<uint8_t> header_cut(ok.begin(), ok.begin() + 30);
  CHECK_THROWS_WITH_AS(parse_npy(header_cut, "h.npy"), doctest::Contains("truncated header"), UsageError);
  auto bad_magic = ok;
  bad_magic[1] = 'X';
  CHECK_THROWS_WITH_AS(parse_npy(bad_magic, "m.npy"), doctest::Contains("magic"), UsageError);
  CHECK_THROWS_AS(parse_npy(std::vector<uint8_t>(5, 0), "tiny.npy"), UsageError);
  auto v9 = ok;
  v9[6] = 9;
  CHECK_THROWS_WITH_AS(parse_npy(v9, "v9.npy"), doctest::Contains("version 9"), UsageError);
  auto reject = [](const std::string& dict, const char* what) {
    CHECK_THROWS_WITH_AS(parse_npy(bytes_of(wrap(dict), 64), "x.npy"), doctest::Contains(what), UsageError);
  };
  reject("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }\n", "fortran_order");
  reject("{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }\n", "big-endian");
  reject("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }\n", "dtype '<c8'");
  reject("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }\n", "structured");
  reject("{'descr': '<i4', 'fortran_order': False, 'shape': (2, -3), }\n", "not a non-negative integer");
  reject("{'descr': '<i4', 'fortran_order': False, }\n", "no 'shape'");
  reject("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n", "too large");
  CHECK_THROWS_WITH_AS(read_npy("no_such_file.npy"), doctest::Contains("no_such_file.npy"), UsageError);
}

TEST_CASE("half and bfloat16 conversions") {
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(1e6f) == 0x7c00);
  CHECK(float_to_half(5.9604645e-8f) == 0x0001);     // smallest subnormal
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);  // tie rounds to even
  CHECK(half_to_float(0x3555) == doctest::Approx(0.33325195).epsilon(1e-7));
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_float(0x4049) == doctest::Approx(3.140625));
  for (uint32_t h = 0; h < 0x7c00; h += 7) CHECK(float_to_half(half_to_float(uint16_t(h))) == h);
}

namespace {
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bool bf16_is_nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x007f) != 0; }
bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
}  // namespace

// Hand-computed: a bf16 is the upper 16 bits of a float32; the dropped 16 bits decide the rounding
// (below 0x8000 down, above up, exactly 0x8000 a tie that goes to the even upper half).
TEST_CASE("float_to_bf16: round to nearest even, ties, carries, overflow, inf, NaN, zeros, subnormals") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(from_bits(0x3f807fff)) == 0x3f80);  // just below the half: down
  CHECK(float_to_bf16(from_bits(0x3f808000)) == 0x3f80);  // 1 + 2^-8, a tie: 0x3f80 is even, stays
  CHECK(float_to_bf16(from_bits(0x3f808001)) == 0x3f81);  // just above the half: up
  CHECK(float_to_bf16(from_bits(0x3f818000)) == 0x3f82);  // 1 + 3*2^-8, a tie: 0x3f81 is odd, up to 0x3f82
  CHECK(float_to_bf16(1.0f + 3.0f / 256) == 0x3f82);      // the same value written as a number
  CHECK(float_to_bf16(from_bits(0xbf818000)) == 0xbf82);  // negative tie: magnitude rounds the same way
  CHECK(float_to_bf16(from_bits(0x3f80ffff)) == 0x3f81);  // mantissa carry
  CHECK(float_to_bf16(from_bits(0x3fffffff)) == 0x4000);  // carry into the exponent: 1.99999988 -> 2
  CHECK(float_to_bf16(3.140625f) == 0x4049);
  CHECK(float_to_bf16(3.14159265f) == 0x4049);  // 0x40490fdb: dropped 0x0fdb < 0x8000
  CHECK(float_to_bf16(0.0f) == 0x0000);
  CHECK(float_to_bf16(-0.0f) == 0x8000);
  CHECK(float_to_bf16(from_bits(0x00008000)) == 0x0000);  // subnormal tie, even: down
  CHECK(float_to_bf16(from_bits(0x00018000)) == 0x0002);  // subnormal tie, odd: up
  CHECK(float_to_bf16(from_bits(0x7f7f7fff)) == 0x7f7f);  // largest finite bf16 (3.3895e38)
  CHECK(float_to_bf16(from_bits(0x7f7f8000)) == 0x7f80);  // tie above it, 0x7f7f odd: overflows to inf
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::max()) == 0xff80);
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  // NaN stays NaN (never rounded into inf), sign kept: quiet NaN, a signalling NaN whose payload is
  // all in the dropped bits (truncation would give 0x7f80 = inf), and a negative NaN.
  CHECK(bf16_is_nan(float_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(bf16_is_nan(float_to_bf16(from_bits(0x7f800001))));
  CHECK(float_to_bf16(from_bits(0x7f800001)) < 0x8000);
  CHECK(bf16_is_nan(float_to_bf16(from_bits(0xffc00000))));
  CHECK(float_to_bf16(from_bits(0xffc00000)) >= 0x8000);
  CHECK(bf16_is_nan(float_to_bf16(from_bits(0x7fffffff))));
  // Every bf16 value converts back to itself (a sample of all 2^16 patterns, NaNs excluded).
  for (uint32_t b = 0; b < 0x10000; b += 3)
    if (!bf16_is_nan(uint16_t(b))) CHECK(float_to_bf16(bf16_to_float(uint16_t(b))) == b);
}

// Hand-computed: f16 has 10 mantissa bits, normal exponents 2^-14..2^15, subnormals in units of 2^-24.
TEST_CASE("float_to_half: round to nearest even, ties, overflow, inf, NaN, subnormals") {
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);      // tie, 0x3c00 even: down
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);      // tie, 0x3c01 odd: up
  CHECK(float_to_half(1.0f + 1.0f / 2048 + 1.0f / 65536) == 0x3c01);  // above the tie: up
  CHECK(float_to_half(-(1.0f + 3.0f / 2048)) == 0xbc02);
  CHECK(float_to_half(2047.0f / 1024) == 0x3fff);          // 1.9990234375, exact
  CHECK(float_to_half(4095.0f / 2048) == 0x4000);          // tie at the top of the binade, odd: carries to 2
  CHECK(float_to_half(65504.0f) == 0x7bff);                // largest finite
  CHECK(float_to_half(65519.0f) == 0x7bff);                // below the tie with 65536
  CHECK(float_to_half(65520.0f) == 0x7c00);                // the tie, 0x7bff odd: overflows to inf
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(half_is_nan(float_to_half(std::numeric_limits<float>::quiet_NaN())));
  CHECK(half_is_nan(float_to_half(from_bits(0x7f800001))));  // payload only in dropped bits: still NaN
  CHECK(float_to_half(0x1p-14f) == 0x0400);                   // smallest normal
  CHECK(float_to_half(1023.0f * 0x1p-24f) == 0x03ff);         // largest subnormal
  CHECK(float_to_half(1023.5f * 0x1p-24f) == 0x0400);         // tie, 0x03ff odd: up into the normals
  CHECK(float_to_half(0x1p-25f) == 0x0000);                   // half the smallest subnormal, tie: even 0
  CHECK(float_to_half(3.0f * 0x1p-25f) == 0x0002);            // 1.5 units, tie: even 2
  CHECK(float_to_half(0x1p-25f * 1.0001f) == 0x0001);         // above the tie
  CHECK(float_to_half(-0.0f) == 0x8000);
}
