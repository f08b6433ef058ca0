// Typed errors: the library throws, only apps/bsattn/main.cpp turns them into exit codes.
#pragma once
#include <stdexcept>
#include <string>

namespace bsattn {

// Bad usage or bad input: exit status 2. The message names the option or file and what is allowed.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A failure at run time (out of GPU memory, a CUDA error, an I/O failure): exit status 1.
struct RuntimeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace bsattn
