// The sweep specification: a JSON description of axes and kernels (harness/sweeps/*.json),
// its command-line overrides, its expansion into points, the shards of those points, and the
// command that reruns one point (results/README.md "Sweep files").
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "results.hpp"
#include "text.hpp"

namespace attnbench {

struct Timing {
  int warmup = 1;           // untimed runs before the samples
  int min_reps = 5;         // at least this many samples ...
  double min_time_s = 0.1;  // ... and at least this much timed time
  int max_reps = 1000;      // never more samples than this
};
Timing default_timing(Backend b);
// What the timing fields and the time limit accept, in a sweep file and on the command line.
inline const IntRange kWarmupRange{0, 1000000};
inline const IntRange kRepsRange{1, 1000000};            // min_reps and max_reps
inline const RealRange kMinTimeRange{0, 86400};          // seconds: up to a day per point
inline const RealRange kPointSecondsRange{0, 604800};    // max_point_seconds: up to a week
ojson to_json(const Timing& t);

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
  // How the points run, as given (--threads, --memory-limit, --warm), so that --resume
  // replays them: cpu threads (0 = every core), the memory limit in bytes for host and device
  // (0 = 80 % of each one's memory), and cuda's L2 between samples (file key "cuda_cache":
  // "cold", flushed, or "warm").
  int threads = 0;
  size_t memory_limit = 0;
  bool cuda_warm = false;
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

// The spec as a sweep file (name, description, backends, vanilla_kernel, timing per backend,
// max_point_seconds, threads, memory_limit, cuda_cache, groups with their kernels and axes):
// what a results file records as its `sweep`. parse_sweep reads it back to the same spec
// (`source` aside).
ojson to_json(const SweepSpec& s);

// ---- comparing sweeps (sweep --resume, --extend) ----
// The two specs run the same points the same way: everything but name, description and
// source is equal (backends compared as written: resolve them first).
bool same_sweep(const SweepSpec& a, const SweepSpec& b);
// What `asked` changes in `stored`, in words: "axis seq_len += 4096; kernels += hydra;
// backends += cuda; timing cpu min_time_s 0.005 -> 0.1; ..." ("" when nothing does).
std::string describe_change(const SweepSpec& stored, const SweepSpec& asked);
// `stored` extended by `asked`: asked's groups that stored lacks are added (renamed when their
// name is taken), so every point of either runs; the backends are joined; the vanilla kernel,
// timing, time limit, threads, memory limit and L2 policy become asked's.
SweepSpec extended_sweep(const SweepSpec& stored, const SweepSpec& asked);

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

// Shard `index` of `count` (1 <= index <= count); count 0 = the whole sweep.
struct Shard {
  int index = 0;
  int count = 0;
  bool whole() const { return count == 0; }
  std::string text() const;  // "2/4", "" for the whole sweep
};
// "2/4" -> {2, 4}; throws InvalidProblem (one line naming --shard) for anything else.
Shard parse_shard(const std::string& text);
// The points of one shard, in run order. The points are cut into ladders (the same kernel,
// backend and axes but seq_len: the points the time limit extrapolates from one another), and
// the ladders are dealt to the shards, the costliest first (by FLOP count), each to the shard
// with the least so far: a pure function of the points, so every point is in exactly one
// shard of a given count.
std::vector<Point> shard_points(const std::vector<Point>& points, const Shard& shard);

// The attnbench command that reruns exactly this point (`extra_flags`: timing, threads).
std::string repro_command(const Point& pt, const std::string& extra_flags);

}  // namespace attnbench
