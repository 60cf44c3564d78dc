#include "sweep_spec.hpp"


#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "errors.hpp"
#include "file_io.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

using AxisList = std::vector<std::pair<std::string, AxisValues>>;

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
    fail_at(where, fmt::format("{} takes true/false (or causal/bidirectional), got '{}'", axis, s));
  }
  if (axis == "precision") {
    if (const auto pr = parse_precision(s)) return double(static_cast<int>(*pr));
    fail_at(where, fmt::format("precision takes fp32, tf32, bf16 or fp16, got '{}'", s));
  }
  const auto v = parse_number(s);
  if (!v) fail_at(where, fmt::format("{}: '{}' is not a number", axis, s));
  return *v;
}

Timing parse_timing(const ojson& j, Timing t, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "cpu" || k == "cuda") continue;
    const std::string field = fmt::format("{}: timing.{}", where, k);
    if (!it->is_number()) fail_at(field, "must be a number");
    const double v = it->get<double>();
    if (k == "warmup")
      t.warmup = int(whole_in(v, kWarmupRange, field));
    else if (k == "min_reps")
      t.min_reps = int(whole_in(v, kRepsRange, field));
    else if (k == "max_reps")
      t.max_reps = int(whole_in(v, kRepsRange, field));
    else if (k == "min_time_s")
      t.min_time_s = real_in(v, kMinTimeRange, field);
    else
      fail_at(where, fmt::format("timing: unknown key '{}' (known: warmup, min_reps, max_reps, "
                                 "min_time_s, cpu, cuda)",
                                 k));
  }
  t.max_reps = std::max(t.max_reps, t.min_reps);
  return t;
}

// The top-level timing, then each backend's own sub-object over it.
void parse_timing_object(SweepSpec& s, const ojson& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "'timing' must be an object");
  for (Backend b : {Backend::cpu, Backend::cuda}) {
    Timing t = parse_timing(j, s.timing[b], where);
    if (auto sub = j.find(backend_name(b)); sub != j.end()) {
      if (!sub->is_object()) fail_at(where, fmt::format("timing.{} must be an object", backend_name(b)));
      t = parse_timing(*sub, t, where);
    }
    s.timing[b] = t;
  }
}

AxisList parse_axes(const ojson& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "'axes' must be an object of axis name -> list of values");
  AxisList axes;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (!is_axis(name))
      fail_at(where, fmt::format("unknown axis '{}' (known: {})", name, known_axes()));
    AxisValues vals;
    if (it->is_array()) {
      for (const auto& v : *it) vals.push_back(axis_value_from_json(name, v, where));
    } else {
      vals.push_back(axis_value_from_json(name, *it, where));
    }
    if (vals.empty()) fail_at(where, fmt::format("axis '{}' has no values", name));
    check_axis_values(name, vals, where);
    axes.emplace_back(name, vals);
  }
  return axes;
}

std::vector<std::string> parse_names(const ojson& j, const char* what, const std::string& where) {
  std::vector<std::string> v;
  if (j.is_string() && j.get<std::string>().empty())
    fail_at(where, fmt::format("'{}' is empty", what));
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) fail_at(where, fmt::format("'{}' must be a list of names", what));
  for (const auto& x : j) {
    if (!x.is_string()) fail_at(where, fmt::format("'{}' must be a list of names", what));
    if (x.get<std::string>().empty()) fail_at(where, fmt::format("'{}' holds an empty name", what));
    v.push_back(x.get<std::string>());
  }
  if (v.empty()) fail_at(where, fmt::format("'{}' is empty", what));
  return v;
}

std::string parse_string(const ojson& j, const char* what, const std::string& where) {
  if (!j.is_string()) fail_at(where, fmt::format("'{}' must be a string", what));
  return j.get<std::string>();
}

const AxisValues* find_axis(const SweepGroup& g, const std::string& name) {
  for (const auto& [n, v] : g.axes)
    if (n == name) return &v;
  return nullptr;
}

// Replaces the axis in the group, or adds it after the others.
void set_group_axis(SweepGroup& g, const std::string& axis, const AxisValues& values) {
  auto it = std::find_if(g.axes.begin(), g.axes.end(), [&](const auto& a) { return a.first == axis; });
  if (it != g.axes.end())
    it->second = values;
  else
    g.axes.emplace_back(axis, values);
}

// An axis value as the command line takes it back (--axis name=text).
std::string axis_text(const Problem& p, const std::string& axis) {
  if (axis == "causal") return p.causal ? "true" : "false";
  if (axis == "precision") return precision_name(p.precision);
  return number_text(get_axis(p, axis));
}

