#include "lib/mask_io.h"

#include <fstream>
#include <tuple>

#include "lib/atomic_file.h"
#include "lib/error.h"
#include "lib/json_file.h"
#include "lib/npy.h"

namespace bsattn {

namespace {
bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<uint8_t>& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(in[i]) << 16) | (uint32_t(in[i + 1]) << 8) | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint32_t(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& s, const std::string& what) {
  int8_t map[256];
  std::fill(std::begin(map), std::end(map), int8_t(-1));
  for (int i = 0; i < 64; ++i) map[uint8_t(kB64[i])] = int8_t(i);
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    if (c == '\n' || c == ' ') continue;
    int8_t v = map[uint8_t(c)];
    if (v < 0) throw UsageError(what + ": bitmap data is not valid base64");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t((acc >> bits) & 0xff));
    }
  }
  return out;
}

// An integer field of a .json mask. nlohmann's get<int64_t> converts a floating-point number with a
// cast (undefined past int64, silently truncated otherwise) and wraps unsigned values past INT64_MAX,
// so anything but an int64-representable integer is refused, naming the field.
int64_t json_int(const nlohmann::json& j, const char* key, const std::string& what) {
  const nlohmann::json& v = j.at(key);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw UsageError(what + ": \"" + key + "\" = " + v.dump() + " is out of range (at most 2^63-1)");
  if (!v.is_number_integer())
    throw UsageError(what + ": \"" + key + "\" must be an integer, got " + v.dump().substr(0, 40));
  return v.get<int64_t>();
}

MaskShape shape_from_hint(int64_t B, int64_t H, int64_t mq, int64_t mk, const MaskSizesHint& h,
                          const std::string& what) {
  MaskShape s;
  s.batch = B;
  s.heads = H;
  s.block_q = h.block_q.value_or(128);
  s.block_kv = h.block_kv.value_or(s.block_q);
  s.q_len = h.q_len.value_or(mq * s.block_q);
  s.kv_len = h.kv_len.value_or(h.q_len && !h.kv_len ? s.q_len : mk * s.block_kv);
  try {
    s.validate();
  } catch (const UsageError& e) {
    throw UsageError(what + ": " + e.what());
  }
  if (s.mq() != mq || s.mk() != mk)
    throw UsageError(what + ": holds " + std::to_string(mq) + "x" + std::to_string(mk) +
                     " blocks per head, but q_len=" + std::to_string(s.q_len) + ", kv_len=" +
                     std::to_string(s.kv_len) + " with blocks " + std::to_string(s.block_q) + "x" +
                     std::to_string(s.block_kv) + " need " + std::to_string(s.mq()) + "x" + std::to_string(s.mk()));
  return s;
}

void finish_loaded(BlockMask& m, bool causal) {
  m.causal = causal;
  if (causal) m.apply_causal();
  m.normalize_head_types();
}
}  // namespace

void save_mask_npy(const std::string& path, const BlockMask& m) {
  NpyArray a(DType::Bool, {m.shape.batch, m.shape.heads, m.shape.mq(), m.shape.mk()});
  std::copy(m.bits.begin(), m.bits.end(), a.data.begin());
  write_npy(path, a);
}

std::vector<std::string> mask_csr_paths(const std::string& prefix) {
  std::vector<std::string> out;
  for (const char* name : {"kv_num_blocks", "kv_indices", "q_num_blocks", "q_indices"})
    out.push_back(prefix + "_" + name + ".npy");
  return out;
}

void save_mask_csr(const std::string& prefix, const BlockMask& m) {
  auto write = [&](const std::string& name, const std::vector<int64_t>& shape, const std::vector<int32_t>& v) {
    NpyArray a(DType::Int32, shape);
    std::memcpy(a.data.data(), v.data(), v.size() * 4);
    write_npy(prefix + "_" + name + ".npy", a);
  };
  auto r = row_csr(m);
  write("kv_num_blocks", r.counts_shape, r.num_blocks);
  write("kv_indices", r.indices_shape, r.indices);
  auto c = column_csr(m);
  write("q_num_blocks", c.counts_shape, c.num_blocks);
  write("q_indices", c.indices_shape, c.indices);
}

