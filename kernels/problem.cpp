#include "attnbench/problem.hpp"

#include "attnbench/math/precision.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnbench {

const char* backend_name(Backend b) { return b == Backend::cpu ? "cpu" : "cuda"; }

std::optional<Backend> parse_backend(const std::string& s) {
  if (s == "cpu") return Backend::cpu;
  if (s == "cuda") return Backend::cuda;
  return std::nullopt;
}

// ---- precision ---------------------------------------------------------------------------

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
  }
  return "?";
}

std::optional<Precision> parse_precision(std::string_view s) {
  for (Precision p : kAllPrecisions)
    if (s == precision_name(p)) return p;
  return std::nullopt;
}

size_t storage_bytes(Precision p) {
  return p == Precision::bf16 || p == Precision::fp16 ? 2 : 4;
}

double unit_roundoff(Precision p) {
  switch (p) {
    case Precision::fp32: return std::ldexp(1.0, -24);
    case Precision::tf32: return std::ldexp(1.0, -11);
    case Precision::bf16: return std::ldexp(1.0, -8);
    case Precision::fp16: return std::ldexp(1.0, -11);
  }
  return 1.0;
}

double correctness_tolerance(Precision p, int64_t reduction_length) {
  constexpr double kFp32Tolerance = 1e-5;
  if (p == Precision::fp32) return kFp32Tolerance;
  const double n = double(std::max<int64_t>(1, reduction_length));
  return 4.0 * unit_roundoff(p) + 4.0 * std::sqrt(n) * unit_roundoff(Precision::fp32);
}

float round_to(Precision p, float x) {
  switch (p) {
    case Precision::fp32: return x;
    case Precision::tf32: return math::round_to_tf32(x);
    case Precision::bf16: return math::round_to_bf16(x);
    case Precision::fp16: return math::round_to_fp16(x);
  }
  return x;
}

// ---- method parameters -------------------------------------------------------------------

double Problem::real_param(std::string_view name) const {
  auto it = params.find(name);
  if (it == params.end())
    throw InvalidProblem(fmt::format("the problem does not set the parameter '{}'", name));
  return it->second;
}

int64_t Problem::int_param(std::string_view name) const {
  return static_cast<int64_t>(real_param(name));
}

Problem& Problem::set_param(std::string_view name, double value) {
  params.insert_or_assign(std::string(name), value);
  return *this;
}

// ---- axes --------------------------------------------------------------------------------

const std::vector<std::string>& shape_axes() {
  static const std::vector<std::string> v = {"batch",  "heads",     "seq_len", "head_dim",
                                             "causal", "precision", "seed"};
  return v;
}

bool is_shape_axis(std::string_view name) {
  const auto& s = shape_axes();
  return std::find(s.begin(), s.end(), name) != s.end();
}

double get_axis(const Problem& p, std::string_view name) {
  if (name == "batch") return double(p.batch);
  if (name == "heads") return double(p.heads);
  if (name == "seq_len") return double(p.seq_len);
  if (name == "head_dim") return double(p.head_dim);
  if (name == "causal") return p.causal ? 1.0 : 0.0;
  if (name == "precision") return double(static_cast<int>(p.precision));
  if (name == "seed") return double(p.seed);
  return p.real_param(name);
}

namespace {
// The integer a shape axis holds: finite, whole, within [lo, hi].
int64_t whole_axis_value(std::string_view name, double v, double lo, double hi) {
  if (!std::isfinite(v) || v != std::floor(v))
    throw InvalidProblem(fmt::format("'{}' must be an integer, got {}", name, v));
  if (v < lo || v > hi)
    throw InvalidProblem(fmt::format("'{}' must lie in [{}, {}], got {}", name, lo, hi, v));
  return static_cast<int64_t>(v);
}
}  // namespace

void set_axis(Problem& p, std::string_view name, double value) {
  // sizes may be zero or negative here: the kernels refuse them with their own message
  constexpr double kMaxSize = 9.0e15;
  if (name == "batch") p.batch = whole_axis_value(name, value, -kMaxSize, kMaxSize);
  else if (name == "heads") p.heads = whole_axis_value(name, value, -kMaxSize, kMaxSize);
  else if (name == "seq_len") p.seq_len = whole_axis_value(name, value, -kMaxSize, kMaxSize);
  else if (name == "head_dim") p.head_dim = whole_axis_value(name, value, -kMaxSize, kMaxSize);
  else if (name == "causal") p.causal = whole_axis_value(name, value, 0, 1) != 0;
  else if (name == "precision")
    p.precision = static_cast<Precision>(whole_axis_value(name, value, 0, 3));
  else if (name == "seed") p.seed = uint64_t(whole_axis_value(name, value, 0, kMaxSize));
  else if (!std::isfinite(value))
    throw InvalidProblem(fmt::format("parameter '{}' must be a finite number", name));
  else p.set_param(name, value);
}

std::string describe(const Problem& p, const std::vector<std::string>& params) {
  std::string s = fmt::format("b={} h={} N={} dh={} {}", p.batch, p.heads, p.seq_len,
                              p.head_dim, p.causal ? "causal" : "bidirectional");
  if (p.precision != Precision::fp32) s += fmt::format(" {}", precision_name(p.precision));
  for (const auto& name : params)
    if (p.has_param(name)) s += fmt::format(" {}={}", name, p.real_param(name));
  return s;
}

// ---- input sizes -------------------------------------------------------------------------

size_t InputSizes::bytes() const {
  return (q + k + v) * storage_bytes(precision) +
         (codebooks + wq + wk + wv + probs + conv) * sizeof(float) + codes * sizeof(int32_t);
}

InputSizes input_sizes(const Problem& p, unsigned flags) {
  InputSizes s;
  s.precision = p.precision;
  const auto n = static_cast<size_t>(p.batch * p.heads * p.seq_len);
  const auto dh = static_cast<size_t>(p.head_dim);
  const auto H = static_cast<size_t>(p.heads);
  if (flags & kInputQKV) s.q = s.k = s.v = n * dh;
  if (flags & (kInputCodes | kInputCodebooks | kInputProbs)) {
    const auto B = static_cast<size_t>(p.int_param("codebooks"));
    const auto W = static_cast<size_t>(p.int_param("codewords"));
    if (flags & kInputCodes) s.codes = n * B;
    if (flags & kInputCodebooks) s.codebooks = H * B * W * dh;
    if ((flags & kInputProjections) && p.flag_param("projections"))
      s.wq = s.wk = s.wv = H * B * dh * dh;
    if (flags & kInputProbs) s.probs = n * B * W;
  }
  if (flags & kInputConv) s.conv = H * static_cast<size_t>(p.int_param("conv_width")) * dh;
  return s;
}

size_t output_elems(const Problem& p) {
  return static_cast<size_t>(p.batch * p.heads * p.seq_len * p.head_dim);
}

size_t output_bytes(const Problem& p) { return output_elems(p) * storage_bytes(p.precision); }

}  // namespace attnbench
