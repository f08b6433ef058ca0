#include "lib/tensor/tensor_io.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/reference/cpu_attention.h"

namespace bsattn {

Layout parse_layout(const std::string& s) {
  if (s == "bshd") return Layout::BSHD;
  if (s == "bhsd") return Layout::BHSD;
  throw UsageError("--layout must be bshd or bhsd, got '" + s + "'");
}
const char* layout_name(Layout l) { return l == Layout::BSHD ? "bshd" : "bhsd"; }

namespace {
void check_fits_in_memory(const std::string& path, const std::string& what) {
  std::error_code ec;
  auto bytes = std::filesystem::file_size(path, ec);
  if (ec) throw UsageError(what + ": cannot read '" + path + "'");
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) {
    // The file, its f32 copy (up to 2x for 16-bit files) and the compute copies must fit.
    double need = double(bytes) * 4.0, have = double(pages) * double(page);
    if (need > have)
      throw UsageError(what + ": '" + path + "' is " + std::to_string(bytes >> 20) + " MiB; with its working copies it needs ~" +
                       std::to_string(int64_t(need / 1048576.0)) + " MiB but this machine has " +
                       std::to_string(int64_t(have / 1048576.0)) + " MiB of memory");
  }
}
}  // namespace

Tensor load_tensor(const std::string& path, const std::string& what, Layout layout, const std::string& dtype) {
  if (dtype != "auto" && dtype != "f32" && dtype != "f16" && dtype != "bf16")
    throw UsageError("--dtype must be auto, f32, f16 or bf16, got '" + dtype + "'");
  check_fits_in_memory(path, what);
  NpyArray a = read_npy(path);
  Tensor t;
  t.name = what + " " + path;
  ElemType et;
  if (a.dtype == DType::Float32) {
    et = ElemType::F32;
  } else if (a.dtype == DType::Float16) {
    et = ElemType::F16;
  } else if (a.dtype == DType::UInt16) {
    if (dtype != "bf16")
      throw UsageError(t.name + ": uint16 data is taken as bfloat16 bits only with --dtype bf16");
    et = ElemType::BF16;
  } else {
    throw UsageError(t.name + ": dtype " + std::string(dtype_name(a.dtype)) +
                     " is not supported (allowed: float32, float16, uint16 holding bfloat16 with --dtype bf16)");
  }
  // float32 files with --dtype f16 / bf16 are rounded to that type below; any other mismatch is an error.
  ElemType want = et;
  if (et == ElemType::F32 && (dtype == "f16" || dtype == "bf16"))
    want = dtype == "f16" ? ElemType::F16 : ElemType::BF16;
  else if (dtype != "auto" && dtype != elem_type_name(et))
    throw UsageError(t.name + ": the file holds " + dtype_name(a.dtype) + " but --dtype is " + dtype +
                     " (allowed with it: " + (dtype == "f32" ? "float32" : dtype == "f16" ? "float16 or float32" : "uint16 bf16 bits or float32") + ")");
  t.file_dtype = et;
  t.dtype = want;
  if (a.shape.size() != 3 && a.shape.size() != 4)
    throw UsageError(t.name + ": shape " + a.shape_str() + " must be 4-D [B,S,H,D] or 3-D [S,H,D]" +
                     (layout == Layout::BHSD ? " (in bhsd layout: [B,H,S,D] / [H,S,D])" : ""));
  std::vector<int64_t> s = a.shape;
  if (s.size() == 3) s.insert(s.begin(), 1);
  for (int64_t d : s)
    if (d <= 0) throw UsageError(t.name + ": shape " + a.shape_str() + " has an empty dimension");
  t.batch = s[0];
  t.seq = layout == Layout::BSHD ? s[1] : s[2];
  t.heads = layout == Layout::BSHD ? s[2] : s[1];
  t.dim = s[3];
  // BHSD: reorder the raw elements to BSHD first so that a bad value is reported as [b, s, h, d].
  std::vector<uint8_t> bytes;
  const uint8_t* src = a.data.data();
  if (layout == Layout::BHSD) {
    size_t es = elem_size(et), row = size_t(t.dim) * es;
    bytes.resize(a.data.size());
    for (int64_t b = 0; b < t.batch; ++b)
      for (int64_t h = 0; h < t.heads; ++h)
        for (int64_t q = 0; q < t.seq; ++q)
          std::memcpy(&bytes[size_t((b * t.seq + q) * t.heads + h) * row], src + size_t((b * t.heads + h) * t.seq + q) * row,
                      row);
    src = bytes.data();
  }
  t.data = convert_checked<float>(src, et, a.numel(), t.heads, t.dim, t.seq, t.name.c_str());
  if (want != et) {
    for (size_t e = 0; e < t.data.size(); ++e) {
      float x = t.data[e];
      float r = want == ElemType::BF16 ? bf16_to_float(float_to_bf16(x)) : half_to_float(float_to_half(x));
      if (!std::isfinite(r)) {
        int64_t d = int64_t(e) % t.dim, h = (int64_t(e) / t.dim) % t.heads, row = int64_t(e) / (t.dim * t.heads);
        char v[32];
        std::snprintf(v, sizeof v, "%g", double(x));
        throw UsageError(t.name + ": " + v + " at [b=" + std::to_string(row / t.seq) + ", s=" + std::to_string(row % t.seq) +
                         ", h=" + std::to_string(h) + ", d=" + std::to_string(d) + "] overflows " + elem_type_name(want) +
                         " (largest finite " + (want == ElemType::BF16 ? "3.39e38" : "65504") + "); scale the inputs or use --dtype f32");
      }
      t.data[e] = r;
    }
  }
  return t;
}

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (k.batch != v.batch || k.seq != v.seq || k.heads != v.heads || k.dim != v.dim)
    throw UsageError("K and V must have the same shape (" + k.name + " vs " + v.name + ")");
  if (q.batch != k.batch) throw UsageError("Q and K must have the same batch (" + q.name + " vs " + k.name + ")");
  if (q.dim != k.dim) throw UsageError("Q and K must have the same head_dim (" + q.name + " vs " + k.name + ")");
  if (q.heads % k.heads != 0)
    throw UsageError("Q heads (" + std::to_string(q.heads) + ") must be a multiple of K/V heads (" +
                     std::to_string(k.heads) + ")");
}

