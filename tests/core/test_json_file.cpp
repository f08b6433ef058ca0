// JSON read from the user's files: a file that is not JSON is named with the byte offset of the error,
// and nothing of it reaches the message but a short excerpt in printable ASCII.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "lib/error.h"
#include "lib/json_file.h"

using namespace bsattn;

namespace {

std::string message_of(const std::string& path, const std::string& what) {
  try {
    read_json_file(path, what);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool printable(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void write_file(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

}  // namespace

TEST_CASE("printable_ascii: bytes outside 0x20-0x7e become \\xHH") {
  CHECK(printable_ascii("ab c~") == "ab c~");
  CHECK(printable_ascii(std::string("\x89PNG\r\n\x1a\n\0", 9)) == "\\x89PNG\\x0d\\x0a\\x1a\\x0a\\x00");
  CHECK(printable_ascii("\x7f\xff") == "\\x7f\\xff");
  CHECK(printable_ascii("") == "");
}

TEST_CASE("read_json_file: a valid document is read") {
  write_file("json_file_ok.json", R"({"a": [1, 2]})");
  CHECK(read_json_file("json_file_ok.json", "--from")["a"][1] == 2);
  std::remove("json_file_ok.json");
}

TEST_CASE("read_json_file: a file that is not JSON is named with the byte offset and a printable excerpt") {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\x1b[2J", 20);
  for (int i = 0; i < 256; ++i) png += char(i);
  write_file("json_file_png.json", png);
  std::string m = message_of("json_file_png.json", "--from");
  CHECK(m.rfind("--from: 'json_file_png.json' is not valid JSON at byte offset 0 (", 0) == 0);
  CHECK(m.find("near '\\x89PNG\\x0d\\x0a\\x1a\\x0a\\x00\\x00\\x00\\x0dIHDR") != std::string::npos);
  CHECK(printable(m));
  CHECK(m.size() < 300);

  write_file("json_file_ctl.json", "{\"a\": 1, \"b\": \x01\x02 }");  // the error at the 0x01, offset 14
  m = message_of("json_file_ctl.json", "");
  CHECK(m.rfind("'json_file_ctl.json' is not valid JSON at byte offset 14 (", 0) == 0);
  CHECK(m.find("near '1, \"b\": \\x01\\x02 }'") != std::string::npos);
  CHECK(printable(m));

  write_file("json_file_utf8.json", "{\"a\": \"caf\xe9\"}");  // 0xe9 needs continuation bytes; '"' at 11 is not one
  m = message_of("json_file_utf8.json", "--config");
  CHECK(m.find("byte offset 11") != std::string::npos);
  CHECK(m.find("near '\": \"caf\\xe9\"}'") != std::string::npos);
  CHECK(printable(m));

  write_file("json_file_trunc.json", "{\"a\": 1,");
  CHECK(message_of("json_file_trunc.json", "").find("at byte offset 8 (") != std::string::npos);
  write_file("json_file_empty.json", "");
  m = message_of("json_file_empty.json", "");
  CHECK(m.find("at byte offset 0 (") != std::string::npos);
  CHECK(m.find("near") == std::string::npos);

  write_file("json_file_big.json", "[1e999]");
  CHECK(message_of("json_file_big.json", "--from") ==
        "--from: 'json_file_big.json' is not valid JSON (number overflow parsing '1e999')");
  for (const char* f : {"json_file_png.json", "json_file_ctl.json", "json_file_utf8.json", "json_file_trunc.json",
                        "json_file_empty.json", "json_file_big.json"})
    std::remove(f);
}
