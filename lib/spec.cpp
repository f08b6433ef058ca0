#include "lib/spec.h"

#include <cmath>
#include <sstream>

#include "lib/error.h"
#include "lib/sizes.h"

namespace bsattn {

static std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

static std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::stringstream ss(s);
  while (std::getline(ss, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

std::vector<std::string> split_list(const std::string& text, const std::string& what, const std::string& example,
                                    char sep) {
  const std::string form = (sep == ',' ? std::string("comma") : "'" + std::string(1, sep) + "'") +
                           "-separated values, e.g. " + example;
  if (trim(text).empty()) throw UsageError(what + ": empty value (give " + form + ")");
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (trim(out.back()).empty()) throw UsageError(what + ": empty item in '" + text + "' (give " + form + ")");
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

std::string Spec::str() const {
  std::string s = name;
  for (size_t i = 0; i < args.size(); ++i) s += (i ? "," : ":") + args[i].first + "=" + args[i].second;
  return s;
}

Spec parse_spec(const std::string& text, const std::string& what) {
  Spec sp;
  auto colon = text.find(':');
  sp.name = trim(text.substr(0, colon));
  if (sp.name.empty()) throw UsageError(what + ": '" + text + "' has no pattern name (expected NAME[:key=value,...])");
  if (colon == std::string::npos) return sp;
  std::string rest = text.substr(colon + 1);
  if (trim(rest).empty()) return sp;
  for (auto& item : split_list(rest, what, "key=value,key=value")) {
    std::string t = trim(item);
    auto eq = t.find('=');
    if (eq == std::string::npos) {
      if (sp.args.empty())
        throw UsageError(what + ": '" + text + "': item '" + t + "' is not key=value");
      sp.args.back().second += "," + t;
      continue;
    }
    std::string k = trim(t.substr(0, eq)), v = trim(t.substr(eq + 1));
    if (k.empty()) throw UsageError(what + ": '" + text + "': empty parameter name");
    for (auto& a : sp.args)
      if (a.first == k) throw UsageError(what + ": '" + text + "': parameter '" + k + "' given twice");
    sp.args.emplace_back(k, v);
  }
  return sp;
}

const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Int: return "int";
    case ParamKind::Float: return "float";
    case ParamKind::Bool: return "bool";
    case ParamKind::String: return "string";
    case ParamKind::IntList: return "int list";
    case ParamKind::FloatList: return "float list";
    case ParamKind::Dims: return "dims";
  }
  return "?";
}

int64_t parse_int(const std::string& s, const std::string& what) {
  std::string t = trim(s);
  size_t pos = 0;
  long long v = 0;
  try {
    v = std::stoll(t, &pos);
  } catch (...) {
    pos = 0;
  }
  if (t.empty() || pos != t.size()) throw UsageError(what + ": '" + s + "' is not an integer");
  return v;
}

double parse_float(const std::string& s, const std::string& what) {
  std::string t = trim(s);
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(t, &pos);
  } catch (...) {
    pos = 0;
  }
  if (t.empty() || pos != t.size()) throw UsageError(what + ": '" + s + "' is not a number");
  if (!std::isfinite(v)) throw UsageError(what + ": '" + s + "' is not a finite number");
  return v;
}

bool parse_bool(const std::string& s, const std::string& what) {
  std::string t = trim(s);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  throw UsageError(what + ": '" + s + "' is not a boolean (allowed: true, false, 1, 0)");
}

std::vector<int64_t> parse_dims(const std::string& s, const std::string& what) {
  std::vector<int64_t> d;
  for (auto& p : split(s, 'x')) {
    int64_t v = parse_int(p, what);
    if (v <= 0) throw UsageError(what + ": '" + s + "' must be positive sizes like 13x30x45");
    d.push_back(v);
  }
  if (d.empty()) throw UsageError(what + ": '" + s + "' is empty (expected sizes like 13x30x45)");
  return d;
}

std::vector<double> parse_float_axis(const std::string& s, const std::string& what, const std::string& example) {
  std::vector<double> out;
  if (s.find(':') != std::string::npos) {
    auto p = split(s, ':');
    if (p.size() != 3) throw UsageError(what + ": '" + s + "' must be start:stop:step");
    double a = parse_float(p[0], what), b = parse_float(p[1], what), st = parse_float(p[2], what);
    if (st <= 0 || b < a) throw UsageError(what + ": '" + s + "' needs step > 0 and stop >= start");
    int64_t n = int64_t(std::floor((b - a) / st + 1e-9)) + 1;
    if (!(n <= kMaxAxisValues))
      throw UsageError(what + ": '" + s + "' has more than " + std::to_string(kMaxAxisValues) + " values");
    for (int64_t i = 0; i < n; ++i) out.push_back(a + double(i) * st);
    return out;
  }
  for (auto& p : split_list(s, what, example)) out.push_back(parse_float(p, what));
  return out;
}

std::vector<int64_t> parse_int_axis(const std::string& s, const std::string& what, const std::string& example) {
  std::vector<int64_t> out;
  if (s.find(':') != std::string::npos) {
    auto p = split(s, ':');
    if (p.size() != 3) throw UsageError(what + ": '" + s + "' must be start:stop:step");
    int64_t a = parse_int(p[0], what), b = parse_int(p[1], what), st = parse_int(p[2], what);
    if (st <= 0 || b < a) throw UsageError(what + ": '" + s + "' needs step > 0 and stop >= start");
    // Counted in 128 bits before anything is generated: stop - start may not fit int64, and the
    // loop variable must never step past INT64_MAX.
    const __int128 n = ((__int128)b - a) / st + 1;
    if (n > kMaxAxisValues)
      throw UsageError(what + ": '" + s + "' has more than " + std::to_string(kMaxAxisValues) + " values");
    for (int64_t i = 0; i < int64_t(n); ++i) out.push_back(int64_t(a + (__int128)i * st));
    return out;
  }
  for (auto& p : split_list(s, what, example)) out.push_back(parse_int(p, what));
  return out;
}

Params::Params(const std::vector<ParamDef>& defs, const std::vector<std::pair<std::string, std::string>>& args,
               const std::string& owner)
    : defs_(defs), owner_(owner) {
  for (auto& [k, v] : args) {
    bool known = false;
    for (auto& d : defs) known |= d.name == k;
    if (!known) {
      std::string allowed;
      for (auto& d : defs) allowed += (allowed.empty() ? "" : ", ") + d.name;
      throw UsageError(owner + " has no parameter '" + k + "' (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
    }
    values_[k] = v;
    given_[k] = true;
  }
  for (auto& d : defs) {
    if (!values_.count(d.name)) {
      // An empty default makes numbers and booleans required; strings, lists and dims default to empty.
      bool scalar = d.kind == ParamKind::Int || d.kind == ParamKind::Float || d.kind == ParamKind::Bool;
      if (d.default_value.empty() && scalar)
        throw UsageError(owner + " needs parameter '" + d.name + "' (" + d.help + ")");
      values_[d.name] = d.default_value;
    }
    // Validate now so that errors surface before any work.
    std::string what = owner + " parameter '" + d.name + "'";
    const std::string& v = values_[d.name];
    auto range = [&](double x) {
      if (x < d.min || x > d.max) {
        std::ostringstream os;
        os << what << " = " << v << " is out of range [" << d.min << ", " << d.max << "]";
        throw UsageError(os.str());
      }
    };
    switch (d.kind) {
      case ParamKind::Int: range(double(parse_int(v, what))); break;
      case ParamKind::Float: range(parse_float(v, what)); break;
      case ParamKind::Bool: parse_bool(v, what); break;
      case ParamKind::String:
        if (!d.choices.empty()) {
          bool ok = false;
          std::string allowed;
          for (auto& c : d.choices) {
            ok |= c == v;
            allowed += (allowed.empty() ? "" : ", ") + c;
          }
          if (!ok) throw UsageError(what + " = '" + v + "' is not allowed (allowed: " + allowed + ")");
        }
        break;
      case ParamKind::IntList:
        if (!v.empty())
          for (auto& p : split_list(v, what, "1,2,4")) range(double(parse_int(p, what)));
        break;
      case ParamKind::FloatList:
        if (!v.empty())
          for (auto& p : split_list(v, what, "0.5,1")) range(parse_float(p, what));
        break;
      case ParamKind::Dims:
        if (!v.empty())
          for (auto x : parse_dims(v, what)) range(double(x));
        break;
    }
  }
}

const ParamDef& Params::def(const std::string& k) const {
  for (auto& d : defs_)
    if (d.name == k) return d;
  throw std::logic_error(owner_ + ": parameter '" + k + "' is not declared");
}

int64_t Params::get_int(const std::string& k) const { return parse_int(values_.at(def(k).name), k); }
double Params::get_float(const std::string& k) const { return parse_float(values_.at(def(k).name), k); }
bool Params::get_bool(const std::string& k) const { return parse_bool(values_.at(def(k).name), k); }
const std::string& Params::get_string(const std::string& k) const { return values_.at(def(k).name); }
std::vector<int64_t> Params::get_int_list(const std::string& k) const {
  std::vector<int64_t> out;
  const auto& v = values_.at(def(k).name);
  if (!v.empty())
    for (auto& p : split_list(v, k, "1,2,4")) out.push_back(parse_int(p, k));
  return out;
}
std::vector<double> Params::get_float_list(const std::string& k) const {
  std::vector<double> out;
  const auto& v = values_.at(def(k).name);
  if (!v.empty())
    for (auto& p : split_list(v, k, "0.5,1")) out.push_back(parse_float(p, k));
  return out;
}
std::vector<int64_t> Params::get_dims(const std::string& k) const {
  const auto& v = values_.at(def(k).name);
  if (v.empty()) return {};
  return parse_dims(v, k);
}
bool Params::given(const std::string& k) const { return given_.count(k) > 0; }

nlohmann::json Params::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (auto& d : defs_) {
    const std::string& v = values_.at(d.name);
    switch (d.kind) {
      case ParamKind::Int: j[d.name] = get_int(d.name); break;
      case ParamKind::Float: j[d.name] = get_float(d.name); break;
      case ParamKind::Bool: j[d.name] = get_bool(d.name); break;
      case ParamKind::String: j[d.name] = v; break;
      case ParamKind::IntList: j[d.name] = get_int_list(d.name); break;
      case ParamKind::FloatList: j[d.name] = get_float_list(d.name); break;
      case ParamKind::Dims: j[d.name] = v; break;
    }
  }
  return j;
}

}  // namespace bsattn
