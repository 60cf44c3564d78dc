#include "sweep.hpp"

#include "calibrate.hpp"
#include "correctness.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "attnbench/reference.hpp"
#include "heap.hpp"
#include "sysinfo.hpp"

namespace attnbench {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Interrupted {};

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw InvalidProblem(fmt::format("{}: {}", where, what));
}

std::string known_axes() {
  std::string s;
  for (const auto& n : shape_axes()) s += (s.empty() ? "" : ", ") + n;
  for (const auto& ps : Registry::instance().parameters()) s += ", " + ps.name;
  return s;
}

bool is_axis(const std::string& name) {
  return is_shape_axis(name) || Registry::instance().parameter(name) != nullptr;
}

double axis_value_text(const std::string& axis, const std::string& s, const std::string& where) {
  if (axis == "causal" || axis == "projections") {
    if (s == "true" || s == "causal" || s == "1") return 1;
    if (s == "false" || s == "bidirectional" || s == "0") return 0;
    bad(where, fmt::format("{} takes true/false (or causal/bidirectional), got '{}'", axis, s));
  }
  if (axis == "precision") {
    if (const auto pr = parse_precision(s)) return double(static_cast<int>(*pr));
    bad(where, fmt::format("precision takes fp32, tf32, bf16 or fp16, got '{}'", s));
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size())
    bad(where, fmt::format("{}: '{}' is not a number", axis, s));
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

Timing parse_timing(const ojson& j, Timing t, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "cpu" || k == "cuda") continue;
    if (!it->is_number()) bad(where, fmt::format("timing.{} must be a number", k));
    const double v = it->get<double>();
    if (v < 0) bad(where, fmt::format("timing.{} must be >= 0", k));
    if (k == "warmup")
      t.warmup = int(v);
    else if (k == "min_reps")
      t.min_reps = std::max(1, int(v));
    else if (k == "max_reps")
      t.max_reps = std::max(1, int(v));
    else if (k == "min_time_s")
      t.min_time_s = v;
    else
      bad(where, fmt::format("timing: unknown key '{}' (known: warmup, min_reps, max_reps, "
                             "min_time_s, cpu, cuda)",
                             k));
  }
  t.max_reps = std::max(t.max_reps, t.min_reps);
  return t;
}

std::vector<std::pair<std::string, AxisValues>> parse_axes(const ojson& j, const std::string& where) {
  if (!j.is_object()) bad(where, "'axes' must be an object of axis name -> list of values");
  std::vector<std::pair<std::string, AxisValues>> axes;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (!is_axis(name))
      bad(where, fmt::format("unknown axis '{}' (known: {})", name, known_axes()));
    AxisValues vals;
    if (it->is_array()) {
      for (const auto& v : *it) vals.push_back(axis_value_from_json(name, v, where));
    } else {
      vals.push_back(axis_value_from_json(name, *it, where));
    }
    if (vals.empty()) bad(where, fmt::format("axis '{}' has no values", name));
    check_axis_values(name, vals, where);
    axes.emplace_back(name, vals);
  }
  return axes;
}

std::vector<std::string> parse_names(const ojson& j, const char* what, const std::string& where) {
  std::vector<std::string> v;
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) bad(where, fmt::format("'{}' must be a list of names", what));
  for (const auto& x : j) {
    if (!x.is_string()) bad(where, fmt::format("'{}' must be a list of names", what));
    v.push_back(x.get<std::string>());
  }
  if (v.empty()) bad(where, fmt::format("'{}' is empty", what));
  return v;
}

const AxisValues* find_axis(const SweepGroup& g, const std::string& name) {
  for (const auto& [n, v] : g.axes)
    if (n == name) return &v;
  return nullptr;
}

std::string number_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9.0e15) return fmt::format("{}", int64_t(v));
  return fmt::format("{}", v);  // shortest text that reads back to the same double
}

// An axis value as the command line takes it back (--axis name=text).
std::string axis_text(const Problem& p, const std::string& axis) {
  if (axis == "causal") return p.causal ? "true" : "false";
  if (axis == "precision") return precision_name(p.precision);
  return number_text(get_axis(p, axis));
}