nlohmann::json mask_to_json(const BlockMask& m) {
  nlohmann::json j;
  j["schema"] = "bsattn.mask/v1";
  j["batch"] = m.shape.batch;
  j["heads"] = m.shape.heads;
  j["q_len"] = m.shape.q_len;
  j["kv_len"] = m.shape.kv_len;
  j["block_q"] = m.shape.block_q;
  j["block_kv"] = m.shape.block_kv;
  j["mq"] = m.shape.mq();
  j["mk"] = m.shape.mk();
  j["causal"] = m.causal;
  auto& ht = j["head_types"] = nlohmann::json::array();
  for (auto& h : m.heads) {
    nlohmann::json e = {{"type", head_type_name(h.type)}};
    if (h.type == HeadType::Streaming) {
      e["sink_blocks"] = h.sink_blocks;
      e["local_blocks"] = h.local_blocks;
    }
    ht.push_back(e);
  }
  j["spec"] = m.spec.is_null() ? nlohmann::json::object() : m.spec;
  // Bits in C order of [B,H,Mq,Mk], packed 8 per byte, most significant bit first (numpy.packbits).
  std::vector<uint8_t> packed((m.bits.size() + 7) / 8, 0);
  for (size_t k = 0; k < m.bits.size(); ++k)
    if (m.bits[k]) packed[k >> 3] |= uint8_t(0x80 >> (k & 7));
  j["bitmap"] = {{"encoding", "packbits-base64"}, {"shape", {m.shape.batch, m.shape.heads, m.shape.mq(), m.shape.mk()}},
                 {"data", base64_encode(packed)}};
  return j;
}

void save_mask_json(const std::string& path, const BlockMask& m) { write_text_file(path, mask_to_json(m).dump(1) + "\n"); }