// What the top level of a sweep file sets for every group.
struct TopLevel {
  std::vector<std::string> kernels = {"all"};
  AxisList axes;
  const ojson* groups = nullptr;
};

void parse_top_key(SweepSpec& s, TopLevel& top, const std::string& key, const ojson& v,
                   const std::string& name) {
  if (key == "name") {
    s.name = parse_string(v, "name", name);
    if (s.name.empty()) fail_at(name, "'name' is empty");
  } else if (key == "description") {
    s.description = parse_string(v, "description", name);
  } else if (key == "kernels") {
    top.kernels = parse_names(v, "kernels", name);
  } else if (key == "backends") {
    s.backends = parse_names(v, "backends", name);
    for (const auto& b : s.backends)
      if (b != "all" && !parse_backend(b))
        fail_at(name, fmt::format("unknown backend '{}' (known: cpu, cuda, all)", b));
  } else if (key == "vanilla_kernel") {
    s.vanilla_kernel = parse_string(v, "vanilla_kernel", name);
  } else if (key == "max_point_seconds") {
    const std::string field = name + ": max_point_seconds";
    if (!v.is_number()) fail_at(field, "must be a number");
    s.max_point_seconds = real_in(v.get<double>(), kPointSecondsRange, field);
  } else if (key == "threads") {
    const std::string field = name + ": threads";
    if (!v.is_number()) fail_at(field, "must be a whole number (0 = every core)");
    s.threads = int(whole_in(v.get<double>(), IntRange{0, 1 << 20}, field));
  } else if (key == "memory_limit") {
    const std::string field = name + ": memory_limit";
    if (!v.is_number()) fail_at(field, "must be a number of bytes (0 = 80 % of the memory)");
    s.memory_limit = size_t(whole_in(v.get<double>(), IntRange{0, int64_t(1) << 60}, field));
  } else if (key == "cuda_cache") {
    const std::string c = parse_string(v, "cuda_cache", name);
    if (c != "cold" && c != "warm") fail_at(name, "'cuda_cache' must be \"cold\" or \"warm\"");
    s.cuda_warm = c == "warm";
  } else if (key == "timing") {
    parse_timing_object(s, v, name);
  } else if (key == "axes") {
    top.axes = parse_axes(v, name);
  } else if (key == "groups") {
    if (!v.is_array() || v.empty()) fail_at(name, "'groups' must be a non-empty list");
    top.groups = &v;
  } else {
    fail_at(name, fmt::format("unknown key '{}' (known: name, description, kernels, backends, "
                              "vanilla_kernel, timing, max_point_seconds, threads, "
                              "memory_limit, cuda_cache, axes, groups)",
                              key));
  }
}

// One entry of "groups": the top level's kernels and axes, overridden by the group's own.
SweepGroup parse_group(const ojson& g, const TopLevel& top, size_t index, const std::string& name) {
  const std::string where = fmt::format("{}: groups[{}]", name, index);
  if (!g.is_object()) fail_at(where, "a group must be an object");
  SweepGroup grp{fmt::format("group{}", index), top.kernels, top.axes};
  for (auto it = g.begin(); it != g.end(); ++it) {
    if (it.key() == "name") {
      grp.name = parse_string(*it, "name", where);
    } else if (it.key() == "kernels") {
      grp.kernels = parse_names(*it, "kernels", where);
    } else if (it.key() == "axes") {
      for (auto& [n, v] : parse_axes(*it, where)) set_group_axis(grp, n, v);
    } else {
      fail_at(where, fmt::format("unknown key '{}' (known: name, kernels, axes)", it.key()));
    }
  }
  return grp;
}

