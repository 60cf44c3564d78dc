#include "results.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "errors.hpp"
#include "file_io.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

// A parameter value as JSON: integers stay integers.
ojson number_json(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) return int64_t(v);
  return v;
}

ojson opt(const std::optional<double>& v) { return v ? ojson(*v) : ojson(nullptr); }

// ---- reading helpers: every problem names the file, the row and the field ----------------
const ojson& field(const ojson& j, const char* key, const std::string& where) {
  if (!j.is_object()) fail_at(where, "expected an object");
  auto it = j.find(key);
  if (it == j.end()) fail_at(where, fmt::format("missing field '{}'", key));
  return *it;
}
std::string get_string(const ojson& j, const char* key, const std::string& where) {
  const ojson& v = field(j, key, where);
  if (!v.is_string()) fail_at(where, fmt::format("field '{}' must be a string", key));
  return v.get<std::string>();
}
std::string get_string_or(const ojson& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}
double get_number(const ojson& j, const char* key, const std::string& where) {
  const ojson& v = field(j, key, where);
  if (!v.is_number()) fail_at(where, fmt::format("field '{}' must be a number", key));
  return v.get<double>();
}
std::optional<double> get_opt_number(const ojson& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) fail_at(where, fmt::format("field '{}' must be a number or null", key));
  return it->get<double>();
}
// Integer fields are whole numbers within their type's range: never truncated, never cast
// out of range.
const IntRange kByteField{0, int64_t(1) << 53};  // up to 2^53: every such integer is a double
const IntRange kIntField{INT32_MIN, INT32_MAX};
const IntRange kCountField{-(int64_t(1) << 53), int64_t(1) << 53};
std::string field_where(const std::string& where, const char* key) {
  return fmt::format("{}: field '{}'", where, key);
}
size_t get_bytes(const ojson& j, const char* key, const std::string& where) {
  return size_t(whole_in(get_number(j, key, where), kByteField, field_where(where, key)));
}
std::optional<size_t> get_opt_bytes(const ojson& j, const char* key, const std::string& where) {
  const auto v = get_opt_number(j, key, where);
  if (!v) return std::nullopt;
  return size_t(whole_in(*v, kByteField, field_where(where, key)));
}
int64_t get_int_or(const ojson& j, const char* key, int64_t def, const std::string& where,
                   const IntRange& range = kCountField) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) fail_at(where, fmt::format("field '{}' must be a number", key));
  return whole_in(it->get<double>(), range, field_where(where, key));
}

// A row of a kernel this build knows may only carry parameters that kernel declares; rows of
// other tools (the PyTorch peers) are taken as they are.
void check_row_parameters(const Row& r, const std::string& where) {
  const Kernel* k = Registry::instance().find(r.kernel, r.backend);
  if (!k) k = Registry::instance().find(r.kernel, r.backend == Backend::cpu ? Backend::cuda : Backend::cpu);
  if (!k) return;
  for (const auto& [name, v] : r.problem.params)
    if (!k->info().param(name))
      fail_at(where, fmt::format("axes: {} has no parameter '{}'", r.kernel, name));
}

}  // namespace

std::string format_bytes(double b) {
  if (!std::isfinite(b)) return "?";
  if (b >= 1e12) return fmt::format("{:.1f} TB", b / 1e12);
  if (b >= 1e9) return fmt::format("{:.1f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

// ---- axes and keys -------------------------------------------------------------------------

ojson axes_json(const Problem& p) {
  ojson a = ojson::object();
  a["batch"] = p.batch;
  a["heads"] = p.heads;
  a["seq_len"] = p.seq_len;
  a["head_dim"] = p.head_dim;
  a["causal"] = p.causal;
  a["precision"] = precision_name(p.precision);
  a["seed"] = p.seed;
  for (const auto& [name, v] : p.params) a[name] = number_json(v);
  return a;
}

ojson axis_value_json(const std::string& name, double v) {
  if (name == "causal") return v != 0;
  if (name == "precision") return precision_name(static_cast<Precision>(int(v)));
  return number_json(v);
}

double axis_value_from_json(const std::string& name, const ojson& v, const std::string& where) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (name == "precision") {
      if (const auto pr = parse_precision(s)) return double(static_cast<int>(*pr));
      fail_at(where, fmt::format("axis precision: '{}' is not fp32, tf32, bf16 or fp16", s));
    }
    if (name == "causal" && (s == "causal" || s == "bidirectional")) return s == "causal" ? 1 : 0;
  }
  fail_at(where, fmt::format("axis '{}': value {} is not {}", name, v.dump(),
                         name == "causal"      ? "a boolean (or \"causal\" / \"bidirectional\")"
                         : name == "precision" ? "a precision name (fp32, tf32, bf16, fp16)"
                                               : "a number"));
}