BlockMask mask_from_json(const nlohmann::json& j, const std::string& what) {
  try {
    if (!j.is_object() || j.value("schema", "") != "bsattn.mask/v1")
      throw UsageError(what + ": not a bsattn mask (expected \"schema\": \"bsattn.mask/v1\")");
    MaskShape s;
    s.batch = json_int(j, "batch", what);
    s.heads = json_int(j, "heads", what);
    s.q_len = json_int(j, "q_len", what);
    s.kv_len = json_int(j, "kv_len", what);
    s.block_q = json_int(j, "block_q", what);
    s.block_kv = json_int(j, "block_kv", what);
    try {
      s.validate();
    } catch (const UsageError& e) {
      throw UsageError(what + ": " + e.what());
    }
    // mq, mk and the bitmap's shape repeat what the sizes imply; where a file gives them they must
    // agree, since a file that contradicts itself was edited or damaged and which part is right
    // cannot be told.
    const std::vector<int64_t> expect{s.batch, s.heads, s.mq(), s.mk()};
    for (auto [key, value] : {std::pair<const char*, int64_t>{"mq", s.mq()}, {"mk", s.mk()}})
      if (j.contains(key) && json_int(j, key, what) != value)
        throw UsageError(what + ": \"" + key + "\" = " + j.at(key).dump() + " disagrees with the sizes, which give " +
                         std::to_string(value) + " blocks");
    if (j.at("bitmap").contains("shape")) {
      const auto& shape = j.at("bitmap").at("shape");
      bool same = shape.is_array() && shape.size() == expect.size();
      for (size_t d = 0; same && d < expect.size(); ++d)
        same = shape[d].is_number_integer() && shape[d].get<int64_t>() == expect[d];
      if (!same)
        throw UsageError(what + ": bitmap shape " + shape.dump().substr(0, 60) + " disagrees with the sizes, which give [" +
                         std::to_string(expect[0]) + "," + std::to_string(expect[1]) + "," +
                         std::to_string(expect[2]) + "," + std::to_string(expect[3]) + "]");
    }
    // Everything the file says is checked against its own sizes before the bitmap is allocated: the
    // head list, each streaming head's numbers, and the bitmap's length, which bounds the allocation
    // by the size of the file.
    const bool causal = j.at("causal").get<bool>();
    auto& ht = j.at("head_types");
    if (!ht.is_array() || int64_t(ht.size()) != s.heads)
      throw UsageError(what + ": head_types must list " + std::to_string(s.heads) + " heads");
    std::vector<HeadInfo> heads(size_t(s.heads));
    for (int64_t h = 0; h < s.heads; ++h) {
      heads[h].type = parse_head_type(ht[h].at("type").get<std::string>());
      if (heads[h].type == HeadType::Streaming) {
        heads[h].sink_blocks = json_int(ht[h], "sink_blocks", what);
        heads[h].local_blocks = json_int(ht[h], "local_blocks", what);
      }
      check_head_info(heads[h], s, h, what);
    }
    auto& bm = j.at("bitmap");
    if (bm.at("encoding").get<std::string>() != "packbits-base64")
      throw UsageError(what + ": bitmap encoding must be packbits-base64");
    auto packed = base64_decode(bm.at("data").get<std::string>(), what);
    const int64_t cells = s.cells();  // validate() bounded it
    if (int64_t(packed.size()) != (cells + 7) / 8)
      throw UsageError(what + ": bitmap has " + std::to_string(packed.size()) + " bytes, sizes need " +
                       std::to_string((cells + 7) / 8));
    BlockMask m(s);
    m.causal = causal;
    m.heads = heads;
    m.spec = j.value("spec", nlohmann::json::object());
    for (size_t k = 0; k < m.bits.size(); ++k) m.bits[k] = (packed[k >> 3] >> (7 - (k & 7))) & 1;
    try {
      m.check_consistency();
    } catch (const std::logic_error& e) {
      throw UsageError(what + ": " + e.what());
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(what + ": malformed bsattn.mask/v1 (" + std::string(e.what()) + ")");
  }
}

BlockMask mask_from_npy(const NpyArray& a, const MaskSizesHint& hint, const std::string& what) {
  std::vector<int64_t> sh = a.shape;
  if (sh.size() < 2 || sh.size() > 4)
    throw UsageError(what + ": mask must have shape [B,H,Mq,Mk], [H,Mq,Mk] or [Mq,Mk], got " + a.shape_str());
  while (sh.size() < 4) sh.insert(sh.begin(), 1);
  for (auto d : sh)
    if (d <= 0) throw UsageError(what + ": mask shape " + a.shape_str() + " has an empty dimension");
  BlockMask m(shape_from_hint(sh[0], sh[1], sh[2], sh[3], hint, what));
  auto n = m.bits.size();
  switch (a.dtype) {
    case DType::Bool:
    case DType::UInt8:
    case DType::Int8:
      for (size_t k = 0; k < n; ++k) {
        if (a.data[k] > 1) throw UsageError(what + ": mask values must be 0 or 1");
        m.bits[k] = a.data[k];
      }
      break;
    case DType::Int32:
    case DType::Int64: {
      for (size_t k = 0; k < n; ++k) {
        int64_t v = a.dtype == DType::Int32 ? a.as<int32_t>()[k] : a.as<int64_t>()[k];
        if (v != 0 && v != 1) throw UsageError(what + ": mask values must be 0 or 1");
        m.bits[k] = uint8_t(v);
      }
      break;
    }
    default:
      throw UsageError(what + ": mask dtype " + dtype_name(a.dtype) + " (allowed: bool, uint8, int8, int32, int64)");
  }
  finish_loaded(m, hint.causal);
  return m;
}

BlockMask mask_from_csr(const NpyArray& num, const NpyArray& idx, const MaskSizesHint& hint,
                        const std::string& num_name, const std::string& idx_name) {
  const std::string what = num_name + " / " + idx_name;
  // int64 files (torch's default integer type) are narrowed only after every value is checked to
  // fit int32: a count or index past 2^31-1 is refused, never truncated into a plausible one.
  auto to32 = [&](const NpyArray& a, const std::string& file) {
    std::vector<int32_t> v(size_t(a.numel()));
    if (a.dtype == DType::Int32) {
      if (!v.empty()) std::memcpy(v.data(), a.data.data(), v.size() * 4);
    } else if (a.dtype == DType::Int64) {
      for (size_t k = 0; k < v.size(); ++k) {
        int64_t x;
        std::memcpy(&x, a.data.data() + k * 8, 8);
        if (x < 0 || x > INT32_MAX)
          throw UsageError(file + ": entry " + std::to_string(k) + " = " + std::to_string(x) +
                           " is out of range [0, 2^31-1] (counts and block indices)");
        v[k] = int32_t(x);
      }
    } else {
      throw UsageError(file + ": dtype must be int32 or int64");
    }
    return v;
  };
  if (num.shape.size() != 3) throw UsageError(num_name + ": shape must be [B,H,Mq]");
  if (idx.shape.size() != 4) throw UsageError(idx_name + ": shape must be [B,H,Mq,Mk]");
  MaskShape s = shape_from_hint(num.shape[0], num.shape[1], num.shape[2], idx.shape[3], hint, what);
  BlockCSR c;
  c.counts_shape = num.shape;
  c.indices_shape = idx.shape;
  // The shapes are checked against the mask before any value is converted.
  if (c.counts_shape != std::vector<int64_t>{s.batch, s.heads, s.mq()} || idx.shape[0] != s.batch ||
      idx.shape[1] != s.heads || idx.shape[2] != s.mq())
    throw UsageError(what + ": kv_num_blocks [B,H,Mq] and kv_indices [B,H,Mq,N] must agree in B, H and Mq");
  c.num_blocks = to32(num, num_name);
  c.indices = to32(idx, idx_name);
  BlockMask m = mask_from_row_csr(s, c, what);
  finish_loaded(m, hint.causal);
  return m;
}

BlockMask load_mask_csr(const std::string& prefix, const MaskSizesHint& hint) {
  const std::string num_name = prefix + "_kv_num_blocks.npy", idx_name = prefix + "_kv_indices.npy";
  return mask_from_csr(read_npy(num_name), read_npy(idx_name), hint, num_name, idx_name);
}

BlockMask load_mask(const std::string& path, const MaskSizesHint& hint) {
  if (ends_with(path, ".json")) {
    const nlohmann::json j = read_json_file(path, "");
    const std::string what = "'" + path + "'";
    BlockMask m = mask_from_json(j, what);
    // The file carries its block sizes and causal flag; one given on the command line that says
    // otherwise would be silently overruled.
    if (hint.causal && !m.causal)
      throw UsageError("--causal: " + what + " is not causal (a .json mask carries its own causal flag; leave out " +
                       "--causal, or make the mask with --causal)");
    for (auto [side, given, has] : {std::tuple<const char*, std::optional<int64_t>, int64_t>{"q", hint.block_q, m.shape.block_q},
                                    {"kv", hint.block_kv, m.shape.block_kv}})
      if (given && *given != has)
        throw UsageError(std::string("--block-") + side + " (or --block) " + std::to_string(*given) + ": " + what +
                         " has block_" + side + " " + std::to_string(has) +
                         " (a .json mask carries its own block sizes; leave the option out)");
    return m;
  }
  if (ends_with(path, ".npy")) return mask_from_npy(read_npy(path), hint, "'" + path + "'");
  std::ifstream probe(path + "_kv_num_blocks.npy");
  if (probe) return load_mask_csr(path, hint);
  throw UsageError("cannot load mask '" + path + "' (allowed: FILE.npy, FILE.json, or a CSR prefix P with P_kv_num_blocks.npy)");
}

void save_mask(const std::string& path, const BlockMask& m) {
  if (ends_with(path, ".npy")) return save_mask_npy(path, m);
  if (ends_with(path, ".json")) return save_mask_json(path, m);
  throw UsageError("output '" + path + "' must end in .npy or .json");
}

}  // namespace bsattn