std::string format_seconds(double s) {
  if (s < 0) return "?";
  const auto t = int64_t(std::llround(s));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// Runs f(chunk of rows, output of that chunk) over the rows on every thread; rethrows the
// first exception after the loop (exceptions must not leave an OpenMP region).
template <class F>
void parallel_rows(const std::vector<RowId>& rows, int64_t dh, double* out, F f) {
  const int64_t n = int64_t(rows.size());
  if (n == 0) return;
  const int64_t chunks = std::min<int64_t>(n, 4 * int64_t(omp_get_max_threads()));
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
    try {
      f(std::span<const RowId>(rows.data() + lo, size_t(hi - lo)), out + lo * dh);
    } catch (...) {
#pragma omp critical(attnbench_parallel_rows)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

double mean_cosine(const Problem& p, const float* got, const std::vector<RowId>& rows,
                   const double* want) {
  const int64_t dh = p.head_dim;
  double sum = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* g = got + (rows[r].seq * p.seq_len + rows[r].row) * dh;
    double gw = 0, gg = 0, ww = 0;
    for (int64_t c = 0; c < dh; ++c) {
      const double w = want[int64_t(r) * dh + c];
      gw += double(g[c]) * w;
      gg += double(g[c]) * double(g[c]);
      ww += w * w;
    }
    sum += (gg > 0 && ww > 0) ? gw / std::sqrt(gg * ww) : (gg == ww ? 1.0 : 0.0);
  }
  return rows.empty() ? std::nan("") : sum / double(rows.size());
}

}  // namespace

// ---- axes and sweep files ------------------------------------------------------------------

Timing default_timing(Backend b) {
  Timing t;
  if (b == Backend::cuda) {
    t.warmup = 2;
    t.min_reps = 20;
    t.min_time_s = 0.2;
  }
  return t;
}

Problem default_shape() {
  Problem p;
  p.batch = 1;
  p.heads = 1;
  p.seq_len = 1024;
  p.head_dim = 64;
  p.causal = true;
  return p;
}

void check_axis_values(const std::string& axis, const AxisValues& vals, const std::string& where) {
  if (!is_axis(axis)) bad(where, fmt::format("unknown axis '{}' (known: {})", axis, known_axes()));
  if (vals.empty()) bad(where, fmt::format("axis {} has no values", axis));
  const ParamSpec* spec = Registry::instance().parameter(axis);
  for (double v : vals) {
    if (!std::isfinite(v)) bad(where, fmt::format("axis {}: {} is not a finite number", axis, v));
    if (v < 0) bad(where, fmt::format("axis {}: {} must not be negative", axis, number_text(v)));
    const bool size_axis = is_shape_axis(axis) && axis != "causal" && axis != "precision" && axis != "seed";
    if (size_axis && v < 1)
      bad(where, fmt::format("axis {}: {} must be positive", axis, number_text(v)));
    if (spec && (v < spec->min_value || v > spec->max_value ||
                 (spec->kind != ParamKind::real && v != std::floor(v))))
      bad(where, fmt::format("axis {}: {} is not a valid value ({} in [{}, {}])", axis, number_text(v),
                             param_kind_name(spec->kind), number_text(spec->min_value),
                             number_text(spec->max_value)));
    Problem probe;
    try {
      set_axis(probe, axis, v);  // the shape axes' integer and range checks
    } catch (const InvalidProblem& e) {
      bad(where, e.what());
    }
  }
}

SweepSpec builtin_sweep() {
  SweepSpec s;
  s.groups.push_back({"main", {"all"}, {}});
  return s;
}

SweepSpec parse_sweep(const ojson& j, const std::string& name) {
  if (!j.is_object()) bad(name, "a sweep file must hold a JSON object");
  SweepSpec s;
  s.source = name;
  s.name = std::filesystem::path(name).stem().string();
  std::vector<std::string> top_kernels = {"all"};
  std::vector<std::pair<std::string, AxisValues>> top_axes;
  const ojson* groups = nullptr;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "name") {
      if (!it->is_string()) bad(name, "'name' must be a string");
      s.name = it->get<std::string>();
    } else if (k == "description") {
      if (!it->is_string()) bad(name, "'description' must be a string");
      s.description = it->get<std::string>();
    } else if (k == "kernels") {
      top_kernels = parse_names(*it, "kernels", name);
    } else if (k == "backends") {
      s.backends = parse_names(*it, "backends", name);
      for (const auto& b : s.backends)
        if (b != "all" && !parse_backend(b))
          bad(name, fmt::format("unknown backend '{}' (known: cpu, cuda, all)", b));
    } else if (k == "vanilla_kernel") {
      if (!it->is_string()) bad(name, "'vanilla_kernel' must be a string");
      s.vanilla_kernel = it->get<std::string>();
    } else if (k == "max_point_seconds") {
      if (!it->is_number() || it->get<double>() < 0)
        bad(name, "'max_point_seconds' must be a number >= 0");
      s.max_point_seconds = it->get<double>();
    } else if (k == "timing") {
      if (!it->is_object()) bad(name, "'timing' must be an object");
      for (Backend b : {Backend::cpu, Backend::cuda}) {
        Timing t = parse_timing(*it, s.timing[b], name);
        if (auto sub = it->find(backend_name(b)); sub != it->end()) {
          if (!sub->is_object()) bad(name, fmt::format("timing.{} must be an object", backend_name(b)));
          t = parse_timing(*sub, t, name);
        }
        s.timing[b] = t;
      }
    } else if (k == "axes") {
      top_axes = parse_axes(*it, name);
    } else if (k == "groups") {
      if (!it->is_array() || it->empty()) bad(name, "'groups' must be a non-empty list");
      groups = &*it;
    } else {
      bad(name, fmt::format("unknown key '{}' (known: name, description, kernels, backends, "
                            "vanilla_kernel, timing, max_point_seconds, axes, groups)",
                            k));
    }
  }
  if (!groups) {
    s.groups.push_back({"main", top_kernels, top_axes});
    return s;
  }
  for (size_t gi = 0; gi < groups->size(); ++gi) {
    const ojson& g = (*groups)[gi];
    const std::string where = fmt::format("{}: groups[{}]", name, gi);
    if (!g.is_object()) bad(where, "a group must be an object");
    SweepGroup grp{fmt::format("group{}", gi), top_kernels, top_axes};
    for (auto it = g.begin(); it != g.end(); ++it) {
      if (it.key() == "name") {
        if (!it->is_string()) bad(where, "'name' must be a string");
        grp.name = it->get<std::string>();
      } else if (it.key() == "kernels") {
        grp.kernels = parse_names(*it, "kernels", where);
      } else if (it.key() == "axes") {
        for (auto& [n, v] : parse_axes(*it, where)) {
          auto found = std::find_if(grp.axes.begin(), grp.axes.end(),
                                    [&](const auto& a) { return a.first == n; });
          if (found != grp.axes.end())
            found->second = v;
          else
            grp.axes.emplace_back(n, v);
        }
      } else {
        bad(where, fmt::format("unknown key '{}' (known: name, kernels, axes)", it.key()));
      }
    }
    s.groups.push_back(std::move(grp));
  }
  return s;
}

