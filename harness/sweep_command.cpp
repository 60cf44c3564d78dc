#include "sweep_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <omp.h>

#include "errors.hpp"
#include "export.hpp"
#include "file_io.hpp"
#include "noise.hpp"
#include "sysinfo.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
  // a second Ctrl-C ends the process at once (every finished row is already on disk)
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

SweepSpec load_preset(const std::string& name) {
  const std::string path = preset_path(name);
  if (!std::filesystem::exists(path))
    throw InvalidProblem(fmt::format("unknown preset '{}' (known: {})", name, join(preset_names())));
  SweepSpec spec = load_sweep_file(path);
  spec.name = name;
  return spec;
}

// The spec's threads for OpenMP (0: OpenMP's default); the threads the sweep runs with.
int set_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  return omp_get_max_threads();
}

void apply_timing_flags(Timing& t, const SweepArgs& a) {
  if (a.min_time) t.min_time_s = *a.min_time;
  if (a.min_reps) t.min_reps = *a.min_reps;
  if (a.max_reps) t.max_reps = *a.max_reps;
  if (a.warmup) t.warmup = *a.warmup;
  if (t.min_reps < 1 || t.max_reps < 1 || t.warmup < 0 || t.min_time_s < 0)
    throw InvalidProblem("--min-reps and --max-reps must be >= 1, --warmup and --min-time >= 0");
  t.max_reps = std::max(t.max_reps, t.min_reps);
}

// The spec's backends as the names of those it resolves to here ("all": the available ones);
// a problem names `where`.
void resolve_names(SweepSpec& spec, const std::string& where) {
  std::vector<Backend> backends;
  try {
    backends = resolve_backends(spec.backends);
  } catch (const InvalidProblem& e) {
    fail_at(where, e.what());
  }
  spec.backends.clear();
  for (Backend b : backends) spec.backends.push_back(backend_name(b));
}

// The sweep a results file stores, as it runs here.
SweepSpec stored_sweep(const ResultsFile& file, const std::string& path) {
  if (file.sweep.is_null())
    fail_at(path, "stores no sweep to replay (written before results files recorded theirs); "
                  "run the sweep into a new file");
  SweepSpec spec = parse_sweep(file.sweep, path + ": sweep");
  resolve_names(spec, path);
  return spec;
}

// Each option given that may change a sweep, as it reads ("--axis seq_len=4096"), with a
// SweepArgs that holds only that option.
std::vector<std::pair<std::string, SweepArgs>> sweep_changing_options(const SweepArgs& a) {
  std::vector<std::pair<std::string, SweepArgs>> v;
  auto add = [&v](const std::string& text, const std::function<void(SweepArgs&)>& set) {
    SweepArgs one;
    set(one);
    v.emplace_back(text, std::move(one));
  };
  if (!a.kernels.empty())
    add("--kernels " + a.kernels, [&](SweepArgs& o) { o.kernels = a.kernels; });
  for (const auto& x : a.axes) add("--axis " + x, [&](SweepArgs& o) { o.axes = {x}; });
  if (!a.backend.empty())
    add("--backend " + a.backend, [&](SweepArgs& o) { o.backend = a.backend; });
  if (!a.vanilla.empty())
    add("--vanilla " + a.vanilla, [&](SweepArgs& o) { o.vanilla = a.vanilla; });
  auto num = [](double x) { return number_text(x); };
  if (a.min_time)
    add("--min-time " + num(*a.min_time), [&](SweepArgs& o) { o.min_time = a.min_time; });
  if (a.min_reps)
    add("--min-reps " + num(*a.min_reps), [&](SweepArgs& o) { o.min_reps = a.min_reps; });
  if (a.max_reps)
    add("--max-reps " + num(*a.max_reps), [&](SweepArgs& o) { o.max_reps = a.max_reps; });
  if (a.warmup) add("--warmup " + num(*a.warmup), [&](SweepArgs& o) { o.warmup = a.warmup; });
  if (a.max_point_seconds)
    add("--max-point-seconds " + num(*a.max_point_seconds),
        [&](SweepArgs& o) { o.max_point_seconds = a.max_point_seconds; });
  if (!a.memory_limit.empty())
    add("--memory-limit " + a.memory_limit, [&](SweepArgs& o) { o.memory_limit = a.memory_limit; });
  if (a.threads) add("--threads " + num(*a.threads), [&](SweepArgs& o) { o.threads = a.threads; });
  if (a.warm) add("--warm", [](SweepArgs& o) { o.warm = true; });
  return v;
}

