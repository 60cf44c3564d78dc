// attnbench_gate: the CI performance gates (issue 7) against the baselines in
// results/baselines/ (their README says what each holds and how to update them).
//   attnbench_gate memory [--update]  workspace query and correctness error of every cpu kernel
//                                     at a few points: must not grow (exact); measured heap peak:
//                                     must not grow by more than 16 kB (allocator granularity)
//   attnbench_gate work   [--update]  instructions of one run under callgrind (portable build,
//                                     one thread): must not grow by more than 2 %
//   attnbench_gate time   [--update]  one-thread CPU time / an interleaved sgemm reference,
//                                     Mann-Whitney U test and +15 % minimum effect; no baseline
//                                     for this hardware = a warning
//   attnbench_gate points             the points each gate measures
// Prints a Markdown report; exit 0 = pass (warnings included), 1 = a regression, 2 = an error.
// bench/ci_perf.sh runs the gates for `./run_all.sh ci-perf`.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <cblas.h>
#include <fmt/format.h>
#include <omp.h>

#include "attnbench/kernel.hpp"
#include "backend.hpp"
#include "gates.hpp"
#include "heap.hpp"
#include "inputs.hpp"
#include "results.hpp"
#include "stats.hpp"
#include "sweep.hpp"

extern "C" void openblas_set_num_threads(int);
extern char** environ;

using namespace attnbench;
using namespace attnbench::gates;
namespace fs = std::filesystem;

namespace {

// ---- the points of each gate -------------------------------------------------------------------

struct Shape {
  int64_t batch, heads, seq_len;
};

Point make_point(const Kernel& k, Shape s, bool causal) {
  Point pt;
  pt.kernel = &k;
  pt.backend = k.info().backend;
  Problem p = with_defaults(k, default_shape());
  p.batch = s.batch;
  p.heads = s.heads;
  p.seq_len = s.seq_len;
  p.causal = causal;
  pt.problem = p;
  pt.group = "gate";
  return pt;
}

std::vector<bool> forms_of(const Kernel& k) {
  std::vector<bool> f;
  if (k.info().has_causal) f.push_back(true);
  if (k.info().has_bidirectional) f.push_back(false);
  return f;
}

// Every cpu kernel, both forms where it has them, at one sequence (the kernels cut it into
// chunks for the threads) and at four sequences (one or more per thread).
std::vector<Point> memory_points() {
  std::vector<Point> pts;
  for (const Kernel* k : Registry::instance().kernels()) {
    if (k->info().backend != Backend::cpu) continue;
    for (Shape s : {Shape{1, 1, 512}, Shape{2, 2, 1024}})
      for (bool causal : forms_of(*k)) pts.push_back(make_point(*k, s, causal));
  }
  return pts;
}

// Small points under callgrind (~50x slower than native): vanilla both ways, LISA, one
// linear and one sparse kernel.
std::vector<Point> work_points() {
  const Registry& reg = Registry::instance();
  struct Spec {
    const char* kernel;
    int64_t n;
    bool causal;
  };
  const Spec specs[] = {{"vanilla_materialized", 512, true}, {"vanilla_flash", 512, true},
                        {"lisa_base", 1024, true},            {"lisa_base", 1024, false},
                        {"lisa_mini", 1024, true},            {"performer", 1024, true},
                        {"local_window", 1024, true}};
  std::vector<Point> pts;
  for (const Spec& s : specs)
    if (const Kernel* k = reg.find(s.kernel, Backend::cpu)) pts.push_back(make_point(*k, {1, 1, s.n}, s.causal));
  return pts;
}

// Points of a few milliseconds on one thread.
std::vector<Point> time_points() {
  const Registry& reg = Registry::instance();
  struct Spec {
    const char* kernel;
    int64_t n;
  };
  const Spec specs[] = {{"vanilla_materialized", 1024}, {"vanilla_flash", 1024},
                        {"lisa_base", 2048},            {"lisa_mini", 4096},
                        {"performer", 2048},            {"local_window", 4096}};
  std::vector<Point> pts;
  for (const Spec& s : specs)
    if (const Kernel* k = reg.find(s.kernel, Backend::cpu)) pts.push_back(make_point(*k, {1, 1, s.n}, true));
  return pts;
}

// ---- common ------------------------------------------------------------------------------------

struct Common {
  bool update = false;
  bool all = false;
  std::string baselines = std::string(ATTNBENCH_SOURCE_DIR) + "/results/baselines";
  std::string out;     // this run's results (gate baseline format), for CI artifacts
  std::string report;  // append the Markdown report to this file
  std::string cmdline;
};

void set_threads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);  // the OpenMP build of OpenBLAS follows OpenMP's count too
}