SweepSpec load_sweep_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad(path, "cannot open the sweep file");
  ojson j;
  try {
    j = ojson::parse(in, nullptr, true, /*ignore_comments=*/true);
  } catch (const ojson::parse_error& e) {
    bad(path, fmt::format("not valid JSON ({})", e.what()));
  }
  return parse_sweep(j, path);
}

std::string preset_path(const std::string& name) {
  return std::string(ATTNBENCH_SOURCE_DIR) + "/harness/sweeps/" + name + ".json";
}

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(
           std::string(ATTNBENCH_SOURCE_DIR) + "/harness/sweeps", ec))
    if (e.path().extension() == ".json") v.push_back(e.path().stem().string());
  std::sort(v.begin(), v.end());
  return v;
}

std::pair<std::string, AxisValues> parse_axis_override(const std::string& text) {
  const std::string where = "--axis " + text;
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    bad(where, "expected name=value[,value...], e.g. seq_len=512,1024");
  const std::string name = text.substr(0, eq);
  if (!is_axis(name)) bad(where, fmt::format("unknown axis '{}' (known: {})", name, known_axes()));
  AxisValues vals;
  for (const auto& v : split(text.substr(eq + 1), ',')) vals.push_back(axis_value_text(name, v, where));
  check_axis_values(name, vals, where);
  return {name, vals};
}

void override_axis(SweepSpec& s, const std::string& axis, const AxisValues& values) {
  for (auto& g : s.groups) {
    auto it = std::find_if(g.axes.begin(), g.axes.end(), [&](const auto& a) { return a.first == axis; });
    if (it != g.axes.end())
      it->second = values;
    else
      g.axes.emplace_back(axis, values);
  }
}

void override_kernels(SweepSpec& s, const std::vector<std::string>& kernels) {
  for (auto& g : s.groups) g.kernels = kernels;
}

// ---- expansion -----------------------------------------------------------------------------

std::string Point::key() const { return point_key(kernel->info().name, backend, problem); }

std::string Point::describe() const {
  return fmt::format("{} {} {}", kernel->info().name, backend_name(backend),
                     attnbench::describe(problem, shown_params));
}

std::vector<Backend> resolve_backends(const std::vector<std::string>& names) {
  std::vector<Backend> out;
  auto add = [&](Backend b) {
    if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  };
  for (const auto& n : names) {
    if (n == "all") {
      for (Backend b : {Backend::cpu, Backend::cuda})
        if (backend_available(b)) add(b);
      continue;
    }
    const auto b = parse_backend(n);
    if (!b) throw InvalidProblem(fmt::format("unknown backend '{}' (known: cpu, cuda, all)", n));
    std::string why;
    if (!backend_available(*b, &why))
      throw InvalidProblem(fmt::format("backend {} is not available: {}", n, why));
    add(*b);
  }
  return out;
}

namespace {

// The kernels of a group in run order ("all" = the registry), the vanilla kernel first so it
// runs first at a point. Throws for an unknown kernel or one none of `backends` implements.
std::vector<std::string> group_kernel_names(const SweepGroup& g, const std::string& vanilla,
                                            const std::vector<Backend>& backends) {
  const Registry& reg = Registry::instance();
  const auto all = reg.names();
  std::vector<std::string> names;
  auto add = [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  for (const auto& n : g.kernels) {
    if (n == "all") {
      for (const auto& r : all) add(r);
      continue;
    }
    if (std::find(all.begin(), all.end(), n) == all.end()) reg.get(n, Backend::cpu);  // throws
    if (std::none_of(backends.begin(), backends.end(), [&](Backend b) { return reg.find(n, b); }))
      throw InvalidProblem(
          fmt::format("kernel '{}' has no implementation on the selected backend(s) in this build", n));
    add(n);
  }
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return n == vanilla; });
  return names;
}

