// attnbench: the command-line tool of the suite (issue 3).
//   attnbench sweep --preset smoke|default|paper [--axis seq_len=512,1024 ...] [--kernels a,b]
//                   [--backend cpu|cuda|all] [--out FILE] [--resume FILE] ...
//   attnbench list [--json]
//   attnbench eval --kernel NAME --inputs DIR --output FILE.npy [--causal|--bidirectional]
//                  [--param key=value ...]
//   attnbench export --kernel NAME --out DIR [--axis name=value ...]   (for peers/)
//   attnbench compare BASE.json NEW.json [--threshold 10%] [--alpha 0.05] [--markdown]
//                     [--require-all]
//   attnbench calibrate [--quick] [--json]     this machine's sgemm rate and bandwidth
// Every bad input gives a one-line message on stderr and a non-zero exit (2; compare exits 1
// for a regression). The results schema is results/README.md.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <set>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <omp.h>

#include "attnbench/kernel.hpp"
#include "backend.hpp"
#include "calibrate.hpp"
#include "compare.hpp"
#include "eval.hpp"
#include "export.hpp"
#include "file_io.hpp"
#include "heap.hpp"
#include "npy.hpp"
#include "results.hpp"
#include "sweep.hpp"
#include "sysinfo.hpp"

using namespace attnbench;

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
  // a second Ctrl-C ends the process at once (every finished row is already on disk)
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=./,:%@") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + shell_quote(argv[i]);
  return s;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> v;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t pos = s.find(',', start);
    const std::string item = s.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    if (!item.empty()) v.push_back(item);
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return v;
}