// Prints (and appends to --report) the report; the exit status of the gate.
int finish(const Common& c, const GateReport& rep, bool all) {
  const std::string md = markdown(rep, all || c.all);
  fmt::print("{}", md);
  std::fflush(stdout);
  if (!c.report.empty()) {
    std::ofstream f(c.report, std::ios::app);
    if (!f) throw InvalidProblem(fmt::format("--report {}: cannot write", c.report));
    f << md;
  }
  return rep.failed() ? 1 : 0;
}

void write_json(const std::string& path, const ojson& j) { write_text_atomic(path, j.dump(2) + "\n"); }

// Reads a stored baseline; with --update an unreadable one (an older format) is only replaced.
template <class Run, class Read>
std::optional<Run> load_baseline(const std::string& path, bool update, Read read) {
  if (!fs::exists(path)) return std::nullopt;
  try {
    return read(read_json_file(path), path);
  } catch (const std::exception& e) {
    if (!update) throw;
    fmt::print(stderr, "attnbench_gate: replacing an unreadable baseline: {}\n", e.what());
    return std::nullopt;
  }
}

std::string self_dir() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// Runs argv, stdout and stderr to `log`; the exit status (128 + signal when killed).
int spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw InvalidProblem(fmt::format("cannot run {}: {}", argv[0], std::strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw InvalidProblem(fmt::format("waitpid: {}", std::strerror(errno)));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail_lines(const std::string& text, size_t n) {
  size_t pos = text.size();
  for (size_t i = 0; i <= n && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

// ---- memory ------------------------------------------------------------------------------------

int run_memory(const Common& c, int threads) {
  set_threads(threads);
  const Fingerprint fp = this_machine(threads);
  const std::vector<Point> points = memory_points();
  RunOptions o;
  o.timing[Backend::cpu] = Timing{1, 1, 0.0, 1};  // one warm-up and one run: memory, not time
  o.max_point_seconds = 0;
  o.threads = threads;
  auto runner = make_cpu_runner();
  // first OpenMP region and OpenBLAS call of the process, outside every measured point
  if (!points.empty()) run_point(points.front(), o, {}, *runner);

  MemoryRun now;
  now.fingerprint = fp;
  now.results.preset = "gate-memory";
  now.results.environment = collect_environment(threads, c.cmdline);
  const auto t0 = std::chrono::steady_clock::now();
  for (const Point& pt : points) {
    Row r = run_point(pt, o, {}, *runner);
    // keep what the gate compares; times would only churn the stored file
    r.time.reset();
    r.gflops_per_s.reset();
    r.point_seconds = r.check_seconds = 0;
    r.warmup_runs = 0;
    now.results.rows.push_back(std::move(r));
  }
  fmt::print(stderr, "attnbench_gate memory: {} points in {:.1f} s on {}\n", points.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
             fp.words());
  if (!c.out.empty()) write_json(c.out, to_json(now));

  const std::string path = memory_baseline_path(c.baselines, fp);
  std::optional<MemoryRun> base;
  std::string base_path;
  MemoryScope scope = MemoryScope::full;
  if (fs::exists(path)) {
    base = load_baseline<MemoryRun>(path, c.update, memory_run_from_json);
    base_path = path;
  } else if (fs::is_directory(c.baselines + "/memory")) {
    // another machine's baseline: its workspace query still applies (same thread count)
    std::vector<std::string> others;
    for (const auto& e : fs::directory_iterator(c.baselines + "/memory"))
      if (e.path().extension() == ".json") others.push_back(e.path().string());
    std::sort(others.begin(), others.end());
    for (const auto& p : others) {
      MemoryRun r = memory_run_from_json(read_json_file(p), p);
      if (r.fingerprint.threads == threads) {
        base = std::move(r);
        base_path = p;
        scope = MemoryScope::query_only;
        break;
      }
    }
  }
  if (c.update) {
    write_json(path, to_json(now));
    fmt::print(stderr, "attnbench_gate memory: wrote the baseline {} ({} points)\n", path, points.size());
    if (base && scope == MemoryScope::full) {
      GateReport rep = compare_memory(*base, now, scope);
      rep.baseline_path = base_path + " (replaced)";
      finish(c, rep, false);
    }
    return 0;
  }
  if (!base)
    throw InvalidProblem(fmt::format("no memory baseline under {}/memory with {} threads; create "
                                     "one with `attnbench_gate memory --update`",
                                     c.baselines, threads));
  GateReport rep = compare_memory(*base, now, scope);
  rep.baseline_path = base_path;
  return finish(c, rep, false);
}

// ---- work --------------------------------------------------------------------------------------

struct WorkArgs {
  std::string driver;    // default: attnbench_work_driver beside this tool
  std::string valgrind = "valgrind";
  double tolerance = 0.02;
  std::string keep;      // keep callgrind's files in this folder
};

int run_work(const Common& c, const WorkArgs& a) {
  const std::string driver = a.driver.empty() ? self_dir() + "/attnbench_work_driver" : a.driver;
  if (!fs::exists(driver))
    throw InvalidProblem(fmt::format("work driver {} not found (built by the perf-gates section "
                                     "of CMakeLists.txt; give --driver)",
                                     driver));
  fs::path dir;
  if (!a.keep.empty()) {
    dir = a.keep;
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("callgrind.out", 0) == 0) fs::remove(e.path());
  } else {
    std::string tmpl = (fs::temp_directory_path() / "attnbench-work-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw InvalidProblem("cannot create a temporary folder");
    dir = tmpl;
  }
  struct Cleanup {
    fs::path d;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(d, ec);
    }
  } cleanup{dir, !a.keep.empty()};

  const std::vector<Point> points = work_points();
  ojson list = ojson::array();
  for (size_t i = 0; i < points.size(); ++i)
    list.push_back({{"label", fmt::format("p{}", i)},
                    {"kernel", points[i].kernel->info().name},
                    {"axes", axes_json(points[i].problem)}});
  const std::string points_file = (dir / "points.json").string();
  const std::string driver_out = (dir / "driver.json").string();
  write_json(points_file, list);

  // One thread, and OpenBLAS's Haswell (AVX2) kernels whether or not valgrind hides AVX-512
  // from cpuid: the same code runs under valgrind as outside it.
  setenv("OMP_NUM_THREADS", "1", 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  const std::string log = (dir / "valgrind.log").string();
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = spawn({a.valgrind, "--tool=callgrind", "--instr-atstart=no",
                        "--callgrind-out-file=" + (dir / "callgrind.out").string(), driver,
                        points_file, "--out", driver_out},
                       log);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rc != 0)
    throw InvalidProblem(fmt::format("valgrind exited with {} (log {}):\n{}", rc, log,
                                     tail_lines(read_text(log), 15)));
  const int vrc = spawn({a.valgrind, "--version"}, (dir / "version.txt").string());
  std::string vversion = vrc == 0 ? read_text((dir / "version.txt").string()) : "unknown";
  while (!vversion.empty() && (vversion.back() == '\n' || vversion.back() == '\r')) vversion.pop_back();

  // the driver's account of each point (status, memory figures) and the callgrind dumps
  const ojson dj = read_json_file(driver_out);
  std::map<std::string, uint64_t> by_label;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("callgrind.out", 0) != 0) continue;
    const CallgrindDump d = parse_callgrind_dump(read_text(e.path().string()));
    if (d.trigger.rfind("attnbench:", 0) == 0) by_label[d.trigger.substr(10)] = d.instructions;
  }

  WorkRun now;
  now.fingerprint = this_machine(1);
  now.results.preset = "gate-work";
  now.results.environment = collect_environment(1, c.cmdline);
  now.tool = {{"valgrind", vversion},
              {"OPENBLAS_CORETYPE", "Haswell"},
              {"threads", 1},
              {"driver_flags", dj.value("cxx_flags", "")}};
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& pt = points[i];
    const std::string label = fmt::format("p{}", i);
    Row r;
    r.kernel = pt.kernel->info().name;
    r.backend = pt.backend;
    r.problem = pt.problem;
    r.family = pt.kernel->info().family;
    r.flops = pt.kernel->flops(pt.problem);
    r.min_bytes = pt.kernel->min_bytes(pt.problem);
    r.repro = repro_command(pt, "--threads 1") + "  (instructions: attnbench_gate work)";
    r.status = "error";
    r.reason = "the work driver did not report this point";
    for (const auto& d : dj.value("points", ojson::array()))
      if (d.value("label", "") == label) {
        r.status = d.value("status", "error");
        r.reason = d.value("reason", "");
        r.memory.inputs_bytes = d.value("inputs_bytes", size_t(0));
        r.memory.outputs_bytes = d.value("outputs_bytes", size_t(0));
        r.memory.prepared_bytes = d.value("prepared_bytes", size_t(0));
        r.memory.scratch_bytes = d.value("scratch_bytes", size_t(0));
      }
    if (r.status == "ok") {
      if (auto it = by_label.find(label); it != by_label.end())
        now.instructions[row_key(r)] = double(it->second);
      else {
        r.status = "error";
        r.reason = "no callgrind dump for this point";
      }
    }
    now.results.rows.push_back(std::move(r));
  }
  fmt::print(stderr, "attnbench_gate work: {} points under callgrind in {:.1f} s\n", points.size(), secs);
  if (!c.out.empty()) write_json(c.out, to_json(now));

  const std::string path = work_baseline_path(c.baselines);
  std::optional<WorkRun> base;
  base = load_baseline<WorkRun>(path, c.update, work_run_from_json);
  WorkOptions wo;
  wo.tolerance = a.tolerance;
  if (c.update) {
    write_json(path, to_json(now));
    fmt::print(stderr, "attnbench_gate work: wrote the baseline {} ({} points)\n", path, points.size());
    if (base) {
      GateReport rep = compare_work(*base, now, wo);
      rep.baseline_path = path + " (replaced)";
      finish(c, rep, true);
    }
    return 0;
  }
  if (!base)
    throw InvalidProblem(fmt::format("no work baseline {}; create it with `attnbench_gate work --update`", path));
  GateReport rep = compare_work(*base, now, wo);
  rep.baseline_path = path;
  return finish(c, rep, true);
}