// Every combination of the group's shape axes (unset ones at default_shape()), seq_len varying
// fastest and ascending.
std::vector<Problem> shape_points(const SweepGroup& g) {
  static const char* const kOuterToInner[] = {"precision", "seed",   "batch",  "heads",
                                              "head_dim",  "causal", "seq_len"};
  std::vector<Problem> points = {default_shape()};
  for (const std::string axis : kOuterToInner) {
    const AxisValues* v = find_axis(g, axis);
    if (!v) continue;
    AxisValues vals = *v;
    if (axis == "seq_len") {
      std::sort(vals.begin(), vals.end());
      vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
    }
    std::vector<Problem> next;
    for (const Problem& p : points)
      for (double x : vals) {
        Problem q = p;
        set_axis(q, axis, x);
        next.push_back(q);
      }
    points = std::move(next);
  }
  return points;
}

// The problems of kernel `k` at one shape point: its parameters at their defaults, then the
// product over the ones the group sets.
std::vector<Problem> kernel_problems(const Kernel& k, const SweepGroup& g, const Problem& shape) {
  std::vector<Problem> probs = {with_defaults(k, shape)};
  for (const ParamSpec& ps : k.info().params) {
    const AxisValues* v = find_axis(g, ps.name);
    if (!v) continue;
    std::vector<Problem> next;
    for (const Problem& p : probs)
      for (double x : *v) next.push_back(Problem(p).set_param(ps.name, x));
    probs = std::move(next);
  }
  return probs;
}

Point make_point(const Kernel& k, Backend b, const Problem& p, const SweepGroup& g) {
  Point pt;
  pt.kernel = &k;
  pt.backend = b;
  pt.problem = p;
  for (const ParamSpec& ps : k.info().params)
    if (find_axis(g, ps.name) || p.real_param(ps.name) != 0) pt.shown_params.push_back(ps.name);
  pt.group = g.name;
  return pt;
}

}  // namespace

std::vector<Point> expand(const SweepSpec& s, const std::vector<Backend>& backends) {
  const Registry& reg = Registry::instance();
  std::vector<Point> points;
  std::set<std::string> seen;
  for (const SweepGroup& g : s.groups) {
    const auto names = group_kernel_names(g, s.vanilla_kernel, backends);
    const auto shapes = shape_points(g);
    for (Backend b : backends)
      for (const Problem& shape : shapes)
        for (const auto& name : names)
          if (const Kernel* k = reg.find(name, b))
            for (const Problem& p : kernel_problems(*k, g, shape)) {
              Point pt = make_point(*k, b, p, g);
              if (seen.insert(pt.key()).second) points.push_back(std::move(pt));
            }
  }
  return points;
}

// ---- one point -----------------------------------------------------------------------------

size_t harness_host_bytes(const Kernel& k, const Problem& p) {
  const KernelInfo& info = k.info();
  size_t bytes = input_sizes(p, info.inputs).bytes() + output_elems(p) * sizeof(float);
  // the vanilla equivalent of a codebook method (kernels.md section 5): q, k, v float32
  if (!info.is_vanilla && (info.inputs & kInputCodebooks)) bytes += 3 * output_elems(p) * sizeof(float);
  // float64 references and the per-thread score rows of the reference
  const size_t rows = std::max(correctness_rows(p).size(), approximation_rows(p).size());
  bytes += 2 * rows * size_t(p.head_dim) * sizeof(double) +
           size_t(omp_get_max_threads()) * size_t(p.seq_len) * sizeof(double) * 2;
  return bytes;
}

std::optional<std::string> memory_skip_reason(const Kernel& k, const Problem& p, Backend b,
                                              const RunOptions& o) {
  const WorkspaceSize ws = k.workspace(p);
  const double backend_bytes = double(input_sizes(p, k.info().inputs).bytes()) +
                               double(output_bytes(p)) + double(ws.total());
  const double host_bytes = double(harness_host_bytes(k, p));
  const double host_limit = o.host_memory_limit
                                ? double(o.host_memory_limit)
                                : 0.8 * double(backend_memory_bytes(Backend::cpu));
  if (b == Backend::cpu) {
    const double need = backend_bytes + host_bytes;
    if (need > host_limit)
      return fmt::format("needs {}, limit {}", format_bytes(need), format_bytes(host_limit));
    return std::nullopt;
  }
  const double dev_limit = o.device_memory_limit ? double(o.device_memory_limit)
                                                 : 0.8 * double(backend_memory_bytes(b));
  if (backend_bytes > dev_limit)
    return fmt::format("needs {} of device memory, limit {}", format_bytes(backend_bytes),
                       format_bytes(dev_limit));
  if (host_bytes > host_limit)
    return fmt::format("needs {} of host memory, limit {}", format_bytes(host_bytes),
                       format_bytes(host_limit));
  return std::nullopt;
}