Problem problem_from_axes(const ojson& axes, const std::string& where) {
  if (!axes.is_object()) fail_at(where, "'axes' must be an object");
  Problem p;
  for (const char* a : {"batch", "heads", "seq_len", "head_dim", "causal"})
    if (!axes.contains(a)) fail_at(where, fmt::format("axes: missing '{}'", a));
  for (auto it = axes.begin(); it != axes.end(); ++it) {
    try {
      set_axis(p, it.key(), axis_value_from_json(it.key(), *it, where));
    } catch (const InvalidProblem& e) {
      fail_at(where, fmt::format("axes: {}", e.what()));
    }
  }
  return p;
}

std::string point_key(const std::string& kernel, Backend b, const Problem& p) {
  std::map<std::string, double> vals(p.params.begin(), p.params.end());
  for (const auto& a : shape_axes()) vals[a] = get_axis(p, a);
  std::string k = kernel + "|" + backend_name(b);
  for (const auto& [n, v] : vals) k += fmt::format("|{}={:.17g}", n, v);
  return k;
}

std::string describe_point(const Problem& p) {
  std::vector<std::string> shown;
  for (const auto& [n, v] : p.params)
    if (v != 0) shown.push_back(n);
  return describe(p, shown);
}

std::string row_key(const Row& r) { return point_key(r.kernel, r.backend, r.problem); }

// ---- writing -------------------------------------------------------------------------------

namespace {

ojson time_json(const std::optional<TimeStats>& time) {
  if (!time) return nullptr;
  const TimeStats& t = *time;
  ojson s = ojson::array();
  // the steady clock counts nanoseconds: 1e-6 ms keeps every digit it measured
  for (double x : t.samples) s.push_back(std::round(x * 1e6) / 1e6);
  return {{"median", t.median}, {"min", t.min},     {"max", t.max},     {"p25", t.p25},
          {"p75", t.p75},       {"mean", t.mean},   {"count", t.count}, {"samples", s}};
}

// The workspace query, its sums and the measured memory.
void put_memory(ojson& j, const Row& r) {
  j["inputs_bytes"] = r.memory.inputs_bytes;
  j["outputs_bytes"] = r.memory.outputs_bytes;
  j["prepared_bytes"] = r.memory.prepared_bytes;
  j["scratch_bytes"] = r.memory.scratch_bytes;
  j["library_bytes"] = r.memory.library_bytes;
  j["workspace_bytes"] = r.memory.workspace_bytes();
  j["peak_bytes"] = r.memory.peak_bytes();
  j["measured_peak_bytes"] =
      r.measured_peak_bytes ? ojson(*r.measured_peak_bytes) : ojson(nullptr);
  j["measured_peak_source"] = r.measured_peak_source;
  j["memory_agrees"] = r.memory_agrees ? ojson(*r.memory_agrees) : ojson(nullptr);
  j["memory_note"] = r.memory_note;
  j["measured_device_bytes"] =
      r.measured_device_bytes ? ojson(*r.measured_device_bytes) : ojson(nullptr);
}

ojson phases_json(const std::vector<PhaseRow>& phases) {
  ojson ph = ojson::array();
  for (const PhaseRow& p : phases)
    ph.push_back({{"name", p.name}, {"ms", p.ms}, {"share", p.share}, {"flops", p.flops},
                  {"bytes", p.bytes}, {"bound", p.bound}, {"pct_of_peak", opt(p.pct_of_peak)}});
  return ph;
}

}  // namespace