std::string format_eta(double s) {
  if (s < 0) return "?";
  const auto t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// ---- sweep -----------------------------------------------------------------------------------

struct SweepArgs {
  std::string preset, sweep_file, kernels, backend, out, resume, memory_limit, vanilla;
  std::vector<std::string> axes;
  std::optional<double> min_time, max_point_seconds;
  std::optional<int> min_reps, max_reps, warmup, threads;
  bool dry_run = false, quiet = false, no_calibrate = false;
  bool json = false;  // with dry_run: the plan as JSON (peers/)
  bool force = false;  // replace an existing --out file
};

std::string default_out_path(const std::string& preset) {
  const std::string dir = std::string(ATTNBENCH_SOURCE_DIR) + "/results";
  const std::string stem = fmt::format("{}/{}-{}-{}", dir, sysinfo::utc_today(), sysinfo::host_name(), preset);
  std::string path = stem + ".json";
  for (int i = 2; std::filesystem::exists(path); ++i) path = fmt::format("{}-{}.json", stem, i);
  return path;
}

int run_sweep_command(const SweepArgs& a, const std::string& cmdline) {
  if (a.threads) {
    if (*a.threads < 1) throw InvalidProblem("--threads must be at least 1");
    omp_set_num_threads(*a.threads);
  }
  const int threads = omp_get_max_threads();

  ResultsFile file;
  bool resuming = false;
  if (!a.resume.empty()) {
    file = read_results(a.resume);
    resuming = true;
  }
  // the sweep: a preset, a file, the resumed file's preset, or the built-in one
  SweepSpec spec;
  if (!a.preset.empty()) {
    const std::string path = preset_path(a.preset);
    if (!std::filesystem::exists(path)) {
      std::string known;
      for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
      throw InvalidProblem(fmt::format("unknown preset '{}' (known: {})", a.preset, known));
    }
    spec = load_sweep_file(path);
    spec.name = a.preset;
  } else if (!a.sweep_file.empty()) {
    spec = load_sweep_file(a.sweep_file);
  } else if (resuming && std::filesystem::exists(preset_path(file.preset))) {
    spec = load_sweep_file(preset_path(file.preset));
    spec.name = file.preset;
  } else {
    spec = builtin_sweep();
  }
  if (!a.kernels.empty()) override_kernels(spec, split_commas(a.kernels));
  for (const auto& text : a.axes) {
    const auto [name, values] = parse_axis_override(text);
    override_axis(spec, name, values);
  }
  if (!a.backend.empty()) spec.backends = {a.backend};
  if (!a.vanilla.empty()) spec.vanilla_kernel = a.vanilla;

  RunOptions opt;
  opt.timing = spec.timing;
  for (auto& [b, t] : opt.timing) {
    if (a.min_time) t.min_time_s = *a.min_time;
    if (a.min_reps) t.min_reps = *a.min_reps;
    if (a.max_reps) t.max_reps = *a.max_reps;
    if (a.warmup) t.warmup = *a.warmup;
    if (t.min_reps < 1 || t.max_reps < 1 || t.warmup < 0 || t.min_time_s < 0)
      throw InvalidProblem("--min-reps and --max-reps must be >= 1, --warmup and --min-time >= 0");
    t.max_reps = std::max(t.max_reps, t.min_reps);
  }
  opt.max_point_seconds = a.max_point_seconds ? *a.max_point_seconds : spec.max_point_seconds;
  if (opt.max_point_seconds < 0) throw InvalidProblem("--max-point-seconds must be >= 0");
  opt.threads = threads;
  if (!a.memory_limit.empty()) {
    opt.host_memory_limit = parse_bytes(a.memory_limit);
    opt.device_memory_limit = opt.host_memory_limit;
  }
  opt.interrupted = &g_interrupted;

  const auto backends = resolve_backends(spec.backends);
  if (backends.empty()) throw InvalidProblem("no backend to run on");
  const auto points = expand(spec, backends);
  if (!spec.vanilla_kernel.empty() && !Registry::instance().find(spec.vanilla_kernel, Backend::cpu) &&
      !Registry::instance().find(spec.vanilla_kernel, Backend::cuda))
    Registry::instance().get(spec.vanilla_kernel, Backend::cpu);  // throws: unknown kernel

  if (a.dry_run && a.json) {
    fmt::print("{}\n", sweep_plan_json(spec, opt, points, collect_environment(threads, cmdline)).dump(2));
    return 0;
  }
  if (a.dry_run) {
    for (const auto& pt : points) fmt::print("{}\n", pt.describe());
    fmt::print("{} points ({} backend{})\n", points.size(), backends.size(), backends.size() == 1 ? "" : "s");
    return 0;
  }

  const std::string out = !a.out.empty() ? a.out : resuming ? a.resume : default_out_path(spec.name);
  file_io::check_output_target(out, a.out.empty() && resuming ? "--resume" : "--out");
  file_io::check_create_only(out, a.resume, a.force);
  const file_io::RunLock lock(out, cmdline);  // one writer per results file, for the whole run
  for (const auto& t : file_io::leftover_temps(out, true))
    fmt::print(stderr, "attnbench: warning: {} {} (left by pid {})\n", t.removed ? "removed" : "found",
               t.path, t.pid);
  if (resuming) {
    const Environment now = collect_environment(threads, cmdline);
    if (now.cpu_model != file.environment.cpu_model ||
        (now.gpu ? now.gpu->name : "") != (file.environment.gpu ? file.environment.gpu->name : ""))
      fmt::print(stderr, "attnbench: warning: resuming {} on another machine ({} vs {})\n", a.resume,
                 now.cpu_model, file.environment.cpu_model);
    file.environment.resumes.push_back({now.date, cmdline});
    file.vanilla_kernel = spec.vanilla_kernel;
  } else {
    file.preset = spec.name;
    file.vanilla_kernel = spec.vanilla_kernel;
    file.environment = collect_environment(threads, cmdline);
  }
  const bool has_cpu = std::find(backends.begin(), backends.end(), Backend::cpu) != backends.end();
  if (has_cpu && !a.no_calibrate && file.environment.calibration.is_null()) {
    // the ceilings every cpu row's pct_of_peak is read against, measured once per results file
    const Calibration c = calibrate(false);
    file.environment.calibration = to_json(c);
    opt.cpu_sgemm_gflops = c.sgemm_gflops;
    if (!a.quiet)
      fmt::print(stderr, "attnbench: calibration: sgemm {:.1f} GFLOP/s ({} threads), copy {:.1f} GB/s\n",
                 c.sgemm_gflops, c.threads, c.bandwidth_gbs);
  }
  write_results(out, file);  // fail early on an unwritable path

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const bool tty = isatty(fileno(stderr));
  std::string on;
  for (Backend b : backends) on += (on.empty() ? "" : "; ") + backend_device_name(b);
  fmt::print(stderr, "attnbench: {} points of '{}' on {}; results in {}\n", points.size(), spec.name,
             on, out);
  const auto progress = [&](const SweepProgress& p) {
    if (a.quiet) return;
    const std::string desc = p.point->describe();
    if (!p.finished) {
      if (!tty) return;
      const size_t width = 24, filled = p.total ? width * p.index / p.total : 0;
      fmt::print(stderr, "\r\033[K[{}{}] {}/{} ETA {}  {}", std::string(filled, '#'),
                 std::string(width - filled, '.'), p.index + 1, p.total, format_eta(p.eta_s), desc);
      std::fflush(stderr);
      return;
    }
    const Row& r = *p.finished;
    std::string what = r.status;
    if (r.time) what += fmt::format(" {:.3f} ms", r.time->median);
    if (!r.reason.empty()) what += ": " + r.reason;
    if (tty) {
      if (r.status != "ok") fmt::print(stderr, "\r\033[K{}  {}\n", desc, what);
    } else {
      fmt::print(stderr, "[{}/{}] {}: {} (ETA {})\n", p.index + 1, p.total, desc, what,
                 format_eta(p.eta_s));
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  const size_t ran = run_sweep(points, opt, file, out, progress);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty && !a.quiet) fmt::print(stderr, "\r\033[K");
  write_results(out, file);

  fmt::print("{}", results_table(file));
  size_t ok = 0, skipped = 0, errors = 0;
  for (const auto& r : file.rows) (r.status == "ok" ? ok : r.status == "skipped" ? skipped : errors)++;
  fmt::print("\n{} rows ({} ok, {} skipped, {} errors), {} run now in {:.1f} s; results: {}\n",
             file.rows.size(), ok, skipped, errors, ran, secs, out);
  if (g_interrupted.load()) {
    fmt::print(stderr, "attnbench: interrupted; every finished row is in {}. Continue with: {} --resume {}\n",
               out, cmdline, shell_quote(out));
    return 130;
  }
  return 0;
}

// ---- list ------------------------------------------------------------------------------------

int run_list(bool as_json) {
  const Registry& reg = Registry::instance();
  ojson all = ojson::array();
  for (const auto& name : reg.names()) {
    const Kernel* any = reg.find(name, Backend::cpu);
    if (!any) any = reg.find(name, Backend::cuda);
    const KernelInfo& info = any->info();
    ojson k;
    k["name"] = name;
    k["family"] = info.family;
    k["summary"] = info.summary;
    ojson b = ojson::array();
    for (Backend be : {Backend::cpu, Backend::cuda})
      if (reg.find(name, be)) b.push_back(backend_name(be));
    k["backends"] = b;
    k["causal"] = info.has_causal;
    k["bidirectional"] = info.has_bidirectional;
    k["is_vanilla"] = info.is_vanilla;
    ojson files = ojson::array();
    for (const auto& [f, layout] : eval_input_files(*any)) files.push_back({{"file", f}, {"layout", layout}});
    k["inputs"] = files;
    ojson ps = ojson::array();
    for (const auto& p : info.params) {
      ojson pj;
      pj["name"] = p.name;
      pj["default"] = p.default_value;
      pj["doc"] = p.doc;
      ps.push_back(pj);
    }
    k["params"] = ps;
    all.push_back(k);
  }
  if (as_json) {
    ojson j;
    j["kernels"] = all;
    j["presets"] = preset_names();
    ojson be = ojson::object();
    for (Backend b : {Backend::cpu, Backend::cuda}) {
      std::string why;
      const bool ok = backend_available(b, &why);
      be[backend_name(b)] = {{"available", ok}, {"why", ok ? "" : why}};
    }
    j["backends"] = be;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  for (const auto& k : all) {
    std::string backends, forms, params;
    for (const auto& b : k["backends"]) backends += (backends.empty() ? "" : ", ") + b.get<std::string>();
    if (k["causal"].get<bool>()) forms = "causal";
    if (k["bidirectional"].get<bool>()) forms += forms.empty() ? "bidirectional" : " + bidirectional";
    for (const auto& p : k["params"])
      params += fmt::format("{}{}={}", params.empty() ? "" : " ", p["name"].get<std::string>(),
                            p["default"].get<double>());
    fmt::print("{:<22} {:<8} [{}] {}\n", k["name"].get<std::string>(), k["family"].get<std::string>(),
               backends, k["summary"].get<std::string>());
    fmt::print("{:<22} forms: {}; parameters: {}\n", "", forms, params.empty() ? "none" : params);
  }
  std::string presets;
  for (const auto& p : preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  fmt::print("\npresets: {}\n", presets);
  for (Backend b : {Backend::cpu, Backend::cuda}) {
    std::string why;
    fmt::print("backend {}: {}\n", backend_name(b),
               backend_available(b, &why) ? backend_device_name(b) : "not available (" + why + ")");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  heap::install_interposer();
  std::signal(SIGXFSZ, SIG_IGN);  // a file size limit fails the write (one line), not the process
  const std::string cmdline = command_line(argc, argv);

  CLI::App app{"attnbench: benchmarks and reproduction of efficient self-attention for sequential "
               "recommendation"};
  app.require_subcommand(1);

  // sweep
  SweepArgs sa;
  auto* sweep = app.add_subcommand("sweep", "run the product of the axes over the kernels and backends");
  auto* o_preset = sweep->add_option("--preset", sa.preset, "sweep preset: smoke, default or paper");
  auto* o_file = sweep->add_option("--sweep", sa.sweep_file, "sweep description file (JSON)");
  o_preset->excludes(o_file);
  sweep->add_option("--axis", sa.axes,
                    "override an axis in every group: name=v1,v2 (repeatable), e.g. seq_len=512,1024")
      ->take_all()
      ->allow_extra_args(false);
  sweep->add_option("--kernels", sa.kernels, "kernels to run, comma-separated (default: the sweep's)");
  sweep->add_option("--backend", sa.backend, "cpu, cuda or all (default: the sweep's, usually all)")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  sweep->add_option("--out", sa.out, "results file (default results/<date>-<host>-<preset>.json)");
  sweep->add_flag("--force", sa.force, "replace --out when it exists (else --resume continues it)");
  sweep->add_option("--resume", sa.resume,
                    "continue this results file: points already in it (ok or skipped) are not run "
                    "again, error rows are re-run");
  sweep->add_option("--min-time", sa.min_time, "least timed seconds per point");
  sweep->add_option("--min-reps", sa.min_reps, "least timed runs per point");
  sweep->add_option("--max-reps", sa.max_reps, "most timed runs per point");
  sweep->add_option("--warmup", sa.warmup, "untimed runs before timing");
  sweep->add_option("--max-point-seconds", sa.max_point_seconds,
                    "skip a point whose time, extrapolated from smaller points, exceeds this; also "
                    "ends a point's timing loop (0 = no limit; default 60)");
  sweep->add_option("--memory-limit", sa.memory_limit,
                    "skip points needing more memory: e.g. 20G (GiB), 20GB, bytes (default 80 % of "
                    "physical / device memory)");
  sweep->add_option("--threads", sa.threads, "cpu threads (default: OMP_NUM_THREADS or every core)");
  sweep->add_option("--vanilla", sa.vanilla, "kernel the vs_vanilla ratios are taken against");
  sweep->add_flag("--dry-run", sa.dry_run, "print the points and exit");
  sweep->add_flag("--json", sa.json, "with --dry-run: the points, timing and environment as JSON");
  sweep->add_flag("--no-calibrate", sa.no_calibrate,
                  "do not measure the sgemm rate and bandwidth first (rows then carry no "
                  "pct_of_peak)");
  sweep->add_flag("--quiet", sa.quiet, "no progress on stderr");

  // list
  bool list_json = false;
  auto* list = app.add_subcommand("list", "the registered kernels, their forms and parameters");
  list->add_flag("--json", list_json, "machine-readable output");

  // eval
  EvalOptions eo;
  std::string eval_backend = "cpu";
  std::vector<std::string> eval_params;
  bool eval_causal = false, eval_bidir = false;
  auto* eval = app.add_subcommand("eval", "run one kernel on your own tensors (.npy files)");
  eval->add_option("--kernel", eo.kernel, "kernel name (attnbench list)")->required();
  eval->add_option("--inputs", eo.inputs_dir,
                   "folder with q.npy, k.npy, v.npy float32 [batch, heads, N, dh]; codebook "
                   "methods: codes.npy int32/int64 [batch, heads, N, B], codebooks.npy float32 "
                   "[heads, B, W, dh], optional wq/wk/wv.npy [heads, B, dh, dh]; lisa_soft: probs.npy "
                   "float32 [batch, heads, N, B, W]")
      ->required();
  eval->add_option("--output", eo.output_path, "output .npy, float32 [batch, heads, N, dh]")->required();
  auto* f_causal = eval->add_flag("--causal", eval_causal, "causal form (the default when the kernel has it)");
  auto* f_bidir = eval->add_flag("--bidirectional", eval_bidir, "bidirectional form");
  f_causal->excludes(f_bidir);
  eval->add_option("--param", eval_params, "method parameter key=value (repeatable), e.g. decay=0.1")
      ->take_all()
      ->allow_extra_args(false);
  eval->add_option("--backend", eval_backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));

  // compare
  std::string base_path, new_path, threshold = "10%";
  double alpha = 0.05;
  bool markdown = false, require_all = false;
  auto* compare = app.add_subcommand("compare", "compare two results files; exit 1 on a regression");
  compare->add_option("BASE", base_path, "baseline results file")->required();
  compare->add_option("NEW", new_path, "new results file")->required();
  compare->add_option("--threshold", threshold, "relative change that counts, e.g. 10% or 0.1 (default 10%)");
  compare->add_option("--alpha", alpha, "significance level of the Mann-Whitney U test (default 0.05)");
  compare->add_flag("--markdown", markdown, "print a Markdown table (for a CI comment)");
  compare->add_flag("--require-all", require_all,
                    "a row of BASE missing from NEW is a regression (exit 1)");

  // calibrate
  bool cal_quick = false, cal_json = false;
  auto* cal = app.add_subcommand("calibrate", "measure this machine's sgemm rate (all threads and "
                                              "one) and copy bandwidth");
  cal->add_flag("--quick", cal_quick, "smaller sizes (less accurate, well under a second)");
  cal->add_flag("--json", cal_json, "machine-readable output");

  // export: one point's inputs and float64 reference as .npy, for the PyTorch peers (peers/)
  std::string export_kernel, export_dir;
  std::vector<std::string> export_axes;
  auto* exporter = app.add_subcommand("export", "write one point's seeded inputs (.npy, eval's "
                                                "layout) and the float64 reference of its checked rows");
  exporter->add_option("--kernel", export_kernel, "kernel name (attnbench list)")->required();
  exporter->add_option("--axis", export_axes, "name=value (repeatable); unset axes as in a sweep")
      ->take_all()
      ->allow_extra_args(false);
  exporter->add_option("--out", export_dir, "folder to write (created)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (*sweep) return run_sweep_command(sa, cmdline);
    if (*list) return run_list(list_json);
    if (*exporter) return run_export_command(export_kernel, export_axes, export_dir);
    if (*eval) {
      eo.backend = *parse_backend(eval_backend);
      if (eval_causal) eo.causal = true;
      if (eval_bidir) eo.causal = false;
      for (const auto& p : eval_params) eo.params.push_back(parse_param(p));
      file_io::check_output_target(eo.output_path, "--output");  // before the kernel runs
      const EvalResult r = run_eval(eo);
      std::vector<std::string> shown;
      for (const auto& ps : r.kernel->info().params) shown.push_back(ps.name);
      fmt::print("{} ({}) on {}: {:.3f} ms; rel-L2 against the float64 reference on {} rows: {:.2e}\n"
                 "wrote {}: float32 {}\n",
                 r.kernel->info().name, eval_backend, describe(r.problem, shown), r.run_ms,
                 r.reference_rows, r.reference_rel_l2, eo.output_path, npy::shape_str(r.output_shape));
      return 0;
    }
    if (*cal) {
      const Calibration c = calibrate(cal_quick);
      if (cal_json) {
        fmt::print("{}\n", to_json(c).dump(2));
      } else {
        fmt::print("{}, {} threads\n", sysinfo::cpu_model(), c.threads);
        fmt::print("sgemm ({0} x {0} x {0}):  {1:.1f} GFLOP/s all threads, {2:.1f} GFLOP/s one thread\n",
                   c.sgemm_n, c.sgemm_gflops, c.sgemm_gflops_one_thread);
        fmt::print("copy bandwidth:          {:.1f} GB/s (read + write, {} per buffer)\n",
                   c.bandwidth_gbs, format_bytes(double(c.copy_bytes)));
        fmt::print("machine balance:         {:.1f} FLOP per byte ({:.1f} s to calibrate)\n",
                   c.bandwidth_gbs > 0 ? c.sgemm_gflops / c.bandwidth_gbs : 0.0, c.seconds);
      }
      return 0;
    }
    if (*compare) {
      if (!(alpha > 0 && alpha < 1)) throw InvalidProblem("--alpha must lie in (0, 1)");
      CompareOptions co;
      co.threshold = parse_fraction(threshold, "--threshold");
      co.alpha = alpha;
      co.require_all = require_all;
      co.base_name = base_path;
      co.new_name = new_path;
      const ResultsFile base = read_results(base_path);
      const ResultsFile next = read_results(new_path);
      const Comparison c = compare_results(base, next, co);
      for (const auto& w : c.environment_warnings)
        fmt::print(stderr, "attnbench compare: warning: {}\n", w);
      if (c.matched == 0)
        fmt::print(stderr, "attnbench compare: warning: no row of {} matches a row of {} (different "
                           "sweeps?); nothing was compared\n",
                   new_path, base_path);
      if (c.missing)
        fmt::print(stderr, "attnbench compare: {}: {} row{} of {} {} missing\n", new_path,
                   c.missing, c.missing == 1 ? "" : "s", base_path, c.missing == 1 ? "is" : "are");
      fmt::print("{}", comparison_report(c, markdown));
      return c.regressions ? 1 : 0;
    }
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "attnbench: error: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
