#include "lib/npy.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "lib/atomic_file.h"
#include "lib/error.h"

namespace bsattn {

namespace {
struct DTypeInfo {
  DType t;
  size_t size;
  const char* descr;
  const char* name;
};
const DTypeInfo kTypes[] = {
    {DType::Bool, 1, "|b1", "bool"},       {DType::Int8, 1, "|i1", "int8"},
    {DType::UInt8, 1, "|u1", "uint8"},     {DType::Int16, 2, "<i2", "int16"},
    {DType::UInt16, 2, "<u2", "uint16"},   {DType::Int32, 4, "<i4", "int32"},
    {DType::UInt32, 4, "<u4", "uint32"},   {DType::Int64, 8, "<i8", "int64"},
    {DType::UInt64, 8, "<u8", "uint64"},   {DType::Float16, 2, "<f2", "float16"},
    {DType::Float32, 4, "<f4", "float32"}, {DType::Float64, 8, "<f8", "float64"},
};
const DTypeInfo& info(DType t) {
  for (auto& i : kTypes)
    if (i.t == t) return i;
  throw std::logic_error("unknown dtype");
}
constexpr int kGrowthAxisMaxDigits = 21;  // numpy.lib.format.GROWTH_AXIS_MAX_DIGITS
constexpr size_t kAlign = 64;             // numpy.lib.format.ARRAY_ALIGN
}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
const char* dtype_descr(DType t) { return info(t).descr; }
const char* dtype_name(DType t) { return info(t).name; }

NpyArray::NpyArray(DType t, std::vector<int64_t> s) : dtype(t), shape(std::move(s)) {
  data.assign(size_t(numel()) * dtype_size(t), 0);
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

static std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::string NpyArray::shape_str() const { return shape_repr(shape); }

std::string npy_header(DType t, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + dtype_descr(t) + "', 'fortran_order': False, 'shape': " +
                     shape_repr(shape) + ", }";
  if (!shape.empty()) dict += std::string(kGrowthAxisMaxDigits - std::to_string(shape[0]).size(), ' ');
  size_t hlen = dict.size() + 1;  // + '\n'
  size_t pad = kAlign - ((6 + 2 + 2 + hlen) % kAlign);
  if (pad == kAlign) pad = 0;
  dict += std::string(pad, ' ') + "\n";
  if (dict.size() > 65535) throw UsageError("array has too many dimensions for .npy format 1.0");
  std::string h = "\x93NUMPY";
  h += char(1);
  h += char(0);
  h += char(dict.size() & 0xff);
  h += char((dict.size() >> 8) & 0xff);
  return h + dict;
}

void write_npy(const std::string& path, const NpyArray& a) {
  if (a.data.size() != size_t(a.numel()) * dtype_size(a.dtype))
    throw std::logic_error("write_npy: data size does not match shape");
  AtomicFile f(path);
  f.write(npy_header(a.dtype, a.shape));
  f.write(a.data.data(), a.data.size());
  f.commit();
}

namespace {
// Finds "'key':" in the header dict and returns the text after it, trimmed.
std::string dict_value(const std::string& dict, const std::string& key, const std::string& name) {
  for (char q : {'\'', '"'}) {
    std::string k = std::string(1, q) + key + q;
    auto p = dict.find(k);
    if (p == std::string::npos) continue;
    p = dict.find(':', p + k.size());
    if (p == std::string::npos) break;
    ++p;
    while (p < dict.size() && dict[p] == ' ') ++p;
    return dict.substr(p);
  }
  throw UsageError("'" + name + "' is not a valid .npy file: header has no '" + key + "'");
}
constexpr uint64_t kMaxNpyDataBytes = uint64_t(1) << 50;
}  // namespace

NpyHeader parse_npy_header(const uint8_t* b, size_t size, const std::string& name, size_t* need) {
  auto bad = [&](const std::string& why) {
    return UsageError("'" + name + "' is not a valid .npy file: " + why);
  };
  NpyHeader h;
  // The magic is checked on whatever prefix there is, so a non-.npy file is refused at once.
  if (size == 0 || std::memcmp(b, "\x93NUMPY", std::min<size_t>(size, 6)) != 0)
    throw bad("missing the \\x93NUMPY magic");
  if (size < 10) {
    if (!need) throw bad("missing the \\x93NUMPY magic");
    *need = 10;
    return h;
  }
  int major = b[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = b[8] | (size_t(b[9]) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) {
      if (need) {
        *need = 12;
        return h;
      }
      throw bad("truncated header");
    }
    hlen = b[8] | (size_t(b[9]) << 8) | (size_t(b[10]) << 16) | (size_t(b[11]) << 24);
    off = 12;
    if (hlen > (size_t(1) << 20)) throw bad("header of " + std::to_string(hlen) + " bytes (at most 2^20)");
  } else {
    throw bad("format version " + std::to_string(major) + " (allowed: 1, 2, 3)");
  }
  if (size < off + hlen) {
    if (need) {
      *need = off + hlen;
      return h;
    }
    throw bad("truncated header");
  }
  if (need) *need = 0;
  std::string dict(reinterpret_cast<const char*>(b + off), hlen);

  std::string d = dict_value(dict, "descr", name);
  if (d.empty() || (d[0] != '\'' && d[0] != '"')) throw bad("structured dtypes are not supported");
  auto e = d.find(d[0], 1);
  if (e == std::string::npos) throw bad("unterminated descr");
  std::string descr = d.substr(1, e - 1);
  if (descr.size() >= 3 && std::string("<=|>").find(descr[0]) != std::string::npos) {
    std::string kind = descr.substr(1);
    bool one_byte = kind.back() == '1';
    if (descr[0] == '>' && !one_byte)
      throw bad("big-endian data ('" + descr + "') is not supported; allowed: little-endian");
    descr = (one_byte ? "|" : "<") + kind;
  }
  bool found = false;
  for (auto& i : kTypes)
    if (descr == i.descr) {
      h.dtype = i.t;
      found = true;
    }
  if (!found)
    throw bad("dtype '" + descr + "' (allowed: bool, int8/16/32/64, uint8/16/32/64, float16/32/64)");

  std::string fo = dict_value(dict, "fortran_order", name);
  if (fo.rfind("True", 0) == 0) throw bad("fortran_order=True (save with np.ascontiguousarray first)");
  if (fo.rfind("False", 0) != 0) throw bad("fortran_order is neither True nor False");

  std::string s = dict_value(dict, "shape", name);
  if (s.empty() || s[0] != '(') throw bad("shape is not a tuple");
  auto close = s.find(')');
  if (close == std::string::npos) throw bad("unterminated shape");
  std::string inner = s.substr(1, close - 1);
  std::stringstream ss(inner);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t p = tok.find_first_not_of(" L");
    if (p == std::string::npos) continue;
    size_t q = tok.find_last_not_of(" L");
    tok = tok.substr(p, q - p + 1);
    for (char c : tok)
      if (c < '0' || c > '9') throw bad("shape entry '" + tok + "' is not a non-negative integer");
    if (tok.size() > 15) throw bad("shape entry '" + tok + "' is too large");
    if (h.shape.size() >= 32) throw bad("more than 32 dimensions");
    h.shape.push_back(std::stoll(tok));
  }
  // Overflow-safe byte count (entries < 10^15, at most 32 of them): capped at 2^50 bytes.
  long double elems = 1;
  for (auto v : h.shape) elems *= (long double)v;
  long double want = elems * dtype_size(h.dtype);
  if (want > (long double)kMaxNpyDataBytes) {
    std::string shape = "(";
    for (size_t i = 0; i < h.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(h.shape[i]);
    throw bad("shape " + shape + ") is too large: it needs more than the limit of 2^50 data bytes");
  }
  h.data_offset = off + hlen;
  h.data_bytes = uint64_t(want);
  return h;
}

static void check_data_length(const NpyHeader& h, uint64_t have, const std::string& name) {
  auto shape = [&] {
    NpyArray a;
    a.shape = h.shape;
    return a.shape_str();
  };
  if (have < h.data_bytes)
    throw UsageError("'" + name + "' is not a valid .npy file: truncated: shape " + shape() + " needs " +
                     std::to_string(h.data_bytes) + " data bytes, the file has " + std::to_string(have));
  if (have > h.data_bytes)
    throw UsageError("'" + name + "' is not a valid .npy file: has " + std::to_string(have - h.data_bytes) +
                     " bytes after the data of shape " + shape());
}

namespace {
// Opens `path` and reads its header, checked against the file's length; `in` is left open.
NpyHeader open_npy(const std::string& path, std::ifstream& in) {
  in.open(path, std::ios::binary);
  if (!in) throw UsageError("cannot read '" + path + "': no such file or not readable");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw UsageError("cannot read '" + path + "': not a regular file (allowed: a .npy file)");
  const uint64_t file_bytes = uint64_t(st.st_size);
  // Read the fixed part, then exactly the header it announces; the data only once the header and the
  // file's length agree.
  std::vector<uint8_t> head(std::min<uint64_t>(file_bytes, 12));
  in.read(reinterpret_cast<char*>(head.data()), std::streamsize(head.size()));
  size_t need = 0;
  parse_npy_header(head.data(), head.size(), path, &need);
  if (need > head.size()) {
    if (need > file_bytes)
      throw UsageError("'" + path + "' is not a valid .npy file: truncated header");
    size_t had = head.size();
    head.resize(need);
    in.read(reinterpret_cast<char*>(head.data() + had), std::streamsize(need - had));
    if (!in) throw RuntimeFailure("reading '" + path + "' failed");
  }
  NpyHeader h = parse_npy_header(head.data(), head.size(), path);
  check_data_length(h, file_bytes - h.data_offset, path);
  return h;
}
}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  std::ifstream in;
  return open_npy(path, in);
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in;
  NpyHeader h = open_npy(path, in);
  NpyArray a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  a.data.resize(size_t(h.data_bytes));
  in.seekg(std::streamoff(h.data_offset));
  if (h.data_bytes && !in.read(reinterpret_cast<char*>(a.data.data()), std::streamsize(h.data_bytes)))
    throw RuntimeFailure("reading '" + path + "' failed (the file changed while it was read?)");
  return a;
}

NpyArray parse_npy(const std::vector<uint8_t>& b, const std::string& name) {
  NpyHeader h = parse_npy_header(b.data(), b.size(), name);
  check_data_length(h, b.size() - h.data_offset, name);
  NpyArray a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  a.data.assign(b.begin() + std::ptrdiff_t(h.data_offset), b.end());
  return a;
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp(float(man), -24);
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = std::ldexp(float(man | 0x400), int(exp) - 25);
  return sign ? -v : v;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) return sign | (ax > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (ax >= 0x477ff000) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (ax < 0x38800000) {                        // subnormal half (or zero)
    float af;
    std::memcpy(&af, &ax, 4);
    float scaled = af * 16777216.0f;  // 2^24: units of the smallest subnormal
    return sign | uint16_t(std::nearbyint(scaled));
  }
  uint32_t man = ax & 0x7fffff;
  int32_t exp = int32_t(ax >> 23) - 127 + 15;
  uint32_t h = (uint32_t(exp) << 10) | (man >> 13);
  uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return sign | uint16_t(h);
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

}  // namespace bsattn
