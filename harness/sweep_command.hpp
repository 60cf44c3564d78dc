// `attnbench sweep` as named steps: the command line (parsed by harness/cli/attnbench.cpp into
// SweepArgs) becomes a sweep spec, run options, the points of this shard, a started results
// file (environment, calibration), the sweep with its progress on stderr, and a summary.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sweep.hpp"

namespace attnbench {

struct SweepArgs {
  std::string preset, sweep_file, kernels, backend, out, resume, memory_limit, vanilla, shard;
  std::vector<std::string> axes;
  std::optional<double> min_time, max_point_seconds;
  std::optional<int> min_reps, max_reps, warmup, threads;
  std::optional<int> retries;       // re-measurements of a noisy point (noise.hpp)
  std::optional<double> max_noise;  // timing loop: stop once the samples' rsd is at most this
  bool dry_run = false, quiet = false, no_calibrate = false;
  bool warm = false;  // cuda: keep L2 warm between samples (no flush)
  bool json = false;  // with dry_run: the plan as JSON (peers/)
  bool force = false;  // replace an existing --out file
  bool extend = false;  // with --resume: options may change the stored sweep (recorded)
  std::optional<double> wait;  // seconds to wait for another writer's lock (default 0)
};

// The sweep a new run asks for: --preset, --sweep or the built-in sweep, then the options
// that change it (apply_overrides). Throws InvalidProblem.
SweepSpec assemble_spec(const SweepArgs& a);
// --kernels, --axis, --backend, --vanilla, --min-time, --min-reps, --max-reps, --warmup,
// --max-point-seconds, --memory-limit, --threads and --warm, applied to `spec`. Throws
// InvalidProblem for values out of range.
void apply_overrides(SweepSpec& spec, const SweepArgs& a);

// What `--resume FILE` runs: the sweep FILE stores (its `sweep`; never a preset re-read by
// name), its backends resolved. An option that would change it is refused, naming the option,
// unless --extend: then the sweep is extended_sweep(stored, asked) and `change` says what
// changed in words. Throws InvalidProblem (one line naming FILE), also for a file that stores
// no sweep, and for --extend of a shard's file (the shards would be dealt anew).
struct ResumePlan {
  SweepSpec spec;
  std::string change;  // "" when the stored sweep runs unchanged
};
ResumePlan resume_plan(const SweepArgs& a, const ResultsFile& file);

// Run options from the spec: its timing, time limit, memory limit and L2 policy, and the
// threads the sweep runs with.
RunOptions run_options(const SweepArgs& a, const SweepSpec& spec, int threads);
// The spec as it runs, which the results file records: the backends resolved, the timing and
// time limit of the run options.
SweepSpec expanded_spec(SweepSpec spec, const std::vector<Backend>& backends, const RunOptions& o);
// The points of this invocation: the expansion, cut to --shard. Throws InvalidProblem for an
// unknown vanilla kernel or no backend.
std::vector<Point> points_to_run(const SweepSpec& spec, const std::vector<Backend>& backends,
                                 const Shard& shard);

// results/<date>-<host>-<preset>.json of the source tree, numbered when it exists.
std::string default_out_path(const std::string& preset);
// --out, else the resumed file, else the default path.
std::string output_path(const SweepArgs& a, const std::string& preset);

// --shard, else a resumed file's shard, else the whole sweep.
Shard sweep_shard(const SweepArgs& a, const ResultsFile& resumed);

// A new results file (preset, vanilla kernel, the expanded sweep, shard, environment), or the
// resumed one continued: its shard must be this one; the invocation is recorded in its
// resumes with `change` (resume_plan), which also replaces the stored sweep by `expanded`;
// a warning on stderr when it runs on another machine.
void start_results_file(ResultsFile& file, const SweepArgs& a, const SweepSpec& expanded,
                        const Shard& shard, int threads, const std::string& cmdline,
                        const std::string& change = "");
// The ceilings every row's pct_of_peak is read against, measured once per results file
// (unless --no-calibrate): the cpu's, whose sgemm rate also feeds the lower bound of a point's
// time, and the GPU's (a failure there is a warning: cuda rows then carry no roofline).
void calibrate_for_sweep(ResultsFile& file, RunOptions& o, const std::vector<Backend>& backends,
                         const SweepArgs& a);
// cuda: the L2 policy of the samples (cold, or warm with --warm) in the environment, with a
// warning when a resumed file was measured with the other one.
void record_cache_policy(ResultsFile& file, const std::vector<Backend>& backends, bool warm,
                         const std::string& out);

// SIGINT and SIGTERM set the returned flag (the sweep stops after the point); a second one
// ends the process at once.
const std::atomic<bool>* install_interrupt_handlers();
// Progress on stderr: a bar on a terminal, one line per point otherwise; nothing with --quiet.
std::function<void(const SweepProgress&)> progress_printer(bool quiet);
// "N rows (a ok, b skipped, c errors), k run now in s; results: FILE".
std::string sweep_summary(const ResultsFile& f, size_t ran, double seconds, const std::string& out);

// The whole command; the exit status (130 when interrupted).
int run_sweep_command(const SweepArgs& a, const std::string& cmdline);

}  // namespace attnbench