ojson group_json(const SweepGroup& g) {
  ojson axes = ojson::object();
  for (const auto& [name, values] : g.axes) {
    ojson v = ojson::array();
    for (double x : values) v.push_back(axis_value_json(name, x));
    axes[name] = std::move(v);
  }
  return {{"name", g.name}, {"kernels", g.kernels}, {"axes", std::move(axes)}};
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

ojson to_json(const Timing& t) {
  return {{"warmup", t.warmup},
          {"min_reps", t.min_reps},
          {"max_reps", t.max_reps},
          {"min_time_s", t.min_time_s}};
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
  if (!is_axis(axis)) fail_at(where, fmt::format("unknown axis '{}' (known: {})", axis, known_axes()));
  if (vals.empty()) fail_at(where, fmt::format("axis {} has no values", axis));
  const ParamSpec* spec = Registry::instance().parameter(axis);
  for (double v : vals) {
    if (!std::isfinite(v)) fail_at(where, fmt::format("axis {}: {} is not a finite number", axis, v));
    if (v < 0) fail_at(where, fmt::format("axis {}: {} must not be negative", axis, number_text(v)));
    const bool size_axis = is_shape_axis(axis) && axis != "causal" && axis != "precision" && axis != "seed";
    if (size_axis && v < 1)
      fail_at(where, fmt::format("axis {}: {} must be positive", axis, number_text(v)));
    if (spec && (v < spec->min_value || v > spec->max_value ||
                 (spec->kind != ParamKind::real && v != std::floor(v))))
      fail_at(where, fmt::format("axis {}: {} is not a valid value ({} in [{}, {}])", axis,
                                 number_text(v), param_kind_name(spec->kind),
                                 number_text(spec->min_value), number_text(spec->max_value)));
    Problem probe;
    try {
      set_axis(probe, axis, v);  // the shape axes' integer and range checks
    } catch (const InvalidProblem& e) {
      fail_at(where, e.what());
    }
  }
}

SweepSpec builtin_sweep() {
  SweepSpec s;
  s.groups.push_back({"main", {"all"}, {}});
  return s;
}

SweepSpec parse_sweep(const ojson& j, const std::string& name) {
  if (!j.is_object()) fail_at(name, "a sweep file must hold a JSON object");
  SweepSpec s;
  s.source = name;
  s.name = std::filesystem::path(name).stem().string();
  TopLevel top;
  for (auto it = j.begin(); it != j.end(); ++it) parse_top_key(s, top, it.key(), *it, name);
  if (!top.groups) {
    s.groups.push_back({"main", top.kernels, top.axes});
    return s;
  }
  for (size_t gi = 0; gi < top.groups->size(); ++gi)
    s.groups.push_back(parse_group((*top.groups)[gi], top, gi, name));
  return s;
}

SweepSpec load_sweep_file(const std::string& path) {
  const std::string text = file_io::read_regular(path, file_io::kMaxJsonInputBytes, "a sweep file");
  ojson j;
  try {
    j = ojson::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const ojson::parse_error& e) {
    fail_at(path, fmt::format("not valid JSON ({})", one_line(e.what())));
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

ojson to_json(const SweepSpec& s) {
  ojson timing = ojson::object();
  for (const auto& [b, t] : s.timing) timing[backend_name(b)] = to_json(t);
  ojson groups = ojson::array();
  for (const SweepGroup& g : s.groups) groups.push_back(group_json(g));
  return {{"name", s.name},
          {"description", s.description},
          {"backends", s.backends},
          {"vanilla_kernel", s.vanilla_kernel},
          {"timing", std::move(timing)},
          {"max_point_seconds", s.max_point_seconds},
          {"threads", s.threads},
          {"memory_limit", s.memory_limit},
          {"cuda_cache", s.cuda_warm ? "warm" : "cold"},
          {"groups", std::move(groups)}};
}

std::pair<std::string, AxisValues> parse_axis_override(const std::string& text) {
  const std::string where = "--axis " + text;
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail_at(where, "expected name=value[,value...], e.g. seq_len=512,1024");
  const std::string name = text.substr(0, eq);
  if (!is_axis(name)) fail_at(where, fmt::format("unknown axis '{}' (known: {})", name, known_axes()));
  const std::string list = text.substr(eq + 1);
  if (list.empty())
    fail_at(where, fmt::format("axis {} has no values (e.g. {}=512,1024)", name, name));
  AxisValues vals;
  for (const auto& v : split(list, ',')) {
    if (v.empty()) fail_at(where, fmt::format("axis {}: an empty value in '{}'", name, list));
    vals.push_back(axis_value_text(name, v, where));
  }
  check_axis_values(name, vals, where);
  return {name, vals};
}

void override_axis(SweepSpec& s, const std::string& axis, const AxisValues& values) {
  for (auto& g : s.groups) set_group_axis(g, axis, values);
}

void override_kernels(SweepSpec& s, const std::vector<std::string>& kernels) {
  for (auto& g : s.groups) g.kernels = kernels;
}

// ---- comparing sweeps ----------------------------------------------------------------------

namespace {

bool same_group(const SweepGroup& a, const SweepGroup& b) {
  return a.kernels == b.kernels && a.axes == b.axes;
}

bool has_group(const std::vector<SweepGroup>& groups, const SweepGroup& g) {
  return std::any_of(groups.begin(), groups.end(),
                     [&](const SweepGroup& h) { return same_group(g, h); });
}

// An axis value as a person writes it: true/false, fp16, 4096.
std::string value_text(const std::string& axis, double v) {
  if (axis == "causal") return v != 0 ? "true" : "false";
  if (axis == "precision") return precision_name(static_cast<Precision>(int(v)));
  return number_text(v);
}

// "axis seq_len += 4096,8192" for each axis whose values in `asked` some group of `stored`
// lacks.
std::vector<std::string> axis_words(const SweepSpec& stored, const SweepSpec& asked) {
  std::vector<std::string> words;
  std::vector<std::string> names;
  for (const auto& g : asked.groups)
    for (const auto& [name, v] : g.axes)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  for (const auto& name : names) {
    std::set<double> had, added;
    for (const auto& g : stored.groups)
      if (const AxisValues* v = find_axis(g, name)) had.insert(v->begin(), v->end());
    for (const auto& g : asked.groups)
      if (const AxisValues* v = find_axis(g, name))
        for (double x : *v)
          if (!had.count(x)) added.insert(x);
    std::vector<std::string> text;
    for (double x : added) text.push_back(value_text(name, x));
    if (!text.empty()) words.push_back(fmt::format("axis {} += {}", name, join(text, ",")));
  }
  return words;
}

// The kernels a spec's groups name ("all": every registered one).
std::set<std::string> named_kernels(const SweepSpec& s) {
  std::set<std::string> names;
  for (const auto& g : s.groups)
    for (const auto& k : g.kernels)
      if (k == "all") {
        for (const auto& r : Registry::instance().names()) names.insert(r);
      } else {
        names.insert(k);
      }
  return names;
}

// "kernels += hydra" for the kernels `asked` names that `stored` does not.
std::vector<std::string> kernel_words(const SweepSpec& stored, const SweepSpec& asked) {
  const std::set<std::string> had = named_kernels(stored);
  std::vector<std::string> added;
  for (const auto& k : named_kernels(asked))
    if (!had.count(k)) added.push_back(k);
  if (added.empty()) return {};
  return {"kernels += " + join(added, ",")};
}

// The timing fields that differ on the backends `asked` runs: "timing cpu min_time_s 0.005 -> 0.1".
std::vector<std::string> timing_words(const SweepSpec& stored, const SweepSpec& asked) {
  std::vector<std::string> words;
  for (const auto& [b, t] : asked.timing) {
    const std::string name = backend_name(b);
    if (std::find(asked.backends.begin(), asked.backends.end(), name) == asked.backends.end())
      continue;  // not run
    const auto it = stored.timing.find(b);
    const Timing old = it == stored.timing.end() ? default_timing(b) : it->second;
    const ojson o = to_json(old), n = to_json(t);
    for (auto f = n.begin(); f != n.end(); ++f)
      if (o[f.key()] != *f)
        words.push_back(fmt::format("timing {} {} {} -> {}", name, f.key(),
                                    number_text(o[f.key()].get<double>()),
                                    number_text(f->get<double>())));
  }
  return words;
}

std::string threads_text(int t) { return t > 0 ? std::to_string(t) : "every core"; }
std::string memory_text(size_t b) { return b > 0 ? format_bytes(double(b)) : "80 % of memory"; }

// The run settings that differ (timing, limits, threads, L2), each "name old -> new".
std::vector<std::string> setting_words(const SweepSpec& stored, const SweepSpec& asked) {
  std::vector<std::string> w = timing_words(stored, asked);
  if (stored.max_point_seconds != asked.max_point_seconds)
    w.push_back(fmt::format("max_point_seconds {} -> {}", number_text(stored.max_point_seconds),
                            number_text(asked.max_point_seconds)));
  if (stored.threads != asked.threads)
    w.push_back(fmt::format("threads {} -> {}", threads_text(stored.threads),
                            threads_text(asked.threads)));
  if (stored.memory_limit != asked.memory_limit)
    w.push_back(fmt::format("memory limit {} -> {}", memory_text(stored.memory_limit),
                            memory_text(asked.memory_limit)));
  if (stored.cuda_warm != asked.cuda_warm)
    w.push_back(fmt::format("cuda_cache {} -> {}", stored.cuda_warm ? "warm" : "cold",
                            asked.cuda_warm ? "warm" : "cold"));
  return w;
}

}  // namespace

bool same_sweep(const SweepSpec& a, const SweepSpec& b) {
  ojson x = to_json(a), y = to_json(b);
  for (const char* k : {"name", "description"}) x.erase(k), y.erase(k);
  return x == y;
}

std::string describe_change(const SweepSpec& stored, const SweepSpec& asked) {
  std::vector<std::string> w = axis_words(stored, asked);
  for (auto& k : kernel_words(stored, asked)) w.push_back(std::move(k));
  const bool new_groups =
      std::any_of(asked.groups.begin(), asked.groups.end(),
                  [&](const SweepGroup& g) { return !has_group(stored.groups, g); });
  if (w.empty() && new_groups) w.push_back("groups += the sweep's groups as given");
  for (const auto& b : asked.backends)
    if (std::find(stored.backends.begin(), stored.backends.end(), b) == stored.backends.end())
      w.push_back("backends += " + b);
  if (stored.vanilla_kernel != asked.vanilla_kernel)
    w.push_back(
        fmt::format("vanilla kernel {} -> {}", stored.vanilla_kernel, asked.vanilla_kernel));
  const auto settings = setting_words(stored, asked);
  w.insert(w.end(), settings.begin(), settings.end());
  return join(w, "; ");
}

SweepSpec extended_sweep(const SweepSpec& stored, const SweepSpec& asked) {
  SweepSpec s = asked;
  s.name = stored.name;
  s.description = stored.description;
  s.source = stored.source;
  s.backends = stored.backends;
  for (const auto& b : asked.backends)
    if (std::find(s.backends.begin(), s.backends.end(), b) == s.backends.end())
      s.backends.push_back(b);
  s.groups = stored.groups;
  for (SweepGroup g : asked.groups) {
    if (has_group(s.groups, g)) continue;
    const std::string base = g.name;
    auto taken = [&](const std::string& n) {
      return std::any_of(s.groups.begin(), s.groups.end(),
                         [&](const SweepGroup& h) { return h.name == n; });
    };
    for (int i = 1; taken(g.name); ++i) g.name = fmt::format("{}+{}", base, i);
    s.groups.push_back(std::move(g));
  }
  return s;
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

// ---- shards --------------------------------------------------------------------------------

std::string Shard::text() const { return whole() ? "" : fmt::format("{}/{}", index, count); }

Shard parse_shard(const std::string& text) {
  const std::string where = "--shard " + text;
  const auto parts = split(text, '/');
  std::optional<double> i, n;
  if (parts.size() == 2) i = parse_number(parts[0]), n = parse_number(parts[1]);
  const auto whole = [](const std::optional<double>& x) {
    return x && *x == std::floor(*x) && std::fabs(*x) < 1e9;
  };
  if (!whole(i) || !whole(n) || *n < 1) fail_at(where, "expected I/N with 1 <= I <= N, e.g. 2/4");
  if (*i < 1 || *i > *n) fail_at(where, fmt::format("I must lie in 1..{}", number_text(*n)));
  return {int(*i), int(*n)};
}

namespace {

// The points of one kernel, backend and axes but seq_len share a ladder.
std::string ladder_key(const Point& pt) {
  Problem p = pt.problem;
  p.seq_len = 0;
  return point_key(pt.kernel->info().name, pt.backend, p);
}

// The cost a shard takes on with a point: its FLOP count, plus one so that points without
// one count too.
double point_cost(const Point& pt) {
  try {
    return 1.0 + pt.kernel->flops(pt.problem);
  } catch (const std::exception&) {
    return 1.0;
  }
}

}  // namespace

std::vector<Point> shard_points(const std::vector<Point>& points, const Shard& shard) {
  if (shard.whole()) return points;
  std::vector<std::string> ladders;  // in order of first appearance
  std::map<std::string, double> cost;
  for (const Point& pt : points) {
    const std::string key = ladder_key(pt);
    if (!cost.count(key)) ladders.push_back(key);
    cost[key] += point_cost(pt);
  }
  std::stable_sort(ladders.begin(), ladders.end(),
                   [&](const std::string& a, const std::string& b) { return cost[a] > cost[b]; });
  std::vector<double> load(size_t(shard.count), 0.0);
  std::map<std::string, int> owner;  // ladder -> 1-based shard
  for (const std::string& key : ladders) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();
    load[size_t(least)] += cost[key];
    owner[key] = int(least) + 1;
  }
  std::vector<Point> mine;
  for (const Point& pt : points)
    if (owner[ladder_key(pt)] == shard.index) mine.push_back(pt);
  return mine;
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

}  // namespace attnbench
