// Parameter specs: "name:key=value,key=value" strings, typed parameter definitions with ranges and
// defaults, and value lists / ranges used by sweeps ("1,2,4" or "0.1:0.5:0.1").
//
// Grammar: SPEC := NAME [":" KEY "=" VALUE ("," KEY "=" VALUE)*]. A comma-separated item without
// "=" continues the previous value as a list ("rates=1,2,4,window=2" gives rates = 1,2,4).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bsattn {

struct Spec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> args;  // in the order given
  std::string str() const;                                // canonical "name:k=v,k=v"
};
// `what` names the option for error messages (e.g. "--pattern").
Spec parse_spec(const std::string& text, const std::string& what);

enum class ParamKind { Int, Float, Bool, String, IntList, FloatList, Dims };
const char* param_kind_name(ParamKind k);

struct ParamDef {
  std::string name;
  ParamKind kind = ParamKind::Int;
  std::string default_value;  // as the user would type it; "" means required (int/float/bool) or empty
  double min = -1e300, max = 1e300;  // inclusive range for numbers (each element of lists/dims)
  std::string help;
  std::vector<std::string> choices;  // String: allowed values (empty = any)
};

// Validated parameter values of one spec.
class Params {
 public:
  // Checks every key against `defs` (unknown key, bad number, out of range, missing required), fills
  // defaults. `owner` names the pattern for messages ("pattern 'local'").
  Params(const std::vector<ParamDef>& defs, const std::vector<std::pair<std::string, std::string>>& args,
         const std::string& owner);
  Params() = default;

  int64_t get_int(const std::string& k) const;
  double get_float(const std::string& k) const;
  bool get_bool(const std::string& k) const;
  const std::string& get_string(const std::string& k) const;
  std::vector<int64_t> get_int_list(const std::string& k) const;
  std::vector<double> get_float_list(const std::string& k) const;
  std::vector<int64_t> get_dims(const std::string& k) const;  // "13x30x45" -> {13,30,45}
  bool given(const std::string& k) const;                    // set by the user, not defaulted
  const std::map<std::string, std::string>& values() const { return values_; }
  nlohmann::json to_json() const;  // typed values, every parameter

 private:
  const ParamDef& def(const std::string& k) const;
  std::vector<ParamDef> defs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
  std::string owner_;
};

// The items of a list option's value ("0.1,0.5", "local;random"), split on `sep`. An empty item (a
// leading, trailing or doubled separator, or one of blanks only) and an empty value are refused
// naming `what` and showing `example`, a well-formed value of that option:
//   --density: empty item in '0.1,,0.5' (give comma-separated values, e.g. 0.1,0.5)
std::vector<std::string> split_list(const std::string& text, const std::string& what, const std::string& example,
                                    char sep = ',');

// Number parsing with the option name in the error.
int64_t parse_int(const std::string& s, const std::string& what);
double parse_float(const std::string& s, const std::string& what);  // rejects NaN/Inf
bool parse_bool(const std::string& s, const std::string& what);     // true/false/1/0/yes/no
std::vector<int64_t> parse_dims(const std::string& s, const std::string& what);  // "13x30x45"
// Sweep axes: "a,b,c" or "start:stop:step" (inclusive stop, within rounding) or a single value.
// `example` is a list shown when an item is empty (split_list).
std::vector<double> parse_float_axis(const std::string& s, const std::string& what,
                                     const std::string& example = "0.1,0.5");
std::vector<int64_t> parse_int_axis(const std::string& s, const std::string& what,
                                    const std::string& example = "64,128");

}  // namespace bsattn