void save_array(const std::string& path, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  NpyArray a(DType::Float32, shape);
  if (a.numel() != int64_t(data.size())) throw std::logic_error("save_array: size mismatch");
  std::copy(data.begin(), data.end(), a.as<float>());
  write_npy(path, a);
}

void save_tensor(const std::string& path, const std::vector<float>& x, int64_t batch, int64_t seq, int64_t heads,
                 int64_t dim, Layout layout, bool packed) {
  std::vector<int64_t> shape;
  if (layout == Layout::BSHD) {
    shape = packed ? std::vector<int64_t>{seq, heads, dim} : std::vector<int64_t>{batch, seq, heads, dim};
    return save_array(path, x, shape);
  }
  shape = packed ? std::vector<int64_t>{heads, seq, dim} : std::vector<int64_t>{batch, heads, seq, dim};
  std::vector<float> t(x.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t q = 0; q < seq; ++q)
        std::copy_n(&x[size_t(((b * seq + q) * heads + h) * dim)], dim, &t[size_t(((b * heads + h) * seq + q) * dim)]);
  save_array(path, t, shape);
}

AttentionProblem problem_for(const Tensor& q, const Tensor& k) {
  AttentionProblem p;
  p.batch = q.batch;
  p.q_len = q.seq;
  p.kv_len = k.seq;
  p.heads_q = q.heads;
  p.heads_kv = k.heads;
  p.head_dim = q.dim;
  p.dtype = ElemType::F32;  // loaded tensors are exact f32 copies of f32/f16/bf16 files
  return p;
}

std::vector<uint16_t> to_16bit(const std::vector<float>& x, ElemType t) {
  if (t == ElemType::F32) throw std::logic_error("to_16bit: f32 is not a 16-bit type");
  std::vector<uint16_t> out(x.size());
  if (t == ElemType::BF16)
    for (size_t e = 0; e < x.size(); ++e) out[e] = float_to_bf16(x[e]);
  else
    for (size_t e = 0; e < x.size(); ++e) out[e] = float_to_half(x[e]);
  return out;
}

}  // namespace bsattn
