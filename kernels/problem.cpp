#include "attnbench/problem.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace attnbench {

const char* backend_name(Backend b) { return b == Backend::cpu ? "cpu" : "cuda"; }

std::optional<Backend> parse_backend(const std::string& s) {
  if (s == "cpu") return Backend::cpu;
  if (s == "cuda") return Backend::cuda;
  return std::nullopt;
}

namespace {
struct Field {
  const char* name;
  int64_t Problem::*i64;
  double Problem::*f64;
  bool Problem::*flag;
  uint64_t Problem::*u64;
};
// One table drives get/set/list so a new parameter is one line here.
const Field kFields[] = {
    {"batch", &Problem::batch, nullptr, nullptr, nullptr},
    {"heads", &Problem::heads, nullptr, nullptr, nullptr},
    {"seq_len", &Problem::seq_len, nullptr, nullptr, nullptr},
    {"head_dim", &Problem::head_dim, nullptr, nullptr, nullptr},
    {"causal", nullptr, nullptr, &Problem::causal, nullptr},
    {"codebooks", &Problem::codebooks, nullptr, nullptr, nullptr},
    {"codewords", &Problem::codewords, nullptr, nullptr, nullptr},
    {"projections", nullptr, nullptr, &Problem::projections, nullptr},
    {"decay", nullptr, &Problem::decay, nullptr, nullptr},
    {"features", &Problem::features, nullptr, nullptr, nullptr},
    {"window", &Problem::window, nullptr, nullptr, nullptr},
    {"bucket_size", &Problem::bucket_size, nullptr, nullptr, nullptr},
    {"n_hashes", &Problem::n_hashes, nullptr, nullptr, nullptr},
    {"block", &Problem::block, nullptr, nullptr, nullptr},
    {"conv_width", &Problem::conv_width, nullptr, nullptr, nullptr},
    {"seed", nullptr, nullptr, nullptr, &Problem::seed},
};

const Field& field(const std::string& name) {
  for (const auto& f : kFields)
    if (name == f.name) return f;
  std::string known;
  for (const auto& f : kFields) known += (known.empty() ? "" : ", ") + std::string(f.name);
  throw InvalidProblem(fmt::format("unknown parameter '{}' (known: {})", name, known));
}
}  // namespace

const std::vector<std::string>& parameter_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& f : kFields) v.emplace_back(f.name);
    return v;
  }();
  return names;
}

double get_parameter(const Problem& p, const std::string& name) {
  const Field& f = field(name);
  if (f.i64) return static_cast<double>(p.*(f.i64));
  if (f.f64) return p.*(f.f64);
  if (f.flag) return p.*(f.flag) ? 1.0 : 0.0;
  return static_cast<double>(p.*(f.u64));
}

void set_parameter(Problem& p, const std::string& name, double value) {
  const Field& f = field(name);
  if (!std::isfinite(value))
    throw InvalidProblem(fmt::format("parameter '{}' must be a finite number", name));
  if (f.f64) {
    p.*(f.f64) = value;
    return;
  }
  if (value != std::floor(value))
    throw InvalidProblem(fmt::format("parameter '{}' must be an integer, got {}", name, value));
  if (f.flag) {
    if (value != 0 && value != 1)
      throw InvalidProblem(fmt::format("parameter '{}' must be 0 or 1, got {}", name, value));
    p.*(f.flag) = value != 0;
  } else if (f.i64) {
    if (std::fabs(value) > 9.0e15)
      throw InvalidProblem(fmt::format("parameter '{}' is out of range: {}", name, value));
    p.*(f.i64) = static_cast<int64_t>(value);
  } else {
    if (value < 0 || value > 9.0e15)
      throw InvalidProblem(fmt::format("parameter '{}' is out of range: {}", name, value));
    p.*(f.u64) = static_cast<uint64_t>(value);
  }
}

std::string describe(const Problem& p, const std::vector<std::string>& params) {
  std::string s = fmt::format("b={} h={} N={} dh={} {}", p.batch, p.heads, p.seq_len,
                              p.head_dim, p.causal ? "causal" : "bidirectional");
  for (const auto& name : params) s += fmt::format(" {}={}", name, get_parameter(p, name));
  return s;
}

size_t InputSizes::bytes() const {
  return (q + k + v + codebooks + wq + wk + wv + probs + conv) * sizeof(float) +
         codes * sizeof(int32_t);
}

InputSizes input_sizes(const Problem& p, unsigned flags) {
  InputSizes s;
  const auto n = static_cast<size_t>(p.batch * p.heads * p.seq_len);
  const auto dh = static_cast<size_t>(p.head_dim);
  const auto B = static_cast<size_t>(p.codebooks), W = static_cast<size_t>(p.codewords);
  const auto H = static_cast<size_t>(p.heads);
  if (flags & kInputQKV) s.q = s.k = s.v = n * dh;
  if (flags & kInputCodes) s.codes = n * B;
  if (flags & kInputCodebooks) s.codebooks = H * B * W * dh;
  if ((flags & kInputProjections) && p.projections) s.wq = s.wk = s.wv = H * B * dh * dh;
  if (flags & kInputProbs) s.probs = n * B * W;
  if (flags & kInputConv) s.conv = H * static_cast<size_t>(p.conv_width) * dh;
  return s;
}

size_t output_elems(const Problem& p) {
  return static_cast<size_t>(p.batch * p.heads * p.seq_len * p.head_dim);
}

}  // namespace attnbench
