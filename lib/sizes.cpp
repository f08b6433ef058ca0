#include "lib/sizes.h"

#include "lib/error.h"

namespace bsattn {

std::string limit_str(int64_t v) {
  if (v > 1024 && (v & (v - 1)) == 0) {
    int e = 0;
    while ((int64_t(1) << e) != v) ++e;
    return "2^" + std::to_string(e);
  }
  return std::to_string(v);
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  __int128 p = (__int128)a * b;
  if (p > INT64_MAX || p < INT64_MIN)
    throw UsageError(what + ": " + std::to_string(a) + " x " + std::to_string(b) + " overflows a 64-bit size");
  return int64_t(p);
}

int64_t checked_product(std::initializer_list<int64_t> factors, int64_t limit, const std::string& what,
                        const std::string& unit) {
  // 128 bits hold the product of two int64 values; once past 2^63 the product is only reported as
  // "more than 2^63", so multiplying stops there (and never overflows the 128 bits).
  __int128 p = 1;
  std::string shown;
  bool zero = false;
  for (int64_t f : factors) {
    if (f < 0) throw UsageError(what + ": size " + std::to_string(f) + " is negative");
    shown += (shown.empty() ? "" : " x ") + std::to_string(f);
    if (f == 0) zero = true;
    if (p <= INT64_MAX) p *= f;
  }
  if (zero) return 0;
  if (p > limit) {
    std::string n = p > INT64_MAX ? std::string("more than 2^63") : std::to_string(int64_t(p));
    throw UsageError(what + " (" + shown + ") is too large: " + n + " " + unit + ", more than the limit of " +
                     limit_str(limit) + " " + unit);
  }
  return int64_t(p);
}

void check_range(int64_t v, int64_t lo, int64_t hi, const std::string& what) {
  if (v < lo || v > hi)
    throw UsageError(what + " = " + std::to_string(v) + " is out of range [" + limit_str(lo) + ", " + limit_str(hi) + "]");
}

}  // namespace bsattn
