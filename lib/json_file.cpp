#include "lib/json_file.h"

#include <algorithm>
#include <cstdio>

#include "lib/atomic_file.h"
#include "lib/error.h"

namespace bsattn {

std::string printable_ascii(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

namespace {

constexpr size_t kExcerptBytes = 16;  // of the file around the error, 8 before it
constexpr size_t kMaxReason = 160;

// nlohmann's explanation without its "[json.exception...] parse error at line L, column C: " head and
// without "; last read: '...'", which quotes the file's bytes as they are.
std::string parse_error_reason(const nlohmann::json::exception& e) {
  std::string s = e.what();
  const size_t head = s.find(": ");
  if (head != std::string::npos) s = s.substr(head + 2);
  else if (s.find("] ") != std::string::npos) s = s.substr(s.find("] ") + 2);
  const size_t last_read = s.find("; last read: ");
  if (last_read != std::string::npos) {
    const size_t expected = s.rfind("; expected ");
    s = s.substr(0, last_read) + (expected != std::string::npos && expected > last_read ? s.substr(expected) : "");
  }
  return printable_ascii(s.substr(0, kMaxReason));
}

}  // namespace

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  const std::string text = read_text_file(path);
  const std::string name = (what.empty() ? "" : what + ": ") + "'" + path + "' is not valid JSON";
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const size_t at = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const size_t from = at > kExcerptBytes / 2 ? at - kExcerptBytes / 2 : 0;
    const std::string near = printable_ascii(text.substr(from, kExcerptBytes));
    throw UsageError(name + " at byte offset " + std::to_string(at) + " (" + parse_error_reason(e) + ")" +
                     (near.empty() ? "" : ", near '" + near + "'"));
  } catch (const nlohmann::json::exception& e) {  // a number past double's range (1e999)
    throw UsageError(name + " (" + parse_error_reason(e) + ")");
  }
}

}  // namespace bsattn
