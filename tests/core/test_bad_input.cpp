// The general rules of issue 23 at the library level: sizes from input are overflow-checked against
// stated limits before anything is allocated (lib/sizes.h, MaskShape::validate, .json masks, sweep
// axes); files are validated from their header and length before their body is read (.npy, .json
// masks); CSR values are range-checked, never truncated; the outputs of a run appear all together or
// not at all (OutputSet).
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <fstream>
#include <string>

#include "lib/atomic_file.h"
#include "lib/error.h"
#include "lib/mask_io.h"
#include "lib/npy.h"
#include "lib/sizes.h"
#include "lib/spec.h"

using namespace bsattn;

namespace {

std::string scratch(const std::string& name) {
  std::string dir = std::string(BSATTN_TEST_DATA_DIR) + "/bad_input";
  ::mkdir(dir.c_str(), 0755);
  return dir + "/" + name;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// A .json mask with the given sizes and a bitmap of `bitmap_bytes` zero bytes (base64 "AAAA" per 3).
nlohmann::json mask_doc(int64_t heads, int64_t q_len, int64_t kv_len, int64_t bq, int64_t bkv, size_t bitmap_bytes) {
  nlohmann::json ht = nlohmann::json::array();
  for (int64_t h = 0; h < std::min<int64_t>(heads, 4); ++h) ht.push_back({{"type", "sparse"}});
  std::string data(bitmap_bytes / 3 * 4, 'A');
  return {{"schema", "bsattn.mask/v1"}, {"batch", 1}, {"heads", heads}, {"q_len", q_len}, {"kv_len", kv_len},
          {"block_q", bq}, {"block_kv", bkv}, {"causal", false}, {"head_types", ht},
          {"bitmap", {{"encoding", "packbits-base64"}, {"data", data}}}};
}

}  // namespace

TEST_CASE("checked_product: the product within the limit; past it or wrapping int64, a UsageError stating the limit") {
  CHECK(checked_product({3, 5, 7}, 1000, "x", "elements") == 105);
  CHECK(checked_product({0, INT64_MAX}, 10, "x", "elements") == 0);
  std::string m = message_of([] { checked_product({1 << 20, 1 << 20, 1 << 20}, kMaxTensorElements, "Q", "elements"); });
  CHECK(m.find("more than the limit of 2^32 elements") != std::string::npos);
  CHECK(m.find("1152921504606846976") != std::string::npos);  // the true product, 2^60
  // B*S*H*D that wraps int64 (the synthetic sizes) is refused, not wrapped into a small size.
  m = message_of([] { checked_product({1 << 20, 1 << 30, 1 << 16, 256}, kMaxTensorElements, "Q", "elements"); });
  CHECK(m.find("more than 2^63") != std::string::npos);
  CHECK_THROWS_AS(checked_mul(INT64_MAX, 2, "x"), UsageError);
  CHECK(ceil_div(INT64_MAX, 1 << 30) == INT64_MAX / (1 << 30) + 1);
  CHECK(limit_str(int64_t(1) << 36) == "2^36");
}

TEST_CASE("MaskShape: lengths near INT64_MAX are refused with the limit, never negative block counts (case 2)") {
  MaskShape s{1, 1, INT64_MAX, INT64_MAX, int64_t(1) << 30, int64_t(1) << 30};
  CHECK(s.mq() > 0);  // no overflow in ceil(q_len / block_q)
  CHECK(s.mq() == INT64_MAX / (int64_t(1) << 30) + 1);
  std::string m = message_of([&] { s.validate(); });
  CHECK(m.find("q_len") != std::string::npos);
  CHECK(m.find("2^40") != std::string::npos);
  MaskShape big{7, 1 << 20, int64_t(1) << 40, int64_t(1) << 40, 1 << 10, 1 << 10};
  m = message_of([&] { big.validate(); });
  CHECK(m.find("2^36 blocks") != std::string::npos);
}

TEST_CASE(".json mask: its sizes, head list and bitmap length are checked before the bitmap is allocated (case 3)") {
  // Under a 2 GiB address-space limit, a reader that allocated what these headers promise (2^35 blocks,
  // 32 GiB) would fail with bad_alloc instead of the UsageError.
  struct rlimit old;
  ::getrlimit(RLIMIT_AS, &old);
  struct rlimit lim = old;
  lim.rlim_cur = std::min<rlim_t>(old.rlim_max, rlim_t(2) << 30);
  bool limited = ::setrlimit(RLIMIT_AS, &lim) == 0;
  nlohmann::json heads7 = mask_doc(7, int64_t(1) << 21, int64_t(1) << 22, 1, 1 << 10, 3);  // head list of 4
  CHECK(message_of([&] { mask_from_json(heads7, "m.json"); }).find("head_types must list 7 heads") != std::string::npos);
  nlohmann::json short_bitmap = mask_doc(2, int64_t(1) << 22, int64_t(1) << 20, 1, 1 << 7, 30);
  short_bitmap["head_types"] = nlohmann::json::array({{{"type", "sparse"}}, {{"type", "sparse"}}});
  CHECK(message_of([&] { mask_from_json(short_bitmap, "m.json"); }).find("bitmap has 30 bytes") != std::string::npos);
  if (limited) ::setrlimit(RLIMIT_AS, &old);
  // The second example: q_len near INT64_MAX, refused naming the file and the field.
  nlohmann::json huge = mask_doc(1, INT64_MAX, INT64_MAX, int64_t(1) << 30, int64_t(1) << 30, 3);
  std::string m = message_of([&] { mask_from_json(huge, "m.json"); });
  CHECK(m.find("m.json") != std::string::npos);
  CHECK(m.find("q_len") != std::string::npos);
}

TEST_CASE("streaming heads: sink_blocks and local_blocks are range-checked against Mk (case 4)") {
  BlockMask m(MaskShape{1, 2, 256, 256, 64, 64});
  m.heads[0] = HeadInfo{HeadType::Streaming, 1, 2};
  nlohmann::json j = mask_to_json(m);
  // a consistent file loads
  fill_streaming(m.geometry(), 1, 2, m.head_bits(0, 0));
  j = mask_to_json(m);
  CHECK_NOTHROW(mask_from_json(j, "ok.json"));
  for (int64_t bad : {INT64_MIN, int64_t(-1), int64_t(5), INT64_MAX}) {
    nlohmann::json b = j;
    b["head_types"][0]["local_blocks"] = bad;
    std::string msg = message_of([&] { mask_from_json(b, "s.json"); });
    CHECK(msg.find("local_blocks") != std::string::npos);
    CHECK(msg.find("0..4") != std::string::npos);
    b = j;
    b["head_types"][0]["sink_blocks"] = bad;
    CHECK(message_of([&] { mask_from_json(b, "s.json"); }).find("sink_blocks") != std::string::npos);
  }
  // fill_streaming itself clamps, so no caller can make it index past a row
  std::vector<uint8_t> row(16, 7);
  fill_streaming(m.geometry(), INT64_MAX, INT64_MIN, row.data());
  CHECK(std::count(row.begin(), row.end(), 1) == 16);
}

TEST_CASE("CSR: int64 values past int32 are refused naming the file, never truncated (case 5)") {
  const std::string prefix = scratch("c64");
  NpyArray num(DType::Int64, {1, 1, 2}), idx(DType::Int64, {1, 1, 2, 2});
  num.as<int64_t>()[0] = 1, num.as<int64_t>()[1] = 1;
  idx.as<int64_t>()[0] = (int64_t(1) << 32) + 1;  // truncated to int32 this would read as 1
  idx.as<int64_t>()[2] = 0;
  write_npy(prefix + "_kv_num_blocks.npy", num);
  write_npy(prefix + "_kv_indices.npy", idx);
  MaskSizesHint hint;
  hint.block_q = hint.block_kv = 64;
  std::string m = message_of([&] { load_mask_csr(prefix, hint); });
  CHECK(m.find("c64_kv_indices.npy") != std::string::npos);
  CHECK(m.find("4294967297") != std::string::npos);
  idx.as<int64_t>()[0] = 1;  // in range: loads
  write_npy(prefix + "_kv_indices.npy", idx);
  BlockMask ok = load_mask_csr(prefix, hint);
  CHECK(ok.at(0, 0, 0, 1));
  CHECK(ok.at(0, 0, 1, 0));
}

TEST_CASE(".npy: the magic and the header are checked before the body is read; the length on disk must match (case 7)") {
  // A 6 GiB file that is not .npy (sparse: no disk space), refused at once.
  const std::string big = scratch("sparse.npy");
  {
    std::FILE* f = std::fopen(big.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(::ftruncate(::fileno(f), int64_t(6) << 30) == 0);
    std::fclose(f);
  }
  CHECK(message_of([&] { read_npy(big); }).find("magic") != std::string::npos);
  std::remove(big.c_str());
  // A header that promises 2^40 rows with 16 data bytes: refused from the length, nothing allocated.
  std::string h = npy_header(DType::Float32, {int64_t(1) << 40, 16});
  write_file(scratch("promise.npy"), h + std::string(16, '\0'));
  std::string m = message_of([&] { read_npy(scratch("promise.npy")); });
  CHECK(m.find("truncated") != std::string::npos);
  CHECK(m.find("the file has 16") != std::string::npos);
  // header cut short, and an empty file
  write_file(scratch("cut.npy"), h.substr(0, 20));
  CHECK(message_of([&] { read_npy(scratch("cut.npy")); }).find("truncated header") != std::string::npos);
  write_file(scratch("empty.npy"), "");
  CHECK(message_of([&] { read_npy(scratch("empty.npy")); }).find("magic") != std::string::npos);
  // a good file still reads, and the in-memory parser agrees
  NpyArray a(DType::Int32, {3});
  a.as<int32_t>()[2] = 42;
  write_npy(scratch("good.npy"), a);
  CHECK(read_npy(scratch("good.npy")).as<int32_t>()[2] == 42);
  std::string bytes = read_file(scratch("good.npy"));
  CHECK(parse_npy(std::vector<uint8_t>(bytes.begin(), bytes.end()), "good").as<int32_t>()[2] == 42);
}

TEST_CASE("sweep axes: start:stop:step is counted without overflow and capped (case 6)") {
  std::string m = message_of([] { parse_int_axis("1:9223372036854775807:1", "--seq"); });
  CHECK(m.find("more than 100000 values") != std::string::npos);
  // the last steps near INT64_MAX must not step past it (signed overflow)
  auto v = parse_int_axis("9223372036854775800:9223372036854775807:3", "--x");
  REQUIRE(v.size() == 3);
  CHECK(v.back() == 9223372036854775806);
  CHECK(parse_int_axis("-5:5:5", "--x") == std::vector<int64_t>{-5, 0, 5});
}

TEST_CASE("OutputSet: outputs are checked before any work; all appear at commit, none without it (cases 12, 13)") {
  const std::string a = scratch("out_a.txt"), b = scratch("out_b.txt");
  write_file(a, "old a\n");
  std::remove(b.c_str());
  {
    OutputSet outputs;
    outputs.add(a, "--a");
    outputs.add(b, "--b");
    CHECK(message_of([&] { outputs.add(scratch("nodir/x.npy"), "--csr"); }).find("--csr") != std::string::npos);
    CHECK(message_of([&] { outputs.add(scratch(""), "--json"); }).find("folder") != std::string::npos);
    CHECK(message_of([&] { outputs.add(a, "--c"); }).find("another output") != std::string::npos);
    write_text_file(a, "new a\n");
    write_text_file(b, "new b\n");
    // staged, not yet visible
    CHECK(read_file(a) == "old a\n");
    CHECK(!exists(b));
    // a run that fails here (the set is destroyed without commit) changes nothing and leaves nothing
  }
  CHECK(read_file(a) == "old a\n");
  CHECK(!exists(b));
  {
    OutputSet outputs;
    outputs.add(a, "--a");
    outputs.add(b, "--b");
    write_text_file(a, "new a\n");
    write_text_file(b, "new b\n");
    outputs.commit();
  }
  CHECK(read_file(a) == "new a\n");
  CHECK(read_file(b) == "new b\n");
  // no temporaries are left in the folder
  std::FILE* p = ::popen(("ls -a " + scratch("") + " | grep -c '\\.tmp\\.' || true").c_str(), "r");
  char buf[16] = {0};
  CHECK(std::fgets(buf, sizeof buf, p) != nullptr);
  ::pclose(p);
  CHECK(std::string(buf) == "0\n");
  // an output path that is a folder is a usage error (exit 2), also without a set
  CHECK_THROWS_AS(AtomicFile(scratch("")), UsageError);
  CHECK_THROWS_AS(AtomicFile(std::string(BSATTN_TEST_DATA_DIR)), UsageError);
}

TEST_CASE("OutputSet: a rename that fails at commit puts back every file already replaced") {
  const std::string a = scratch("keep_a.txt"), dir_b = scratch("becomes_a_folder");
  write_file(a, "old a\n");
  std::remove(dir_b.c_str());
  ::rmdir(dir_b.c_str());
  {
    OutputSet outputs;
    outputs.add(a, "--a");
    outputs.add(dir_b, "--b");
    write_text_file(a, "new a\n");
    write_text_file(dir_b, "new b\n");
    // After the checks, the second path turns into a non-empty folder: its rename must fail.
    REQUIRE(::mkdir(dir_b.c_str(), 0755) == 0);
    write_file(dir_b + "/inside", "x");
    CHECK_THROWS_AS(outputs.commit(), RuntimeFailure);
  }
  CHECK(read_file(a) == "old a\n");
  std::remove((dir_b + "/inside").c_str());
  ::rmdir(dir_b.c_str());
}

TEST_CASE(".json mask: integer fields must be int64 integers, not floats or values past 2^63-1 (found by fuzz_mask_json)") {
  BlockMask m(MaskShape{1, 2, 256, 256, 64, 64});
  nlohmann::json j = mask_to_json(m);
  for (const char* key : {"q_len", "heads", "block_kv"}) {
    for (nlohmann::json bad : {nlohmann::json(2.7777777777777778e+107), nlohmann::json(1.5), nlohmann::json(uint64_t(-1))}) {
      nlohmann::json b = j;
      b[key] = bad;
      std::string msg = message_of([&] { mask_from_json(b, "f.json"); });
      CHECK(msg.find(std::string("\"") + key + "\"") != std::string::npos);
    }
  }
  m.heads[0] = HeadInfo{HeadType::Streaming, 1, 1};
  fill_streaming(m.geometry(), 1, 1, m.head_bits(0, 0));
  nlohmann::json s = mask_to_json(m);
  s["head_types"][0]["local_blocks"] = 1e300;
  CHECK(message_of([&] { mask_from_json(s, "f.json"); }).find("local_blocks") != std::string::npos);
}
