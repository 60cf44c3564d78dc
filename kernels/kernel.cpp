#include "attnbench/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace attnbench {

// ---- parameter specifications --------------------------------------------------------------

ParamSpec int_param(std::string name, int64_t default_value, int64_t min_value, int64_t max_value,
                    std::string doc) {
  return {std::move(name), ParamKind::integer, double(default_value), double(min_value),
          double(max_value), std::move(doc)};
}

ParamSpec real_param(std::string name, double default_value, double min_value, double max_value,
                     std::string doc) {
  return {std::move(name), ParamKind::real, default_value, min_value, max_value, std::move(doc)};
}

ParamSpec flag_param(std::string name, bool default_value, std::string doc) {
  return {std::move(name), ParamKind::flag, default_value ? 1.0 : 0.0, 0.0, 1.0, std::move(doc)};
}

const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::integer: return "integer";
    case ParamKind::real: return "real";
    case ParamKind::flag: return "flag";
  }
  return "?";
}

const ParamSpec* KernelInfo::param(std::string_view n) const {
  for (const ParamSpec& ps : params)
    if (ps.name == n) return &ps;
  return nullptr;
}

namespace {

// Why `v` is not a value of `ps`, or "" when it is.
std::string param_value_problem(const ParamSpec& ps, double v) {
  if (!std::isfinite(v)) return fmt::format("must be a finite number, got {}", v);
  if (ps.kind != ParamKind::real && v != std::floor(v))
    return fmt::format("must be {}, got {}", ps.kind == ParamKind::flag ? "0 or 1" : "a whole number", v);
  if (v < ps.min_value || v > ps.max_value)
    return fmt::format("must lie in [{}, {}], got {}", ps.min_value, ps.max_value, v);
  return "";
}

bool is_identifier(const std::string& s) {
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

void check_param_specs(const KernelInfo& in) {
  auto refuse = [&](const std::string& what) {
    throw std::invalid_argument(fmt::format("kernel {} ({}): {}", in.name, backend_name(in.backend), what));
  };
  for (size_t i = 0; i < in.params.size(); ++i) {
    const ParamSpec& ps = in.params[i];
    if (!is_identifier(ps.name))
      refuse(fmt::format("parameter name '{}' is not a lower-case identifier", ps.name));
    if (is_shape_axis(ps.name)) refuse(fmt::format("'{}' is a shape axis, not a parameter", ps.name));
    for (size_t j = 0; j < i; ++j)
      if (in.params[j].name == ps.name) refuse(fmt::format("parameter '{}' declared twice", ps.name));
    if (!(ps.min_value <= ps.max_value))
      refuse(fmt::format("parameter '{}': min {} above max {}", ps.name, ps.min_value, ps.max_value));
    if (const std::string why = param_value_problem(ps, ps.default_value); !why.empty())
      refuse(fmt::format("parameter '{}': the default {}", ps.name, why));
    if (ps.doc.empty()) refuse(fmt::format("parameter '{}' has no doc line", ps.name));
  }
}

bool same_description(const KernelInfo& a, const KernelInfo& b) {
  if (a.family != b.family || a.has_causal != b.has_causal ||
      a.has_bidirectional != b.has_bidirectional || a.inputs != b.inputs ||
      a.is_vanilla != b.is_vanilla || a.params.size() != b.params.size())
    return false;
  for (size_t i = 0; i < a.params.size(); ++i) {
    const ParamSpec &x = a.params[i], &y = b.params[i];
    if (x.name != y.name || x.kind != y.kind || x.default_value != y.default_value ||
        x.min_value != y.min_value || x.max_value != y.max_value)
      return false;
  }
  return true;
}

}  // namespace

// ---- validation ----------------------------------------------------------------------------

void Kernel::validate_common(const Problem& p) const {
  const auto& in = info();
  auto positive = [&](const char* what, int64_t v) {
    if (v <= 0)
      throw InvalidProblem(fmt::format("{}: {} must be positive, got {}", in.name, what, v));
  };
  positive("batch", p.batch);
  positive("heads", p.heads);
  positive("seq_len", p.seq_len);
  positive("head_dim", p.head_dim);
  if (p.causal && !in.has_causal)
    throw InvalidProblem(fmt::format("{}: no causal form", in.name));
  if (!p.causal && !in.has_bidirectional)
    throw InvalidProblem(fmt::format("{}: no bidirectional form", in.name));
  if (!in.supports(p.precision)) {
    std::string have;
    for (Precision x : kAllPrecisions)
      if (in.supports(x)) have += (have.empty() ? "" : ", ") + std::string(precision_name(x));
    throw InvalidProblem(fmt::format("{} ({}): no {} version (runs {})", in.name,
                                     backend_name(in.backend), precision_name(p.precision), have));
  }
  for (const ParamSpec& ps : in.params) {
    if (!p.has_param(ps.name))
      throw InvalidProblem(fmt::format("{}: parameter '{}' is not set", in.name, ps.name));
    if (const std::string why = param_value_problem(ps, p.real_param(ps.name)); !why.empty())
      throw InvalidProblem(fmt::format("{}: parameter '{}' {}", in.name, ps.name, why));
  }
  // Every index a kernel forms is an int64 product; refuse sizes whose element counts
  // overflow it (they could never fit in memory anyway).
  const double elems = double(p.batch) * double(p.heads) * double(p.seq_len) *
                       double(std::max<int64_t>(p.head_dim, p.seq_len));
  if (elems > 4.0e18)
    throw InvalidProblem(fmt::format("{}: problem too large ({})", in.name, describe(p)));
}

void Kernel::validate(const Problem& p) const { validate_common(p); }

void Kernel::validate_inputs(const Problem&, const Inputs&) const {}

void Kernel::prepare(const Problem&, const Inputs&, void*, const ExecContext&) const {}

double Kernel::min_bytes(const Problem& p) const {
  return double(input_sizes(p, info().inputs).bytes() + output_bytes(p));
}

void Kernel::reference_rows(const Problem&, const Inputs&, std::span<const RowId>,
                            double*) const {
  throw InvalidProblem(fmt::format("{} ({}): no float64 reference on this backend",
                                   info().name, backend_name(info().backend)));
}

Problem with_defaults(const Kernel& k, Problem p) {
  for (const ParamSpec& ps : k.info().params)
    if (!p.has_param(ps.name)) p.set_param(ps.name, ps.default_value);
  return p;
}

// ---- the registry --------------------------------------------------------------------------

Registry& Registry::instance() {
  static Registry r;
  return r;
}

void Registry::add(std::unique_ptr<Kernel> k) {
  const KernelInfo& in = k->info();
  check_param_specs(in);
  for (const Kernel* other : sorted_) {
    const KernelInfo& o = other->info();
    if (o.name == in.name && o.backend == in.backend)
      throw std::invalid_argument(
          fmt::format("kernel {} ({}) is registered twice", in.name, backend_name(in.backend)));
    if (o.name == in.name && !same_description(o, in))
      throw std::invalid_argument(fmt::format(
          "kernel {}: the {} and {} versions describe different methods (family, forms, inputs "
          "or parameters)", in.name, backend_name(o.backend), backend_name(in.backend)));
    for (const ParamSpec& ps : in.params)
      if (const ParamSpec* same = o.param(ps.name); same && same->kind != ps.kind)
        throw std::invalid_argument(fmt::format(
            "kernel {}: parameter '{}' is {} but {} declares it {}", in.name, ps.name,
            param_kind_name(ps.kind), o.name, param_kind_name(same->kind)));
  }
  sorted_.push_back(k.get());
  owned_.push_back(std::move(k));
  std::sort(sorted_.begin(), sorted_.end(), [](const Kernel* a, const Kernel* b) {
    if (a->info().name != b->info().name) return a->info().name < b->info().name;
    return a->info().backend < b->info().backend;
  });
}

void Registry::remove(const std::string& name, Backend b) {
  auto is_it = [&](const Kernel* k) { return k->info().name == name && k->info().backend == b; };
  sorted_.erase(std::remove_if(sorted_.begin(), sorted_.end(), is_it), sorted_.end());
  owned_.erase(std::remove_if(owned_.begin(), owned_.end(),
                              [&](const std::unique_ptr<Kernel>& k) { return is_it(k.get()); }),
               owned_.end());
}

const Kernel* Registry::find(const std::string& name, Backend b) const {
  for (const Kernel* k : sorted_)
    if (k->info().name == name && k->info().backend == b) return k;
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> v;
  for (const Kernel* k : sorted_)
    if (v.empty() || v.back() != k->info().name) v.push_back(k->info().name);
  return v;
}

const Kernel& Registry::get(const std::string& name, Backend b) const {
  if (const Kernel* k = find(name, b)) return *k;
  const auto all = names();
  if (std::find(all.begin(), all.end(), name) != all.end())
    throw InvalidProblem(
        fmt::format("kernel '{}' has no {} backend in this build", name, backend_name(b)));
  std::string known;
  for (const auto& n : all) known += (known.empty() ? "" : ", ") + n;
  throw InvalidProblem(fmt::format("unknown kernel '{}' (known: {})", name, known));
}

std::vector<ParamSpec> Registry::parameters() const {
  std::vector<ParamSpec> all;
  for (const Kernel* k : sorted_)
    for (const ParamSpec& ps : k->info().params)
      if (std::none_of(all.begin(), all.end(), [&](const ParamSpec& x) { return x.name == ps.name; }))
        all.push_back(ps);
  std::sort(all.begin(), all.end(), [](const ParamSpec& a, const ParamSpec& b) { return a.name < b.name; });
  return all;
}

const ParamSpec* Registry::parameter(std::string_view name) const {
  for (const Kernel* k : sorted_)
    if (const ParamSpec* ps = k->info().param(name)) return ps;
  return nullptr;
}

detail::Registrar::Registrar(std::unique_ptr<Kernel> k, const char* file) {
  k->source_file_ = file;
  Registry::instance().add(std::move(k));
}

}  // namespace attnbench
