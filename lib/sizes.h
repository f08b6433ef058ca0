// Overflow-checked size arithmetic for every size that comes from input (command-line sizes, file
// headers, sweep axes). A product is computed in 128 bits and compared with a stated limit before
// anything is allocated, so a request that wraps int64 or needs more memory than bsattn allows is a
// UsageError naming what was asked for and the limit, never a wrapped size or a huge allocation.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

namespace bsattn {

// Limits of the library (not of a kernel): what a request computed from input may reach.
// Tokens of one sequence (q_len, kv_len, --seq): 2^40.
constexpr int64_t kMaxTokens = int64_t(1) << 40;
// Elements of one host tensor (Q, K, V, O, a gradient): 2^32, 16 GiB of float32.
constexpr int64_t kMaxTensorElements = int64_t(1) << 32;
// Blocks of one mask bitmap [B,H,Mq,Mk]: 2^36 (64 GiB of bytes would be the next step up).
constexpr int64_t kMaxMaskBlocks = int64_t(1) << 36;
// Values one sweep axis (start:stop:step) may expand to.
constexpr int64_t kMaxAxisValues = 100000;
// A limit of the CUDA kernels that the library plans around: CUDA's grid y and z dimensions, which the
// kernels that launch a CTA row per query head and per sequence give those two counts.
constexpr int64_t kMaxGridDim = 65535;

// a * b, or UsageError "WHAT: A x B overflows ..." when the product leaves int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);
// The product of non-negative factors; UsageError "WHAT (f1 x f2 x ...) = N is more than the limit L"
// when it exceeds `limit` (or overflows). `unit` names what is counted ("elements", "blocks").
int64_t checked_product(std::initializer_list<int64_t> factors, int64_t limit, const std::string& what,
                        const std::string& unit);
// ceil(a / b) for a >= 0, b > 0 without forming a + b - 1 (which overflows near INT64_MAX).
inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
// Checks lo <= v <= hi; UsageError "WHAT = V is out of range [LO, HI]".
void check_range(int64_t v, int64_t lo, int64_t hi, const std::string& what);
// "2^40" for powers of two, else the decimal number: limits read the way they are defined.
std::string limit_str(int64_t v);

}  // namespace bsattn