// ---- time --------------------------------------------------------------------------------------

// CPU time of the calling thread, ms. The time gate runs everything on this one thread.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

// The reference every kernel time is divided by: one cblas_sgemm of n x n x n on the gate's
// thread, timed beside each kernel sample. A slower core (frequency, a neighbour's pressure on
// the shared caches) slows both.
class SgemmReference {
 public:
  explicit SgemmReference(int n) : n_(n), a_(size_t(n) * n), b_(size_t(n) * n), c_(size_t(n) * n) {
    for (size_t i = 0; i < a_.size(); ++i) {
      a_[i] = float(counter_normal(7, 1, i));
      b_[i] = float(counter_normal(7, 2, i));
    }
  }
  double run_cpu_ms() {
    const double t0 = thread_cpu_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_, n_, n_, 1.0f, a_.data(), n_,
                b_.data(), n_, 0.0f, c_.data(), n_);
    return thread_cpu_ms() - t0;
  }
  std::string words() const { return fmt::format("sgemm {}^3", n_); }

 private:
  int n_;
  std::vector<float> a_, b_, c_;
};

struct TimeArgs {
  int rounds = 25;
  int sgemm_n = 384;
  double min_effect = 0.15;
  double alpha = 0.01;
};

int run_time(const Common& c, const TimeArgs& a) {
  // one thread: its CPU time is the kernel's whole cost, and it excludes the time the thread
  // waited for a core on a busy machine
  constexpr int threads = 1;
  set_threads(threads);
  const Fingerprint fp = this_machine(threads);
  const std::vector<Point> points = time_points();
  SgemmReference ref(a.sgemm_n);

  struct Slot {
    const Point* pt;
    HostInputs in;
    std::unique_ptr<BackendRunner> runner;
    std::vector<double> wall_ms, cpu_ms, ref_ms;
    std::string error;
  };
  std::vector<Slot> slots;
  for (const Point& pt : points) {
    Slot s{&pt, {}, make_cpu_runner(), {}, {}, {}, ""};
    try {
      s.in = make_inputs(pt.problem, pt.kernel->info().inputs, pt.problem.seed);
      s.runner->setup(*pt.kernel, pt.problem, s.in);
    } catch (const std::exception& e) {
      s.error = e.what();
    }
    slots.push_back(std::move(s));
  }
  const auto t0 = std::chrono::steady_clock::now();
  // warm-up, then rounds: every point gets a reference run and a kernel run per round, so
  // each point's samples spread over the whole gate and a load change touches all alike
  for (int r = -2; r < a.rounds; ++r)
    for (Slot& s : slots) {
      if (!s.error.empty()) continue;
      try {
        const double ref_ms = ref.run_cpu_ms();
        const double c0 = thread_cpu_ms();
        const double wall_ms = s.runner->run_once_ms();
        const double cpu_ms = thread_cpu_ms() - c0;
        if (r >= 0) {
          s.ref_ms.push_back(ref_ms);
          s.cpu_ms.push_back(cpu_ms);
          s.wall_ms.push_back(wall_ms);
        }
      } catch (const std::exception& e) {
        s.error = e.what();
      }
    }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  TimeRun now;
  now.fingerprint = fp;
  now.reference = ref.words();
  now.results.preset = "gate-time";
  now.results.environment = collect_environment(threads, c.cmdline);
  for (Slot& s : slots) {
    const Point& pt = *s.pt;
    Row r;
    r.kernel = pt.kernel->info().name;
    r.backend = pt.backend;
    r.problem = pt.problem;
    r.family = pt.kernel->info().family;
    r.flops = pt.kernel->flops(pt.problem);
    r.min_bytes = pt.kernel->min_bytes(pt.problem);
    r.repro = repro_command(pt, "--threads 1");
    if (s.error.empty()) {
      r.memory = s.runner->memory();
      r.warmup_runs = 2;
      TimeStats ts;
      static_cast<stats::Summary&>(ts) = stats::summarize(s.wall_ms);
      ts.samples = s.wall_ms;
      r.time = ts;
      if (ts.median > 0) r.gflops_per_s = r.flops / (ts.median * 1e-3) / 1e9;
      // no number without its verification: the output of the last sample against float64
      try {
        const Accuracy acc = check_accuracy(*pt.kernel, pt.problem, s.in, s.runner->output());
        r.correctness_rel_l2 = acc.correctness_rel_l2;
        r.correctness_rows = acc.correctness_rows;
      } catch (const std::exception& e) {
        r.memory_note = std::string("accuracy check failed: ") + e.what();
      }
      now.kernel_ms[row_key(r)] = s.cpu_ms;
      now.reference_ms[row_key(r)] = s.ref_ms;
    } else {
      r.status = "error";
      r.reason = s.error;
    }
    s.runner->teardown();
    now.results.rows.push_back(std::move(r));
  }
  fmt::print(stderr, "attnbench_gate time: {} points x {} rounds in {:.1f} s on {}\n", points.size(),
             a.rounds, secs, fp.words());
  if (!c.out.empty()) write_json(c.out, to_json(now));

  const std::string path = time_baseline_path(c.baselines, fp);
  std::optional<TimeRun> base;
  base = load_baseline<TimeRun>(path, c.update, time_run_from_json);
  TimeOptions to;
  to.min_effect = a.min_effect;
  to.alpha = a.alpha;
  if (c.update) {
    write_json(path, to_json(now));
    fmt::print(stderr, "attnbench_gate time: wrote the baseline {} ({} points)\n", path, points.size());
    if (base) {
      GateReport rep = compare_time(&*base, now, to);
      rep.baseline_path = path + " (replaced)";
      finish(c, rep, true);
    }
    return 0;
  }
  GateReport rep = compare_time(base ? &*base : nullptr, now, to);
  rep.baseline_path = path;
  return finish(c, rep, true);
}