ojson to_json(const Row& r) {
  ojson j = ojson::object();
  j["kernel"] = r.kernel;
  j["backend"] = backend_name(r.backend);
  j["family"] = r.family;
  j["axes"] = axes_json(r.problem);
  j["status"] = r.status;
  j["reason"] = r.reason;
  j["time_ms"] = time_json(r.time);
  j["warmup_runs"] = r.warmup_runs;
  j["timing_method"] = r.timing_method;
  j["cache"] = r.cache;
  j["launch_overhead_ms"] = opt(r.launch_overhead_ms);
  j["reduced_timing"] = r.reduced_timing;
  j["noise"] = r.noise ? to_json(*r.noise) : ojson(nullptr);
  j["noisy"] = r.noisy;
  j["warnings"] = r.warnings;
  put_memory(j, r);
  j["correctness_rel_l2"] = opt(r.correctness_rel_l2);
  j["correctness_rows"] = r.correctness_rows;
  j["correctness_tolerance"] = opt(r.correctness_tolerance);
  j["approx_rel_l2"] = opt(r.approx_rel_l2);
  j["approx_cosine"] = opt(r.approx_cosine);
  j["approx_rows"] = r.approx_rows;
  j["flops"] = r.flops;
  j["gflops_per_s"] = opt(r.gflops_per_s);
  j["min_bytes"] = r.min_bytes;
  j["roofline_bound"] = r.roofline_bound;
  j["floor_ms"] = opt(r.floor_ms);
  j["pct_of_peak"] = opt(r.pct_of_peak);
  if (r.vs_vanilla)
    j["vs_vanilla"] = {{"speedup", r.vs_vanilla->speedup},
                       {"memory_ratio", r.vs_vanilla->memory_ratio}};
  else
    j["vs_vanilla"] = nullptr;
  if (!r.phases.empty()) {
    j["phases"] = phases_json(r.phases);
    j["profile_ms"] = opt(r.profile_ms);
  }
  j["point_seconds"] = r.point_seconds;
  j["check_seconds"] = r.check_seconds;
  j["repro"] = r.repro;
  return j;
}

ojson to_json(const NoiseFigures& n) {
  return {{"rsd", n.rsd},
          {"iqr_over_median", n.iqr_over_median},
          {"involuntary_switches", n.involuntary_switches},
          {"load_before", n.load_before},
          {"load_after", n.load_after},
          {"retries", n.retries}};
}

ojson to_json(const GpuInfo& g) {
  return {{"name", g.name},
          {"memory_bytes", g.memory_bytes},
          {"driver_version", g.driver_version},
          {"runtime_version", g.runtime_version},
          {"compute_capability", g.compute_capability},
          {"sm_count", g.sm_count},
          {"l2_bytes", g.l2_bytes},
          {"sm_clock_mhz", g.sm_clock_mhz},
          {"max_sm_clock_mhz", g.max_sm_clock_mhz},
          {"memory_clock_mhz", g.memory_clock_mhz},
          {"throttle", g.throttle}};
}

ojson to_json(const Environment& e) {
  ojson j = ojson::object();
  j["host"] = e.host;
  j["cpu_model"] = e.cpu_model;
  j["cpu_cores"] = e.cpu_cores;
  j["threads_used"] = e.threads_used;
  j["memory_bytes"] = e.memory_bytes;
  j["gpu"] = e.gpu ? to_json(*e.gpu) : ojson(nullptr);
  j["compiler"] = e.compiler;
  j["cxx_flags"] = e.cxx_flags;
  j["build_type"] = e.build_type;
  j["blas"] = e.blas;
  j["cuda_compiler"] = e.cuda_compiler;
  j["git_commit"] = e.git_commit;
  j["git_dirty"] = e.git_dirty;
  j["date"] = e.date;
  j["command_line"] = e.command_line;
  j["calibration"] = e.calibration;
  ojson res = ojson::array();
  for (const auto& r : e.resumes)
    res.push_back({{"date", r.date}, {"command_line", r.command_line}, {"change", r.change}});
  j["resumes"] = res;
  j["omp_wait_policy"] = e.omp_wait_policy;
  j["load_average"] = opt(e.load_average);
  j["cuda_cache_policy"] = e.cuda_cache_policy;
  return j;
}