std::optional<double> extrapolate_point_seconds(const Point& pt, const std::vector<Row>& done,
                                                const Timing& t, std::string* basis) {
  // done rows of the same kernel, backend and axes except seq_len, at smaller seq_len
  Problem probe = pt.problem;
  std::vector<const Row*> same;
  for (const Row& r : done) {
    if (r.status != "ok" || !r.time || !(r.time->median > 0)) continue;
    if (r.kernel != pt.kernel->info().name || r.backend != pt.backend) continue;
    if (r.problem.seq_len >= pt.problem.seq_len) continue;
    probe.seq_len = r.problem.seq_len;
    if (point_key(r.kernel, r.backend, probe) != row_key(r)) continue;
    same.push_back(&r);
  }
  if (same.empty()) return std::nullopt;
  std::sort(same.begin(), same.end(),
            [](const Row* a, const Row* b) { return a->problem.seq_len < b->problem.seq_len; });
  const Row& last = *same.back();
  const double n1 = double(last.problem.seq_len), n = double(pt.problem.seq_len);
  double slope = 1;
  if (pt.kernel->info().is_vanilla) {
    slope = 2;
  } else if (same.size() >= 2) {
    const Row& prev = *same[same.size() - 2];
    const double n0 = double(prev.problem.seq_len);
    slope = std::log(last.time->median / prev.time->median) / std::log(n1 / n0);
    if (!std::isfinite(slope)) slope = 1;
    slope = std::clamp(slope, 1.0, 3.0);
  }
  const double ratio = n / n1;
  const double run_ms = last.time->median * std::pow(ratio, slope);
  double reps = std::max<double>(t.min_reps, std::ceil(t.min_time_s * 1000.0 / run_ms));
  reps = std::min<double>(reps, t.max_reps);
  // the untimed part: inputs and setup grow linearly with N; the accuracy checks cost O(N) per
  // checked row, and the number of checked rows changes with N (correctness_rows)
  double timed_s = 0;
  for (double x : last.time->samples) timed_s += x / 1000.0;
  const double setup_s = std::max(0.0, last.point_seconds - timed_s - last.check_seconds -
                                           last.warmup_runs * last.time->median / 1000.0);
  const double rows_then = double(last.correctness_rows + last.approx_rows);
  const double rows_now = double(correctness_rows(pt.problem).size() + approximation_rows(pt.problem).size());
  const double check_s = rows_then > 0 ? last.check_seconds * ratio * rows_now / rows_then : 0.0;
  const double est = run_ms * (reps + t.warmup) / 1000.0 + setup_s * ratio + check_s;
  if (basis)
    *basis = fmt::format("from N={} at {:.3g} ms/run, time ~ N^{:.2f}", last.problem.seq_len,
                         last.time->median, slope);
  return est;
}

double measure_sgemm_gflops() {
  // Best of a few runs of one all-threads product and of one product per thread in parallel
  // (OpenBLAS runs serially inside a parallel region), and never below 16 GFLOP/s per thread:
  // the rate must not understate the machine on a loaded host, or the lower bound built on it
  // would skip points that can run.
  constexpr int n = 384;
  const int threads = omp_get_max_threads();
  std::vector<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n * size_t(threads));
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = float(counter_normal(7, 1, i));
    b[i] = float(counter_normal(7, 2, i));
  }
  const double flop = 2.0 * n * double(n) * n;
  double best = 16.0 * threads;
  for (int r = 0; r < 4; ++r) {  // r = 0 warms up
    auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                n, 0.0f, c.data(), n);
    double s = seconds_since(t0);
    if (r > 0 && s > 0) best = std::max(best, flop / s / 1e9);
    t0 = Clock::now();
#pragma omp parallel
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                n, 0.0f, c.data() + size_t(omp_get_thread_num()) * n * n, n);
    s = seconds_since(t0);
    if (r > 0 && s > 0) best = std::max(best, threads * flop / s / 1e9);
  }
  return best;
}

std::optional<double> lower_bound_point_seconds(const Kernel& k, const Problem& p, const Timing& t,
                                                double sgemm_gflops) {
  const double flops = k.flops(p);
  if (!(sgemm_gflops > 0) || !(flops > 0)) return std::nullopt;
  return double(t.warmup + t.min_reps) * flops / (2.0 * sgemm_gflops * 1e9);
}

std::vector<RowId> correctness_rows(const Problem& p) {
  // every row of the first and the last sequence (a wrong sequence offset shows in the last)
  if (p.seq_len <= 2048) return sample_rows(p, std::min<int64_t>(p.sequences(), 2) * p.seq_len, 2);
  return sample_rows(p, 64, 4);
}

std::vector<RowId> approximation_rows(const Problem& p) { return sample_rows(p, 256, 4); }

Accuracy check_accuracy(const Kernel& k, const Problem& p, const HostInputs& in,
                        const std::vector<float>& out) {
  Accuracy a;
  const KernelInfo& info = k.info();
  const Inputs view = in.view();
  const int64_t dh = p.head_dim;
  if (const Kernel* ref = Registry::instance().find(info.name, Backend::cpu)) {
    const auto rows = correctness_rows(p);
    std::vector<double> want(rows.size() * size_t(dh));
    parallel_rows(rows, dh, want.data(), [&](std::span<const RowId> r, double* o) {
      ref->reference_rows(p, view, r, o);
    });
    a.correctness_rel_l2 = rel_l2_rows(p, out.data(), rows, want.data());
    a.correctness_rows = int64_t(rows.size());
  }
  if (!info.is_vanilla && (info.inputs & (kInputQKV | kInputCodebooks))) {
    const auto rows = approximation_rows(p);
    std::vector<double> want(rows.size() * size_t(dh));
    const double scale = 1.0 / std::sqrt(double(dh));
    if (info.inputs & kInputCodebooks) {
      const QKV e = lisa_equivalent_qkv(p, view, (info.inputs & kInputProbs) != 0);
      parallel_rows(rows, dh, want.data(), [&](std::span<const RowId> r, double* o) {
        vanilla_reference_rows(p, e.q.data(), e.k.data(), e.v.data(), scale, r, o);
      });
    } else {
      parallel_rows(rows, dh, want.data(), [&](std::span<const RowId> r, double* o) {
        vanilla_reference_rows(p, view.q, view.k, view.v, scale, r, o);
      });
    }
    a.approx_rel_l2 = rel_l2_rows(p, out.data(), rows, want.data());
    a.approx_cosine = mean_cosine(p, out.data(), rows, want.data());
    a.approx_rows = int64_t(rows.size());
  }
  return a;
}

