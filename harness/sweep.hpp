// The sweep: a JSON description of axes and kernels (harness/sweeps/*.json), its expansion
// into points, and running each point on its backend with timing, memory and accuracy
// (design.md "Measurement rules", kernels.md section 5, results/README.md for the rows).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "results.hpp"

namespace attnbench {

struct Timing {
  int warmup = 1;           // untimed runs before the samples
  int min_reps = 5;         // at least this many samples ...
  double min_time_s = 0.1;  // ... and at least this much timed time
  int max_reps = 1000;      // never more samples than this
};
Timing default_timing(Backend b);

// Axes: the shape axes every kernel reads (problem.hpp, shape_axes()), and every method
// parameter some kernel of the registry declares (Registry::parameters()).

using AxisValues = std::vector<double>;  // causal: 1 / 0; precision: its Precision index

struct SweepGroup {
  std::string name;
  std::vector<std::string> kernels;  // names, or "all"
  std::vector<std::pair<std::string, AxisValues>> axes;
};

struct SweepSpec {
  std::string name = "custom";
  std::string description;
  std::string source;                        // the file it came from ("" = built in)
  std::vector<std::string> backends = {"all"};
  std::string vanilla_kernel = "vanilla_materialized";
  std::map<Backend, Timing> timing = {{Backend::cpu, default_timing(Backend::cpu)},
                                      {Backend::cuda, default_timing(Backend::cuda)}};
  double max_point_seconds = 60;             // 0 = no limit
  std::vector<SweepGroup> groups;            // at least one
};

// Default values of the shape axes a sweep does not set.
Problem default_shape();

// A sweep with no file: every kernel, one group, no axes (defaults everywhere).
SweepSpec builtin_sweep();
// Parses a sweep description; throws InvalidProblem("<name>: <problem>").
SweepSpec parse_sweep(const ojson& j, const std::string& name);
SweepSpec load_sweep_file(const std::string& path);
// harness/sweeps/<name>.json of the source tree.
std::string preset_path(const std::string& name);
std::vector<std::string> preset_names();

// "seq_len=512,1024" -> ("seq_len", {512, 1024}); throws InvalidProblem on an unknown axis or
// a bad value (negative, zero length, not a number).
std::pair<std::string, AxisValues> parse_axis_override(const std::string& text);
// Validates the values of one axis (same rules); `where` prefixes messages.
void check_axis_values(const std::string& axis, const AxisValues& v, const std::string& where);
// Replaces (or adds) the axis in every group.
void override_axis(SweepSpec& s, const std::string& axis, const AxisValues& values);
void override_kernels(SweepSpec& s, const std::vector<std::string>& kernels);

struct Point {
  const Kernel* kernel = nullptr;
  Backend backend = Backend::cpu;
  Problem problem;
  std::vector<std::string> shown_params;  // the ones worth printing (swept or not default)
  std::string group;
  std::string key() const;
  std::string describe() const;           // "lisa_base cpu b=1 h=1 N=512 dh=64 causal W=128"
};

// The backends a spec names that this build and machine can run ("all" = every available
// one). Throws InvalidProblem when a named backend is unavailable.
std::vector<Backend> resolve_backends(const std::vector<std::string>& names);

// Every point of the sweep, deduplicated, in run order: per group and backend, shape
// combinations, seq_len ascending, the vanilla kernel first at each point. Axes a kernel does
// not read are ignored for it. Throws InvalidProblem for an unknown kernel, or one that has no
// implementation on any of `backends`.
std::vector<Point> expand(const SweepSpec& s, const std::vector<Backend>& backends);

struct RunOptions {
  std::map<Backend, Timing> timing = {{Backend::cpu, default_timing(Backend::cpu)},
                                      {Backend::cuda, default_timing(Backend::cuda)}};
  double max_point_seconds = 60;     // 0 = no limit
  size_t host_memory_limit = 0;      // bytes; 0 = 80 % of physical memory
  size_t device_memory_limit = 0;    // bytes; 0 = 80 % of the device's memory
  int threads = 0;                   // cpu threads; 0 = every OpenMP thread
  bool cuda_warm = false;            // cuda: no L2 flush before the samples (--warm)
  // cpu: this machine's sgemm rate (GFLOP/s) behind the a-priori lower bound of a point's time
  // (flops / (2 x rate) per run); 0 = run_sweep measures it (when max_point_seconds > 0)
  double cpu_sgemm_gflops = 0;
  std::string repro_extra;           // appended to each row's repro after the timing flags
  const std::atomic<bool>* interrupted = nullptr;  // set from a signal handler: stop soon
};

// Host memory the harness itself needs for a point besides the backend's buffers: the
// host inputs, the copy of the output and the accuracy checks' float64 / equivalent inputs.
size_t harness_host_bytes(const Kernel& k, const Problem& p);
// Why a point must be skipped for memory ("needs 17.2 GB, limit 19.2 GB"), or nullopt.
std::optional<std::string> memory_skip_reason(const Kernel& k, const Problem& p, Backend b,
                                              const RunOptions& o);
// Extrapolated seconds for the whole point from the done points of the same kernel, backend
// and axes at smaller seq_len (vanilla: time ~ N^2; others: log-log slope of the two largest
// done points, at least 1, at most 3) plus the setup (linear in N) and the accuracy checks
// (O(N) per checked row), or nullopt without such a point. `basis` describes it.
std::optional<double> extrapolate_point_seconds(const Point& pt, const std::vector<Row>& done,
                                                const Timing& t, std::string* basis = nullptr);

// A quick sgemm rate (GFLOP/s) of this machine, erring high (best of all-threads and
// per-thread-parallel runs of a 384^3 product, at least 16 GFLOP/s per thread).
double measure_sgemm_gflops();
// The least time a cpu point can take at 2 x that rate, for the skip before the first run:
// (warmup + min_reps) x flops / (2 x rate). nullopt without a rate or a flop count.
std::optional<double> lower_bound_point_seconds(const Kernel& k, const Problem& p, const Timing& t,
                                                double sgemm_gflops);

// The rows checked for correctness (up to N = 2048 every row of the first and the last
// sequence, else 64 rows spread over up to 4 sequences, first and last position included) and
// for the approximation error (up to 256 rows over up to 4 sequences).
std::vector<RowId> correctness_rows(const Problem& p);
std::vector<RowId> approximation_rows(const Problem& p);

struct Accuracy {
  std::optional<double> correctness_rel_l2;
  int64_t correctness_rows = 0;
  std::optional<double> approx_rel_l2, approx_cosine;
  int64_t approx_rows = 0;
};
// Accuracy of `out` (the kernel's full output on `in`) per kernels.md section 5. The float64
// reference is the cpu twin's for every backend.
Accuracy check_accuracy(const Kernel& k, const Problem& p, const HostInputs& in,
                        const std::vector<float>& out);

// The attnbench command that reruns exactly this point (`extra_flags`: timing, threads).
std::string repro_command(const Point& pt, const std::string& extra_flags);

// "20G" / "20GiB" (binary), "20GB" / "1.5e9" (decimal), "123456" bytes. Throws InvalidProblem.
size_t parse_bytes(const std::string& text);

// Runs one point: skip checks, inputs, setup, warm-up, timed samples, measured memory,
// accuracy. Never throws for a failing point: the row says skipped or error.
Row run_point(const Point& pt, const RunOptions& o, const std::vector<Row>& done,
              BackendRunner& runner);

struct SweepProgress {
  size_t index = 0;   // 0-based index of the point about to run
  size_t total = 0;   // points to run in this invocation
  const Point* point = nullptr;
  const Row* finished = nullptr;  // the row just finished (null when starting a point)
  double elapsed_s = 0;
  double eta_s = -1;  // < 0: unknown
};

// Runs every point of `points` not already in `file` (rows with status ok or skipped are
// kept; an error row is run again and replaced), appending rows to `file` and, when
// `out_path` is not empty, rewriting it atomically after each row. Returns the number of
// points run.
size_t run_sweep(const std::vector<Point>& points, const RunOptions& o, ResultsFile& file,
                 const std::string& out_path,
                 const std::function<void(const SweepProgress&)>& progress = {});

// The final table of a results file (fmt): kernel, backend, point, median ms, peak MB,
// speedup and memory ratio vs vanilla, correctness, approximation error, status.
std::string results_table(const ResultsFile& f);

}  // namespace attnbench