int run_points() {
  auto show = [](const char* gate, const std::vector<Point>& pts) {
    fmt::print("{} gate ({} points):\n", gate, pts.size());
    for (const Point& p : pts) {
      fmt::print("  {} {} {}\n", p.kernel->info().name, backend_name(p.backend),
                 describe_point(p.problem));
    }
  };
  show("memory", memory_points());
  show("work", work_points());
  show("time", time_points());
  fmt::print("this machine: {} (key {})\n", this_machine(omp_get_max_threads()).words(),
             this_machine(omp_get_max_threads()).key());
  return 0;
}

void add_common(CLI::App* sub, Common& c) {
  sub->add_flag("--update", c.update, "measure and rewrite the stored baseline instead of gating");
  sub->add_option("--baselines", c.baselines, "baselines folder (default: results/baselines of the source tree)");
  sub->add_option("--out", c.out, "also write this run (baseline format) to FILE, e.g. for CI artifacts");
  sub->add_option("--report", c.report, "append the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY)");
  sub->add_flag("--all", c.all, "list every compared metric, not only the changes");
}

}  // namespace

int main(int argc, char** argv) {
  heap::install_interposer();  // the measured peak counts every heap byte of the process
  std::signal(SIGXFSZ, SIG_IGN);  // a file size limit fails a write (one line), not the process
  Common c;
  for (int i = 0; i < argc; ++i) c.cmdline += (i ? " " : "") + std::string(argv[i]);

  CLI::App app{"attnbench_gate: CI performance gates against the baselines in results/baselines"};
  app.require_subcommand(1);
  int memory_threads = 2;
  auto* mem = app.add_subcommand("memory", "workspace query and correctness error (exact), measured heap peak (16 kB allowance)");
  add_common(mem, c);
  mem->add_option("--threads", memory_threads,
                  "threads (the workspace holds per-thread scratch; default 2 on every machine)")
      ->check(CLI::Range(1, 1024));
  WorkArgs wa;
  auto* work = app.add_subcommand("work", "instructions of one run under callgrind (tolerance 2 %)");
  add_common(work, c);
  work->add_option("--driver", wa.driver, "the portable work driver (default: beside this tool)");
  work->add_option("--valgrind", wa.valgrind, "valgrind executable (default: valgrind on PATH)");
  work->add_option("--tolerance", wa.tolerance, "relative growth still accepted (default 0.02)")
      ->check(CLI::Range(0.0, 1.0));
  work->add_option("--keep", wa.keep, "keep callgrind's output files in this folder");
  TimeArgs ta;
  auto* time = app.add_subcommand("time", "one-thread CPU time / an interleaved sgemm; U test + minimum effect");
  add_common(time, c);
  time->add_option("--rounds", ta.rounds, "samples per point (default 25)")->check(CLI::Range(5, 100000));
  time->add_option("--min-effect", ta.min_effect, "least relative growth of the median that fails (default 0.15)")
      ->check(CLI::Range(0.0, 10.0));
  time->add_option("--alpha", ta.alpha, "significance of the Mann-Whitney U test (default 0.01)")
      ->check(CLI::Range(1e-9, 0.5));
  auto* pts = app.add_subcommand("points", "list the points each gate measures");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*mem) return run_memory(c, memory_threads);
    if (*work) return run_work(c, wa);
    if (*time) return run_time(c, ta);
    if (*pts) return run_points();
  } catch (const std::exception& e) {
    fmt::print(stderr, "attnbench_gate: error: {}\n", e.what());
    return 2;
  }
  return 2;
}