std::string repro_command(const Point& pt, const std::string& extra) {
  const Problem& p = pt.problem;
  std::string s = fmt::format("attnbench sweep --kernels {} --backend {}", pt.kernel->info().name,
                              backend_name(pt.backend));
  for (const auto& a : shape_axes()) s += fmt::format(" --axis {}={}", a, axis_text(p, a));
  for (const auto& [n, v] : p.params) s += fmt::format(" --axis {}={}", n, number_text(v));
  if (!extra.empty()) s += " " + extra;
  return s;
}

namespace {
std::string repro_flags(const Timing& t, const RunOptions& o) {
  std::string s = fmt::format("--threads {} --warmup {} --min-reps {} --max-reps {} --min-time {}",
                              o.threads > 0 ? o.threads : omp_get_max_threads(), t.warmup,
                              t.min_reps, t.max_reps, number_text(t.min_time_s));
  if (o.max_point_seconds != 60) s += fmt::format(" --max-point-seconds {}", number_text(o.max_point_seconds));
  if (!o.repro_extra.empty()) s += " " + o.repro_extra;
  return s;
}
}  // namespace

size_t parse_bytes(const std::string& text) {
  const std::string where = "--memory-limit " + text;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    bad(where, "expected a size such as 20G, 512M or 1500000000");
  }
  std::string unit = text.substr(used);
  unit.erase(0, unit.find_first_not_of(' '));
  double mult = 0;
  const std::pair<const char*, double> units[] = {
      {"", 1},        {"B", 1},          {"K", 1024.0},      {"KiB", 1024.0},
      {"kB", 1e3},    {"KB", 1e3},       {"M", 1048576.0},   {"MiB", 1048576.0},
      {"MB", 1e6},    {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
      {"T", 1099511627776.0}, {"TiB", 1099511627776.0}, {"TB", 1e12}};
  for (const auto& [u, m] : units)
    if (unit == u) mult = m;
  if (mult == 0) bad(where, fmt::format("unknown unit '{}' (use K, M, G, T, KiB.. or kB, MB, GB, TB)", unit));
  if (!std::isfinite(v) || v <= 0) bad(where, "the limit must be positive");
  return size_t(v * mult);
}