ojson to_json(const ResultsFile& f) {
  ojson j = ojson::object();
  j["schema_version"] = f.schema_version;
  j["tool"] = f.tool;
  j["preset"] = f.preset;
  j["vanilla_kernel"] = f.vanilla_kernel;
  j["sweep"] = f.sweep;
  j["shard"] = f.shard;
  j["environment"] = to_json(f.environment);
  ojson rows = ojson::array();
  for (const auto& r : f.rows) rows.push_back(to_json(r));
  j["rows"] = std::move(rows);
  return j;
}

// ---- reading -------------------------------------------------------------------------------

NoiseFigures noise_from_json(const ojson& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "must be an object");
  NoiseFigures n;
  n.rsd = get_number(j, "rsd", where);
  n.iqr_over_median = get_number(j, "iqr_over_median", where);
  n.involuntary_switches = get_int_or(j, "involuntary_switches", 0, where);
  n.load_before = get_opt_number(j, "load_before", where).value_or(0);
  n.load_after = get_opt_number(j, "load_after", where).value_or(0);
  n.retries = int(get_int_or(j, "retries", 0, where, kIntField));
  return n;
}

GpuInfo gpu_info_from_json(const ojson& j, const std::string& where) {
  GpuInfo g;
  g.name = get_string_or(j, "name", "");
  g.memory_bytes = size_t(get_int_or(j, "memory_bytes", 0, where, kByteField));
  g.driver_version = get_string_or(j, "driver_version", "");
  g.runtime_version = get_string_or(j, "runtime_version", "");
  g.compute_capability = get_string_or(j, "compute_capability", "");
  g.sm_count = int(get_int_or(j, "sm_count", 0, where, kIntField));
  g.l2_bytes = size_t(get_int_or(j, "l2_bytes", 0, where, kByteField));
  g.sm_clock_mhz = int(get_int_or(j, "sm_clock_mhz", 0, where, kIntField));
  g.max_sm_clock_mhz = int(get_int_or(j, "max_sm_clock_mhz", 0, where, kIntField));
  g.memory_clock_mhz = int(get_int_or(j, "memory_clock_mhz", 0, where, kIntField));
  g.throttle = get_string_or(j, "throttle", "");
  return g;
}