// The first option given that changes `stored` on its own, else the preset or sweep file
// (the base the other options apply to).
std::string changing_option(const SweepArgs& a, const SweepSpec& stored) {
  for (const auto& [text, one] : sweep_changing_options(a)) {
    SweepSpec s = stored;
    apply_overrides(s, one);
    resolve_names(s, a.resume);
    if (!same_sweep(s, stored)) return text;
  }
  if (!a.preset.empty()) return "--preset " + a.preset;
  if (!a.sweep_file.empty()) return "--sweep " + a.sweep_file;
  return "the options given";
}

// For --extend's record, when settings (timing, limits, threads, L2 policy) change: which
// rows they apply to.
std::string settings_note(const SweepSpec& stored, const SweepSpec& asked) {
  SweepSpec settings_only = asked;
  settings_only.groups = stored.groups;
  settings_only.backends = stored.backends;
  settings_only.vanilla_kernel = stored.vanilla_kernel;
  if (same_sweep(settings_only, stored)) return "";
  return " (settings for the points run from now on; rows already in the file keep theirs)";
}

// --retries and --max-noise (noise.hpp), checked; --max-noise is part of each row's repro.
void apply_noise_flags(RunOptions& o, const SweepArgs& a) {
  if (a.retries) {
    noise::check_retries(*a.retries);
    o.retries = *a.retries;
  }
  if (!a.max_noise) return;
  noise::check_max_noise(*a.max_noise);
  o.max_noise = *a.max_noise;
  if (!o.repro_extra.empty()) o.repro_extra += " ";
  o.repro_extra += "--max-noise " + number_text(o.max_noise);
}

// --dry-run: the points (or, with --json, the plan the PyTorch peers read) on stdout.
int print_dry_run(const SweepArgs& a, const SweepSpec& spec, const RunOptions& o,
                  const std::vector<Point>& points, size_t backends, const std::string& cmdline) {
  if (a.json) {
    fmt::print("{}\n", sweep_plan_json(spec, o, points, collect_environment(o.threads, cmdline)).dump(2));
    return 0;
  }
  for (const auto& pt : points) fmt::print("{}\n", pt.describe());
  fmt::print("{} points ({} backend{})\n", points.size(), backends, backends == 1 ? "" : "s");
  return 0;
}

void announce(const std::vector<Point>& points, const SweepSpec& spec, const Shard& shard,
              const std::vector<Backend>& backends, const std::string& out) {
  std::vector<std::string> on;
  for (Backend b : backends) on.push_back(backend_device_name(b));
  const std::string part = shard.whole() ? "" : fmt::format(" (shard {})", shard.text());
  fmt::print(stderr, "attnbench: {} points of '{}'{} on {}; results in {}\n", points.size(),
             spec.name, part, join(on, "; "), out);
}

bool has_backend(const std::vector<Backend>& backends, Backend b) {
  return std::find(backends.begin(), backends.end(), b) != backends.end();
}

// The GPU's ceilings into environment.calibration.gpu; a failure is reported, not fatal (cuda
// rows then carry no roofline figures).
void calibrate_gpu_into(ojson& calibration, bool quiet) {
  try {
    const auto g = calibrate_gpu(false);
    if (!g) return;
    if (!calibration.is_object()) calibration = ojson::object();
    calibration["gpu"] = to_json(*g);
    if (!quiet)
      fmt::print(stderr, "attnbench: GPU calibration: GEMM fp32 {:.1f}, tf32 {:.1f}, bf16 {:.1f}, "
                         "fp16 {:.1f} TFLOP/s, copy {:.0f} GB/s\n",
                 g->gemm_rate(Precision::fp32) / 1e3, g->gemm_rate(Precision::tf32) / 1e3,
                 g->gemm_rate(Precision::bf16) / 1e3, g->gemm_rate(Precision::fp16) / 1e3,
                 g->bandwidth_gbs);
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench: warning: GPU calibration failed: {}\n", e.what());
  }
}