Row run_point(const Point& pt, const RunOptions& o, const std::vector<Row>& done,
              BackendRunner& runner) {
  const auto t_start = Clock::now();
  const Kernel& k = *pt.kernel;
  const Problem& p = pt.problem;
  Row row;
  row.kernel = k.info().name;
  row.backend = pt.backend;
  row.problem = p;
  row.family = k.info().family;
  const Timing timing = o.timing.count(pt.backend) ? o.timing.at(pt.backend) : default_timing(pt.backend);
  row.repro = repro_command(pt, repro_flags(timing, o));
  row.timing_method = pt.backend == Backend::cpu ? "steady_clock" : "cuda_events";
  auto finish = [&](const char* status, std::string reason) {
    row.status = status;
    row.reason = std::move(reason);
    row.point_seconds = seconds_since(t_start);
    return row;
  };

  try {
    k.validate(p);
  } catch (const std::exception& e) {
    return finish("skipped", e.what());
  }
  const WorkspaceSize ws = k.workspace(p);
  row.memory.inputs_bytes = input_sizes(p, k.info().inputs).bytes();
  row.memory.outputs_bytes = output_bytes(p);
  row.memory.prepared_bytes = ws.prepared_bytes;
  row.memory.scratch_bytes = ws.scratch_bytes;
  row.flops = k.flops(p);
  row.min_bytes = k.min_bytes(p);

  if (auto why = memory_skip_reason(k, p, pt.backend, o)) return finish("skipped", *why);
  if (o.max_point_seconds > 0) {
    std::string basis;
    if (auto est = extrapolate_point_seconds(pt, done, timing, &basis); est && *est > o.max_point_seconds)
      return finish("skipped", fmt::format("extrapolated {} for this point ({}) exceeds "
                                           "--max-point-seconds {}",
                                           format_seconds(*est), basis,
                                           number_text(o.max_point_seconds)));
    if (pt.backend == Backend::cpu)
      if (auto low = lower_bound_point_seconds(k, p, timing, o.cpu_sgemm_gflops);
          low && *low > o.max_point_seconds)
        return finish("skipped",
                      fmt::format("needs at least {} ({} runs of {:.3g} GFLOP at no more than twice "
                                  "this machine's sgemm rate of {:.0f} GFLOP/s), over "
                                  "--max-point-seconds {}",
                                  format_seconds(*low), timing.warmup + timing.min_reps,
                                  row.flops / 1e9, o.cpu_sgemm_gflops,
                                  number_text(o.max_point_seconds)));
  }

  struct Teardown {
    BackendRunner& r;
    ~Teardown() {
      try {
        r.teardown();
      } catch (...) {
      }
    }
  };
  try {
    const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
    std::vector<double> samples;
    samples.reserve(size_t(timing.max_reps));  // before setup: not part of the measured peak
    std::vector<float> out;
    {
      Teardown guard{runner};
      runner.setup(k, p, in);
      row.memory = runner.memory();
      for (int w = 0; w < timing.warmup; ++w) {
        runner.flush_cache();
        runner.run_once_ms();
        ++row.warmup_runs;
        if (o.interrupted && o.interrupted->load()) throw Interrupted{};
        // a run this long needs no more warming up: keep the time for the samples
        if (o.max_point_seconds > 0 && seconds_since(t_start) > 0.5 * o.max_point_seconds) break;
      }
      double timed_ms = 0;
      for (;;) {
        runner.flush_cache();
        const double ms = runner.run_once_ms();
        samples.push_back(ms);
        timed_ms += ms;
        const auto n = int64_t(samples.size());
        if (n >= timing.max_reps) break;
        if (n >= timing.min_reps && timed_ms >= timing.min_time_s * 1000.0) break;
        if (o.max_point_seconds > 0 && seconds_since(t_start) > o.max_point_seconds) break;
        if (o.interrupted && o.interrupted->load()) throw Interrupted{};
      }
      row.measured_peak_bytes = runner.measured_peak_bytes();
      apply_run_notes(runner.notes(), row);
      row.measured_peak_source = pt.backend == Backend::cuda ? "cuda_pool"
                                 : heap::interposed()        ? "heap"
                                                             : "counting_allocator";
      if (k.profiles_phases()) {
        double wall_ms = 0;
        const std::vector<PhaseTime> phases = runner.profile_run(&wall_ms);
        double sum_s = 0;
        for (const PhaseTime& ph : phases) sum_s += ph.seconds;
        for (const PhaseTime& ph : phases)
          row.phases.push_back({ph.name, ph.seconds * 1e3, sum_s > 0 ? ph.seconds / sum_s : 0.0,
                                ph.flops, ph.bytes, "", std::nullopt});
        if (!phases.empty()) row.profile_ms = wall_ms;
      }
      out = runner.output();
    }
    TimeStats ts;
    static_cast<stats::Summary&>(ts) = stats::summarize(samples);
    ts.samples = std::move(samples);
    row.time = std::move(ts);
    if (row.time->median > 0) row.gflops_per_s = row.flops / (row.time->median * 1e-3) / 1e9;

    const double peak = double(row.memory.peak_bytes()), measured = double(*row.measured_peak_bytes);
    const double diff = measured - peak;
    constexpr double kSlackBytes = 64 * 1024;
    row.memory_agrees = std::fabs(diff) <= std::max(0.05 * peak, kSlackBytes);
    if (!*row.memory_agrees) {
      row.memory_note = fmt::format("measured {} but the kernel's query gives {} ({:+.1f} %)",
                                    format_bytes(measured), format_bytes(peak), 100.0 * diff / peak);
      if (diff > 0 && row.measured_peak_source == "heap")
        row.memory_note += fmt::format(
            "; the excess is heap the kernel or a library it calls allocated itself during "
            "prepare or run (e.g. OpenBLAS's threaded sgemm allocates 512 kB of job buffers per call)");
    }
    else if (std::fabs(diff) > 0.05 * peak)
      row.memory_note = fmt::format("small point: measured differs by {} B, within the 64 kB "
                                    "allowed for allocator rounding and runtime bookkeeping",
                                    int64_t(diff));

    size_t unwritten = 0, non_finite = 0;
    for (float x : out) {
      if (is_poison(x))
        ++unwritten;
      else if (!std::isfinite(x))
        ++non_finite;
    }
    if (unwritten)
      return finish("error", fmt::format("the kernel left {} of {} output elements unwritten",
                                         unwritten, out.size()));
    const auto t_check = Clock::now();
    const Accuracy acc = check_accuracy(k, p, in, out);
    row.check_seconds = seconds_since(t_check);
    row.correctness_rel_l2 = acc.correctness_rel_l2;
    row.correctness_rows = acc.correctness_rows;
    judge_correctness(row);
    row.approx_rel_l2 = acc.approx_rel_l2;
    row.approx_cosine = acc.approx_cosine;
    row.approx_rows = acc.approx_rows;
    if (non_finite)
      return finish("error", fmt::format("{} of {} output elements are NaN or infinite",
                                         non_finite, out.size()));
  } catch (const Interrupted&) {
    throw;
  } catch (const std::bad_alloc&) {
    row.time.reset();
    return finish("error", "out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    row.time.reset();
    return finish("error", e.what());
  }
  return finish("ok", "");
}

// ---- the sweep -----------------------------------------------------------------------------

size_t run_sweep(const std::vector<Point>& points, const RunOptions& opt, ResultsFile& file,
                 const std::string& out_path,
                 const std::function<void(const SweepProgress&)>& progress) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  RunOptions o = opt;
  if (o.max_point_seconds > 0 && !(o.cpu_sgemm_gflops > 0) &&
      std::any_of(points.begin(), points.end(), [](const Point& p) { return p.backend == Backend::cpu; }))
    o.cpu_sgemm_gflops = measure_sgemm_gflops();
  std::set<std::string> have;
  for (const Row& r : file.rows)
    if (r.status == "ok" || r.status == "skipped") have.insert(row_key(r));
  std::vector<const Point*> todo;
  for (const Point& pt : points)
    if (!have.count(pt.key())) todo.push_back(&pt);

  std::map<Backend, std::unique_ptr<BackendRunner>> runners;
  const auto t0 = Clock::now();
  size_t ran = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const Point& pt = *todo[i];
    SweepProgress pr;
    pr.index = i;
    pr.total = todo.size();
    pr.point = &pt;
    pr.elapsed_s = seconds_since(t0);
    if (i > 0) pr.eta_s = pr.elapsed_s / double(i) * double(todo.size() - i);
    if (progress) progress(pr);
    if (o.interrupted && o.interrupted->load()) break;

    Row row;
    try {
      auto& runner = runners[pt.backend];
      if (!runner) runner = make_runner(pt.backend, RunnerOptions{o.cuda_warm});
      row = run_point(pt, o, file.rows, *runner);
    } catch (const Interrupted&) {
      break;
    } catch (const std::exception& e) {
      row.kernel = pt.kernel->info().name;
      row.backend = pt.backend;
      row.problem = pt.problem;
      row.family = pt.kernel->info().family;
      row.status = "error";
      row.reason = e.what();
      row.repro = repro_command(pt, repro_flags(o.timing.count(pt.backend) ? o.timing.at(pt.backend)
                                                                           : default_timing(pt.backend),
                                                o));
    }
    if (row.status == "ok" && row.time) fill_roofline(row, file.environment.calibration);
    // an error row of an earlier run of this point is replaced
    const std::string key = row_key(row);
    size_t at = 0;
    while (at < file.rows.size() && row_key(file.rows[at]) != key) ++at;
    if (at < file.rows.size())
      file.rows[at] = std::move(row);
    else
      file.rows.push_back(std::move(row));
    const Row& stored = file.rows[at];
    ++ran;
    fill_vs_vanilla(file);
    if (!out_path.empty()) write_results(out_path, file);
    if (progress) {
      pr.finished = &stored;
      pr.elapsed_s = seconds_since(t0);
      pr.eta_s = pr.elapsed_s / double(i + 1) * double(todo.size() - i - 1);
      progress(pr);
    }
  }
  fill_vs_vanilla(file);
  return ran;
}