namespace {

TimeStats time_from_json(const ojson& t, const std::string& tw) {
  TimeStats ts;
  const ojson& s = field(t, "samples", tw);
  if (!s.is_array()) fail_at(tw, "'samples' must be an array");
  for (const auto& x : s) {
    if (!x.is_number()) fail_at(tw, "'samples' must hold numbers");
    ts.samples.push_back(x.get<double>());
  }
  const double nan = std::nan("");
  ts.median = get_opt_number(t, "median", tw).value_or(nan);
  ts.min = get_opt_number(t, "min", tw).value_or(nan);
  ts.max = get_opt_number(t, "max", tw).value_or(nan);
  ts.p25 = get_opt_number(t, "p25", tw).value_or(nan);
  ts.p75 = get_opt_number(t, "p75", tw).value_or(nan);
  ts.mean = get_opt_number(t, "mean", tw).value_or(nan);
  ts.count = get_int_or(t, "count", int64_t(ts.samples.size()), tw);
  return ts;
}

// The point and its outcome: kernel, backend, family, axes, status and reason.
void identity_from_json(Row& r, const ojson& j, const std::string& where) {
  r.kernel = get_string(j, "kernel", where);
  const std::string be = get_string(j, "backend", where);
  const auto b = parse_backend(be);
  if (!b) fail_at(where, fmt::format("unknown backend '{}'", be));
  r.backend = *b;
  r.family = get_string_or(j, "family", "");
  r.problem = problem_from_axes(field(j, "axes", where), where);
  check_row_parameters(r, where);
  r.status = get_string(j, "status", where);
  if (r.status != "ok" && r.status != "skipped" && r.status != "error")
    fail_at(where, fmt::format("status '{}' is not ok, skipped or error", r.status));
  r.reason = get_string(j, "reason", where);
}

// The samples and how they were taken: timing method, cache, noise, warnings.
void timing_from_json(Row& r, const ojson& j, const std::string& where) {
  if (const ojson& t = field(j, "time_ms", where); !t.is_null()) r.time = time_from_json(t, where + ": time_ms");
  r.warmup_runs = int(get_int_or(j, "warmup_runs", 0, where, kIntField));
  r.timing_method = get_string_or(j, "timing_method", "");
  r.cache = get_string_or(j, "cache", "");
  r.launch_overhead_ms = get_opt_number(j, "launch_overhead_ms", where);
  r.reduced_timing = get_string_or(j, "reduced_timing", "");
  if (auto it = j.find("noise"); it != j.end() && !it->is_null())
    r.noise = noise_from_json(*it, where + ": noise");
  if (auto it = j.find("noisy"); it != j.end() && it->is_boolean()) r.noisy = it->get<bool>();
  if (auto it = j.find("warnings"); it != j.end() && it->is_array())
    for (const auto& w : *it)
      if (w.is_string()) r.warnings.push_back(w.get<std::string>());
}

// The workspace query (peak_bytes must be its sum) and the measured memory.
void memory_from_json(Row& r, const ojson& j, const std::string& where) {
  r.memory.inputs_bytes = get_bytes(j, "inputs_bytes", where);
  r.memory.outputs_bytes = get_bytes(j, "outputs_bytes", where);
  r.memory.prepared_bytes = get_bytes(j, "prepared_bytes", where);
  r.memory.scratch_bytes = get_bytes(j, "scratch_bytes", where);
  r.memory.library_bytes = size_t(get_int_or(j, "library_bytes", 0, where, kByteField));
  if (get_bytes(j, "peak_bytes", where) != r.memory.peak_bytes())
    fail_at(where, "peak_bytes is not inputs + outputs + prepared + scratch + library");
  r.measured_peak_bytes = get_opt_bytes(j, "measured_peak_bytes", where);
  r.measured_peak_source = get_string_or(j, "measured_peak_source", "");
  if (auto it = j.find("memory_agrees"); it != j.end() && it->is_boolean())
    r.memory_agrees = it->get<bool>();
  r.memory_note = get_string_or(j, "memory_note", "");
  r.measured_device_bytes = get_opt_bytes(j, "measured_device_bytes", where);
}

void accuracy_from_json(Row& r, const ojson& j, const std::string& where) {
  r.correctness_rel_l2 = get_opt_number(j, "correctness_rel_l2", where);
  r.correctness_rows = get_int_or(j, "correctness_rows", 0, where);
  r.correctness_tolerance = get_opt_number(j, "correctness_tolerance", where);
  r.approx_rel_l2 = get_opt_number(j, "approx_rel_l2", where);
  r.approx_cosine = get_opt_number(j, "approx_cosine", where);
  r.approx_rows = get_int_or(j, "approx_rows", 0, where);
}

// The work and rates: FLOPs, roofline, the ratios to vanilla.
void rates_from_json(Row& r, const ojson& j, const std::string& where) {
  r.flops = get_opt_number(j, "flops", where).value_or(0);
  r.gflops_per_s = get_opt_number(j, "gflops_per_s", where);
  r.min_bytes = get_opt_number(j, "min_bytes", where).value_or(0);
  r.roofline_bound = get_string_or(j, "roofline_bound", "");
  r.floor_ms = get_opt_number(j, "floor_ms", where);
  r.pct_of_peak = get_opt_number(j, "pct_of_peak", where);
  if (auto it = j.find("vs_vanilla"); it != j.end() && !it->is_null()) {
    const std::string vw = where + ": vs_vanilla";
    VsVanilla v;
    v.speedup = get_opt_number(*it, "speedup", vw).value_or(std::nan(""));
    v.memory_ratio = get_opt_number(*it, "memory_ratio", vw).value_or(std::nan(""));
    r.vs_vanilla = v;
  }
}

PhaseRow phase_from_json(const ojson& pj, const std::string& pw) {
  if (!pj.is_object()) fail_at(pw, "must be an object");
  PhaseRow p;
  p.name = get_string_or(pj, "name", "");
  if (p.name.empty()) fail_at(pw, "needs a name");
  p.ms = get_number(pj, "ms", pw);
  p.share = get_opt_number(pj, "share", pw).value_or(0);
  p.flops = get_opt_number(pj, "flops", pw).value_or(0);
  p.bytes = get_opt_number(pj, "bytes", pw).value_or(0);
  p.bound = get_string_or(pj, "bound", "");
  p.pct_of_peak = get_opt_number(pj, "pct_of_peak", pw);
  return p;
}

void phases_from_json(Row& r, const ojson& j, const std::string& where) {
  auto it = j.find("phases");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_array()) fail_at(where, "phases must be an array");
  for (size_t i = 0; i < it->size(); ++i)
    r.phases.push_back(phase_from_json((*it)[i], fmt::format("{}: phases[{}]", where, i)));
  r.profile_ms = get_opt_number(j, "profile_ms", where);
}

}  // namespace