// The point about to run: a bar on a terminal, nothing otherwise.
void print_start(const SweepProgress& p) {
  const size_t width = 24, filled = p.total ? width * p.index / p.total : 0;
  fmt::print(stderr, "\r\033[K[{}{}] {}/{} ETA {}  {}", std::string(filled, '#'),
             std::string(width - filled, '.'), p.index + 1, p.total, format_seconds(p.eta_s),
             p.point->describe());
  std::fflush(stderr);
}

// The point just finished: every row without a terminal, only the rows not ok on one.
void print_finished(const SweepProgress& p, bool tty) {
  const Row& r = *p.finished;
  std::string what = r.status;
  if (r.time) what += fmt::format(" {:.3f} ms", r.time->median);
  if (r.noisy) what += " (noisy)";
  if (!r.reason.empty()) what += ": " + r.reason;
  if (!tty)
    fmt::print(stderr, "[{}/{}] {}: {} (ETA {})\n", p.index + 1, p.total, p.point->describe(), what,
               format_seconds(p.eta_s));
  else if (r.status != "ok")
    fmt::print(stderr, "\r\033[K{}  {}\n", p.point->describe(), what);
}

}  // namespace

SweepSpec assemble_spec(const SweepArgs& a) {
  SweepSpec spec;
  if (!a.preset.empty())
    spec = load_preset(a.preset);
  else if (!a.sweep_file.empty())
    spec = load_sweep_file(a.sweep_file);
  else
    spec = builtin_sweep();
  apply_overrides(spec, a);
  return spec;
}

void apply_overrides(SweepSpec& spec, const SweepArgs& a) {
  if (!a.kernels.empty()) override_kernels(spec, split_list(a.kernels));
  for (const auto& text : a.axes) {
    const auto [name, values] = parse_axis_override(text);
    override_axis(spec, name, values);
  }
  if (!a.backend.empty()) spec.backends = {a.backend};
  if (!a.vanilla.empty()) spec.vanilla_kernel = a.vanilla;
  for (auto& [b, t] : spec.timing) apply_timing_flags(t, a);
  if (a.max_point_seconds) {
    if (!(*a.max_point_seconds >= 0)) throw InvalidProblem("--max-point-seconds must be >= 0");
    spec.max_point_seconds = *a.max_point_seconds;
  }
  if (a.threads) {
    if (*a.threads < 1) throw InvalidProblem("--threads must be at least 1");
    spec.threads = *a.threads;
  }
  if (!a.memory_limit.empty()) spec.memory_limit = parse_bytes(a.memory_limit);
  if (a.warm) spec.cuda_warm = true;
}

ResumePlan resume_plan(const SweepArgs& a, const ResultsFile& file) {
  const SweepSpec stored = stored_sweep(file, a.resume);
  SweepSpec asked = stored;
  if (!a.preset.empty() || !a.sweep_file.empty())
    asked = assemble_spec(a);
  else
    apply_overrides(asked, a);
  resolve_names(asked, a.resume);
  if (same_sweep(asked, stored)) return {stored, ""};
  const std::string change = describe_change(stored, asked);
  if (!a.extend)
    fail_at(a.resume, fmt::format("{} would change the sweep it stores ({}); add --extend to "
                                  "record the change and run it, or write a new --out",
                                  changing_option(a, stored), change));
  if (!file.shard.empty())
    fail_at(a.resume, fmt::format("holds shard {}; --extend would deal the points to the shards "
                                  "anew: extend the merged file, or start new shards",
                                  file.shard));
  return {extended_sweep(stored, asked), change + settings_note(stored, asked)};
}

RunOptions run_options(const SweepArgs& a, const SweepSpec& spec, int threads) {
  RunOptions o;
  o.timing = spec.timing;
  o.max_point_seconds = spec.max_point_seconds;
  o.threads = threads;
  o.cuda_warm = spec.cuda_warm;
  if (spec.cuda_warm) o.repro_extra = "--warm";
  o.host_memory_limit = spec.memory_limit;
  o.device_memory_limit = spec.memory_limit;
  apply_noise_flags(o, a);
  return o;
}

SweepSpec expanded_spec(SweepSpec spec, const std::vector<Backend>& backends, const RunOptions& o) {
  spec.backends.clear();
  for (Backend b : backends) spec.backends.push_back(backend_name(b));
  spec.timing = o.timing;
  spec.max_point_seconds = o.max_point_seconds;
  return spec;
}

