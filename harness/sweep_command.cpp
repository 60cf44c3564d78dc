#include "sweep_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>

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

// --threads (at least 1) for OpenMP; the threads the sweep runs with.
int set_threads(const std::optional<int>& threads) {
  if (threads) {
    if (*threads < 1) throw InvalidProblem("--threads must be at least 1");
    omp_set_num_threads(*threads);
  }
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

SweepSpec assemble_spec(const SweepArgs& a, const ResultsFile* resumed) {
  SweepSpec spec;
  if (!a.preset.empty())
    spec = load_preset(a.preset);
  else if (!a.sweep_file.empty())
    spec = load_sweep_file(a.sweep_file);
  else if (resumed && std::filesystem::exists(preset_path(resumed->preset)))
    spec = load_preset(resumed->preset);
  else
    spec = builtin_sweep();
  if (!a.kernels.empty()) override_kernels(spec, split_list(a.kernels));
  for (const auto& text : a.axes) {
    const auto [name, values] = parse_axis_override(text);
    override_axis(spec, name, values);
  }
  if (!a.backend.empty()) spec.backends = {a.backend};
  if (!a.vanilla.empty()) spec.vanilla_kernel = a.vanilla;
  return spec;
}

RunOptions run_options(const SweepArgs& a, const SweepSpec& spec, int threads) {
  RunOptions o;
  o.timing = spec.timing;
  for (auto& [b, t] : o.timing) apply_timing_flags(t, a);
  o.max_point_seconds = a.max_point_seconds ? *a.max_point_seconds : spec.max_point_seconds;
  if (o.max_point_seconds < 0) throw InvalidProblem("--max-point-seconds must be >= 0");
  o.threads = threads;
  o.cuda_warm = a.warm;
  if (a.warm) o.repro_extra = "--warm";
  apply_noise_flags(o, a);
  if (!a.memory_limit.empty()) {
    o.host_memory_limit = parse_bytes(a.memory_limit);
    o.device_memory_limit = o.host_memory_limit;
  }
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

// The results file this run may write: a regular or a new file, an existing one only when
// resumed or forced, locked against a second writer for the whole run.
file_io::RunLock claim_output(const SweepArgs& a, const std::string& out, const std::string& cmdline) {
  file_io::check_output_target(out, a.out.empty() && !a.resume.empty() ? "--resume" : "--out");
  file_io::check_create_only(out, a.resume, a.force);
  return file_io::RunLock(out, cmdline);
}

// Temporary files a killed writer of `out` left behind: removed when their writer is gone.
void clear_leftovers(const std::string& out) {
  for (const auto& t : file_io::leftover_temps(out, true))
    fmt::print(stderr, "attnbench: warning: {} {} (left by pid {})\n", t.removed ? "removed" : "found",
               t.path, t.pid);
}

void start_results_file(ResultsFile& file, const SweepArgs& a, const SweepSpec& expanded,
                        const Shard& shard, int threads, const std::string& cmdline) {
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
  if (file.sweep.is_null()) file.sweep = to_json(expanded);
  if (now.cpu_model != file.environment.cpu_model ||
      (now.gpu ? now.gpu->name : "") != (file.environment.gpu ? file.environment.gpu->name : ""))
    fmt::print(stderr, "attnbench: warning: resuming {} on another machine ({} vs {})\n", a.resume,
               now.cpu_model, file.environment.cpu_model);
  file.environment.resumes.push_back({now.date, cmdline, ""});
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

void record_cache_policy(ResultsFile& file, const std::vector<Backend>& backends,
                         const SweepArgs& a, const std::string& out) {
  if (!has_backend(backends, Backend::cuda)) return;
  const std::string policy = a.warm ? "warm" : "cold";
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
  const int threads = set_threads(a.threads);
  ResultsFile file;
  if (!a.resume.empty()) file = read_results(a.resume);
  const SweepSpec spec = assemble_spec(a, a.resume.empty() ? nullptr : &file);
  RunOptions opt = run_options(a, spec, threads);
  const auto backends = resolve_backends(spec.backends);
  const Shard shard = a.shard.empty() ? Shard{} : parse_shard(a.shard);
  const auto points = points_to_run(spec, backends, shard);
  if (a.dry_run) return print_dry_run(a, spec, opt, points, backends.size(), cmdline);

  const std::string out = output_path(a, spec.name);
  const file_io::RunLock lock = claim_output(a, out, cmdline);
  clear_leftovers(out);
  start_results_file(file, a, expanded_spec(spec, backends, opt), shard, threads, cmdline);
  calibrate_for_sweep(file, opt, backends, a);
  record_cache_policy(file, backends, a, out);
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
  fmt::print(stderr, "attnbench: interrupted; every finished row is in {}. Continue with: {} --resume {}\n",
             out, cmdline, shell_quote(out));
  return 130;
}

}  // namespace attnbench