Row row_from_json(const ojson& j, const std::string& where) {
  Row r;
  identity_from_json(r, j, where);
  timing_from_json(r, j, where);
  memory_from_json(r, j, where);
  accuracy_from_json(r, j, where);
  rates_from_json(r, j, where);
  phases_from_json(r, j, where);
  r.point_seconds = get_opt_number(j, "point_seconds", where).value_or(0);
  r.check_seconds = get_opt_number(j, "check_seconds", where).value_or(0);
  r.repro = get_string_or(j, "repro", "");
  return r;
}

Environment environment_from_json(const ojson& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "'environment' must be an object");
  Environment e;
  e.host = get_string_or(j, "host", "");
  e.cpu_model = get_string_or(j, "cpu_model", "");
  e.cpu_cores = int(get_int_or(j, "cpu_cores", 0, where, kIntField));
  e.threads_used = int(get_int_or(j, "threads_used", 0, where, kIntField));
  e.memory_bytes = size_t(get_int_or(j, "memory_bytes", 0, where, kByteField));
  if (auto it = j.find("gpu"); it != j.end() && it->is_object())
    e.gpu = gpu_info_from_json(*it, where + ": gpu");
  e.compiler = get_string_or(j, "compiler", "");
  e.cxx_flags = get_string_or(j, "cxx_flags", "");
  e.build_type = get_string_or(j, "build_type", "");
  e.blas = get_string_or(j, "blas", "");
  e.cuda_compiler = get_string_or(j, "cuda_compiler", "");
  e.git_commit = get_string_or(j, "git_commit", "");
  if (auto it = j.find("git_dirty"); it != j.end() && it->is_boolean()) e.git_dirty = it->get<bool>();
  e.date = get_string_or(j, "date", "");
  e.command_line = get_string_or(j, "command_line", "");
  if (auto it = j.find("calibration"); it != j.end()) e.calibration = *it;
  if (auto it = j.find("resumes"); it != j.end() && it->is_array())
    for (const auto& r : *it)
      if (r.is_object())
        e.resumes.push_back({get_string_or(r, "date", ""), get_string_or(r, "command_line", ""),
                             get_string_or(r, "change", "")});
  e.omp_wait_policy = get_string_or(j, "omp_wait_policy", "");
  e.load_average = get_opt_number(j, "load_average", where);
  e.cuda_cache_policy = get_string_or(j, "cuda_cache_policy", "");
  return e;
}