// ---- the final table -----------------------------------------------------------------------

std::string results_table(const ResultsFile& f) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"kernel", "backend", "point", "median ms", "% peak", "peak MB", "speedup",
                   "mem ratio", "correct", "approx", "status"});
  auto sci = [](const std::optional<double>& v) { return v ? fmt::format("{:.1e}", *v) : "-"; };
  for (const Row& r : f.rows) {
    std::vector<std::string> c;
    c.push_back(r.kernel);
    c.push_back(backend_name(r.backend));
    c.push_back(describe_point(r.problem));
    c.push_back(r.time ? fmt::format("{:.3f}", r.time->median) : "-");
    c.push_back(r.pct_of_peak ? fmt::format("{:.0f} {}", *r.pct_of_peak, r.roofline_bound.substr(0, 3))
                              : "-");
    c.push_back(fmt::format("{:.1f}", double(r.memory.peak_bytes()) / 1e6));
    c.push_back(r.vs_vanilla ? fmt::format("{:.2f}x", r.vs_vanilla->speedup) : "-");
    c.push_back(r.vs_vanilla ? fmt::format("{:.2f}x", r.vs_vanilla->memory_ratio) : "-");
    c.push_back(sci(r.correctness_rel_l2));
    c.push_back(sci(r.approx_rel_l2));
    std::string st = r.status;
    if (!r.reason.empty()) {
      std::string reason = r.reason;
      if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
      st += ": " + reason;
    } else if (r.memory_agrees && !*r.memory_agrees) {
      st += " (memory: measured differs)";
    }
    c.push_back(st);
    cells.push_back(std::move(c));
  }
  std::vector<size_t> w(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::string out;
  for (size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < cells[r].size(); ++i) {
      const bool right = i >= 3 && i <= 9;
      const std::string& s = cells[r][i];
      const std::string pad(w[i] - s.size(), ' ');
      line += (i ? "  " : "") + (right ? pad + s : (i + 1 < cells[r].size() ? s + pad : s));
    }
    out += line + "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t x : w) total += x + 2;
      out += std::string(total - 2, '-') + "\n";
    }
  }
  return out;
}

}  // namespace attnbench