std::vector<Point> points_to_run(const SweepSpec& spec, const std::vector<Backend>& backends,
                                 const Shard& shard) {
  if (backends.empty()) throw InvalidProblem("no backend to run on");
  const auto points = expand(spec, backends);
  const Registry& reg = Registry::instance();
  if (!spec.vanilla_kernel.empty() && !reg.find(spec.vanilla_kernel, Backend::cpu) &&
      !reg.find(spec.vanilla_kernel, Backend::cuda))
    reg.get(spec.vanilla_kernel, Backend::cpu);  // throws: unknown kernel
  return shard_points(points, shard);
}

std::string default_out_path(const std::string& preset) {
  const std::string dir = std::string(ATTNBENCH_SOURCE_DIR) + "/results";
  const std::string stem =
      fmt::format("{}/{}-{}-{}", dir, sysinfo::utc_today(), sysinfo::host_name(), preset);
  std::string path = stem + ".json";
  for (int i = 2; std::filesystem::exists(path); ++i) path = fmt::format("{}-{}.json", stem, i);
  return path;
}

std::string output_path(const SweepArgs& a, const std::string& preset) {
  if (!a.out.empty()) return a.out;
  return !a.resume.empty() ? a.resume : default_out_path(preset);
}

// The results file this run may write: a regular or a new file, locked against a second
// writer for the whole run (waiting up to --wait seconds for one), then an existing one only
// when resumed or forced (checked once locked: a writer waited for may have created it).
std::unique_ptr<file_io::RunLock> claim_output(const SweepArgs& a, const std::string& out,
                                               const std::string& cmdline) {
  file_io::check_output_target(out, a.out.empty() && !a.resume.empty() ? "--resume" : "--out");
  auto lock = std::make_unique<file_io::RunLock>(out, cmdline, a.wait.value_or(0));
  file_io::check_create_only(out, a.resume, a.force);
  return lock;
}

// Flags that only make sense together, and --wait's range.
void check_sweep_flags(const SweepArgs& a) {
  if (a.extend && a.resume.empty())
    throw InvalidProblem("--extend needs --resume FILE (it changes the sweep FILE stores)");
  if (a.wait && !(*a.wait >= 0 && *a.wait <= 1e7))
    throw InvalidProblem("--wait must be a number of seconds >= 0");
}

// Temporary files a killed writer of `out` left behind: removed when their writer is gone.
void clear_leftovers(const std::string& out) {
  for (const auto& t : file_io::leftover_temps(out, true))
    fmt::print(stderr, "attnbench: warning: {} {} (left by pid {})\n", t.removed ? "removed" : "found",
               t.path, t.pid);
}

Shard sweep_shard(const SweepArgs& a, const ResultsFile& resumed) {
  if (!a.shard.empty()) return parse_shard(a.shard);
  if (a.resume.empty() || resumed.shard.empty()) return {};
  try {
    return parse_shard(resumed.shard);
  } catch (const InvalidProblem&) {
    fail_at(a.resume, fmt::format("holds shards {} of a merge; resume each shard's own file",
                                  resumed.shard));
  }
}

void start_results_file(ResultsFile& file, const SweepArgs& a, const SweepSpec& expanded,
                        const Shard& shard, int threads, const std::string& cmdline,
                        const std::string& change) {
  const Environment now = collect_environment(threads, cmdline);
  file.vanilla_kernel = expanded.vanilla_kernel;
  if (a.resume.empty()) {
    file.preset = expanded.name;
    file.sweep = to_json(expanded);
    file.shard = shard.text();
    file.environment = now;
    return;
  }
  if (file.shard != shard.text())
    fail_at(a.resume, fmt::format("holds {}; continue it with {}",
                                  file.shard.empty() ? "a whole sweep" : "shard " + file.shard,
                                  file.shard.empty() ? "no --shard" : "--shard " + file.shard));
  if (file.sweep.is_null() || !change.empty()) file.sweep = to_json(expanded);
  if (now.cpu_model != file.environment.cpu_model ||
      (now.gpu ? now.gpu->name : "") != (file.environment.gpu ? file.environment.gpu->name : ""))
    fmt::print(stderr, "attnbench: warning: resuming {} on another machine ({} vs {})\n", a.resume,
               now.cpu_model, file.environment.cpu_model);
  file.environment.resumes.push_back({now.date, cmdline, change});
}