ResultsFile results_from_json(const ojson& j, const std::string& name) {
  if (!j.is_object()) fail_at(name, "not an attnbench results file (expected a JSON object)");
  ResultsFile f;
  const ojson& v = field(j, "schema_version", name);
  if (!v.is_number_integer()) fail_at(name, "'schema_version' must be an integer");
  const int64_t version = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                              ? INT64_MAX
                              : v.get<int64_t>();
  if (version < 1 || version > kSchemaVersion)
    fail_at(name, fmt::format("schema_version {} is not supported (this attnbench reads 1 to {})",
                              v.dump(), kSchemaVersion));
  f.schema_version = int(version);
  f.tool = get_string_or(j, "tool", "attnbench");
  f.preset = get_string_or(j, "preset", "");
  f.vanilla_kernel = get_string_or(j, "vanilla_kernel", "vanilla_materialized");
  if (auto it = j.find("sweep"); it != j.end()) f.sweep = *it;
  f.shard = get_string_or(j, "shard", "");
  f.environment = environment_from_json(field(j, "environment", name), name + ": environment");
  const ojson& rows = field(j, "rows", name);
  if (!rows.is_array()) fail_at(name, "'rows' must be an array");
  for (size_t i = 0; i < rows.size(); ++i)
    f.rows.push_back(row_from_json(rows[i], fmt::format("{}: row {}", name, i)));
  return f;
}

ResultsFile read_results(const std::string& path) {
  // a folder, FIFO or device is refused without blocking, a huge file before it is read
  const std::string text =
      file_io::read_regular(path, file_io::kMaxJsonInputBytes, "a results file");
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::parse_error& e) {
    fail_at(path, fmt::format("not valid JSON ({})", one_line(e.what())));
  }
  return results_from_json(j, path);
}

namespace {

std::string results_text(const ResultsFile& f) { return to_json(f).dump(1) + "\n"; }

// The folder of `path`, created when missing (a results file may name a new folder).
void make_parent_folder(const std::string& path) {
  const std::filesystem::path target(path);
  if (!target.has_parent_path()) return;
  std::error_code ec;
  std::filesystem::create_directories(target.parent_path(), ec);
}

}  // namespace

void write_text_atomic(const std::string& path, const std::string& text) {
  make_parent_folder(path);
  file_io::write_atomic(path, text);
}

void write_text_new(const std::string& path, const std::string& text) {
  make_parent_folder(path);
  file_io::write_new(path, text);
}

void write_results(const std::string& path, const ResultsFile& f) {
  write_text_atomic(path, results_text(f));
}

void create_results(const std::string& path, const ResultsFile& f) {
  write_text_new(path, results_text(f));
}

void fill_vs_vanilla(ResultsFile& f) {
  auto shape_key = [](const Row& r) {
    const Problem& p = r.problem;
    return fmt::format("{}|{}|{}|{}|{}|{}|{}", backend_name(r.backend), p.batch, p.heads, p.seq_len,
                       p.head_dim, int(p.causal), precision_name(p.precision));
  };
  std::map<std::string, const Row*> vanilla;
  for (const Row& r : f.rows)
    if (r.kernel == f.vanilla_kernel && r.status == "ok" && r.time) vanilla.emplace(shape_key(r), &r);
  for (Row& r : f.rows) {
    r.vs_vanilla.reset();
    if (r.status != "ok" || !r.time) continue;
    auto it = vanilla.find(shape_key(r));
    if (it == vanilla.end()) continue;
    VsVanilla v;
    v.speedup = it->second->time->median / r.time->median;
    v.memory_ratio = double(it->second->memory.peak_bytes()) / double(r.memory.peak_bytes());
    r.vs_vanilla = v;
  }
}

}  // namespace attnbench