void calibrate_for_sweep(ResultsFile& file, RunOptions& o, const std::vector<Backend>& backends,
                         const SweepArgs& a) {
  if (a.no_calibrate) return;
  if (has_backend(backends, Backend::cpu) && file.environment.calibration.is_null()) {
    const Calibration c = calibrate(false);
    file.environment.calibration = to_json(c);
    o.cpu_sgemm_gflops = c.sgemm_gflops;
    if (!a.quiet)
      fmt::print(stderr, "attnbench: calibration: sgemm {:.1f} GFLOP/s ({} threads), copy {:.1f} GB/s\n",
                 c.sgemm_gflops, c.threads, c.bandwidth_gbs);
  }
  if (has_backend(backends, Backend::cuda) && !gpu_calibration_from_json(file.environment.calibration))
    calibrate_gpu_into(file.environment.calibration, a.quiet);
}

void record_cache_policy(ResultsFile& file, const std::vector<Backend>& backends, bool warm,
                         const std::string& out) {
  if (!has_backend(backends, Backend::cuda)) return;
  const std::string policy = warm ? "warm" : "cold";
  std::string& recorded = file.environment.cuda_cache_policy;
  if (!recorded.empty() && recorded != policy)
    fmt::print(stderr, "attnbench: warning: {} was measured with a {} L2, this run is {}\n", out,
               recorded, policy);
  if (recorded.empty()) recorded = policy;
}

const std::atomic<bool>* install_interrupt_handlers() {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  return &g_interrupted;
}

std::function<void(const SweepProgress&)> progress_printer(bool quiet) {
  const bool tty = isatty(fileno(stderr));
  return [quiet, tty](const SweepProgress& p) {
    if (quiet) return;
    if (p.finished)
      print_finished(p, tty);
    else if (tty)
      print_start(p);
  };
}

std::string sweep_summary(const ResultsFile& f, size_t ran, double seconds, const std::string& out) {
  size_t ok = 0, skipped = 0, errors = 0;
  for (const auto& r : f.rows) (r.status == "ok" ? ok : r.status == "skipped" ? skipped : errors)++;
  return fmt::format("{} rows ({} ok, {} skipped, {} errors), {} run now in {:.1f} s; results: {}\n",
                     f.rows.size(), ok, skipped, errors, ran, seconds, out);
}

int run_sweep_command(const SweepArgs& a, const std::string& cmdline) {
  check_sweep_flags(a);
  std::unique_ptr<file_io::RunLock> lock;
  ResultsFile file;
  ResumePlan plan;
  if (a.resume.empty()) {
    plan.spec = assemble_spec(a);
  } else {
    // the file is read once it is ours: a writer waited for may have added rows meanwhile
    if (!a.dry_run) lock = claim_output(a, output_path(a, ""), cmdline);
    file = read_results(a.resume);
    plan = resume_plan(a, file);
  }
  const SweepSpec& spec = plan.spec;
  const int threads = set_threads(spec.threads);
  RunOptions opt = run_options(a, spec, threads);
  const auto backends = resolve_backends(spec.backends);
  const Shard shard = sweep_shard(a, file);
  const auto points = points_to_run(spec, backends, shard);
  if (a.dry_run) return print_dry_run(a, spec, opt, points, backends.size(), cmdline);

  const std::string out = output_path(a, spec.name);
  if (!lock) lock = claim_output(a, out, cmdline);
  clear_leftovers(out);
  start_results_file(file, a, expanded_spec(spec, backends, opt), shard, threads, cmdline,
                     plan.change);
  calibrate_for_sweep(file, opt, backends, a);
  record_cache_policy(file, backends, spec.cuda_warm, out);
  write_results(out, file);  // fail early on an unwritable path
  opt.interrupted = install_interrupt_handlers();
  noise::warn_if_busy(threads);
  announce(points, spec, shard, backends, out);
  const auto t0 = std::chrono::steady_clock::now();
  const size_t ran = run_sweep(points, opt, file, out, progress_printer(a.quiet));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (isatty(fileno(stderr)) && !a.quiet) fmt::print(stderr, "\r\033[K");
  write_results(out, file);
  fmt::print("{}\n{}", results_table(file), sweep_summary(file, ran, secs, out));
  if (!opt.interrupted->load()) return 0;
  fmt::print(stderr, "attnbench: interrupted; every finished row is in {}. Continue with: "
                     "attnbench sweep --resume {}\n",
             out, shell_quote(out));
  return 130;
}

}  // namespace attnbench
