// The results file of `attnbench sweep` (schema documented in results/README.md): typed rows,
// JSON in and out, and the atomic rewrite that keeps a file readable however a sweep ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnbench/problem.hpp"
#include "backend.hpp"
#include "stats.hpp"

namespace attnbench {

using ojson = nlohmann::ordered_json;

// 2: precision, seed, family, noise and contention, GPU timing method and memory fields, the
// expanded sweep (results/schema.json). Files of version 1 are still read.
constexpr int kSchemaVersion = 2;

// A later invocation that continued the file (--resume) and what it changed (--extend).
struct ResumeRecord {
  std::string date;
  std::string command_line;
  std::string change;  // "" for a plain resume; what --extend added, in words
};

struct Environment {
  std::string host;
  std::string cpu_model;
  int cpu_cores = 0;         // logical CPUs
  int threads_used = 0;
  size_t memory_bytes = 0;   // physical RAM (or the cgroup limit)
  std::optional<GpuInfo> gpu;
  std::string compiler, cxx_flags, build_type, blas, cuda_compiler;
  std::string git_commit;
  bool git_dirty = false;
  std::string date;          // ISO 8601 UTC
  std::string command_line;
  ojson calibration;         // null, or `attnbench calibrate` figures (kept as read)
  std::vector<ResumeRecord> resumes;  // each `--resume` that continued this file
  std::string omp_wait_policy;        // how idle OpenMP threads wait (OMP_WAIT_POLICY as set)
  std::optional<double> load_average; // 1-minute load average when the sweep started
  std::string cuda_cache_policy;      // "cold" (L2 flushed before every sample) or "warm"
};

// collect_environment (sysinfo.hpp) fills one for this machine and build.

struct TimeStats : stats::Summary {
  std::vector<double> samples;  // every timed run, ms, in the order they ran
};

struct VsVanilla {
  double speedup = 0;       // vanilla median time / this median time
  double memory_ratio = 0;  // vanilla peak_bytes / this peak_bytes
};

// One phase of a kernel's profiling run (attnbench/phases.hpp): wall-equivalent ms, the
// phase's share of the profiled total, its work, and (cpu rows with a calibration) its
// achieved percentage of the ceiling that binds it.
struct PhaseRow {
  std::string name;
  double ms = 0;
  double share = 0;   // ms / sum of the phases' ms
  double flops = 0;
  double bytes = 0;
  std::string bound;  // compute | memory | "" (no work counted, or no calibration)
  std::optional<double> pct_of_peak;
};

// How far a row's samples can be trusted: their spread and what else ran meanwhile
// (docs/measurement.md, "Noise and contention").
struct NoiseFigures {
  double rsd = 0;                  // sample standard deviation / mean
  double iqr_over_median = 0;      // (p75 - p25) / median
  int64_t involuntary_switches = 0;  // context switches forced on the process (getrusage)
  double load_before = 0;          // 1-minute load average before and after the samples
  double load_after = 0;
  int retries = 0;                 // re-measurements because the row was noisy or contended
};

struct Row {
  std::string kernel;
  Backend backend = Backend::cpu;
  std::string family;               // the kernel's family (KernelInfo::family)
  Problem problem;                  // the point: shape axes and the kernel's parameters
  std::string status = "ok";        // ok | skipped | error
  std::string reason;
  std::optional<TimeStats> time;
  int warmup_runs = 0;
  std::string timing_method;        // steady_clock | cuda_events | cuda_graph
  std::string cache;                // cold | warm: the caches' state before each sample
  std::optional<double> launch_overhead_ms;  // cuda: host launch cost kept out of `time`
  std::string reduced_timing;       // why fewer samples than the plan, "" when none
  std::optional<NoiseFigures> noise;
  bool noisy = false;               // noise or contention above the documented thresholds
  std::vector<std::string> warnings;  // each reason a figure here is less than trustworthy
  MemoryFigures memory;
  std::optional<size_t> measured_peak_bytes;
  std::string measured_peak_source;  // "heap", "counting_allocator", "cuda_pool" or ""
  std::optional<bool> memory_agrees;
  std::optional<size_t> measured_device_bytes;  // cuda: device memory in use around the call
  std::string memory_note;           // why measured and peak differ, when they do
  std::optional<double> correctness_rel_l2;
  int64_t correctness_rows = 0;
  std::optional<double> correctness_tolerance;  // correctness_tolerance(precision, N)
  std::optional<double> approx_rel_l2, approx_cosine;
  int64_t approx_rows = 0;
  double flops = 0;
  std::optional<double> gflops_per_s;
  double min_bytes = 0;
  // cpu rows with a calibration (environment.calibration): which ceiling binds (compute or
  // memory), the floor time max(flops / sgemm rate, min_bytes / bandwidth) and the achieved
  // percentage of the binding ceiling (calibrate.hpp, roofline).
  std::string roofline_bound;
  std::optional<double> floor_ms, pct_of_peak;
  std::optional<VsVanilla> vs_vanilla;
  // Kernels that time their phases: one extra, untimed run with a PhaseProfile (empty
  // otherwise). `profile_ms` is that run's wall time, for comparison with the phases' sum.
  std::vector<PhaseRow> phases;
  std::optional<double> profile_ms;
  double point_seconds = 0;          // wall time of the whole point (setup, runs, checks)
  double check_seconds = 0;          // of which the accuracy checks
  std::string repro;
};

struct ResultsFile {
  int schema_version = kSchemaVersion;
  std::string tool = "attnbench";
  std::string preset;
  std::string vanilla_kernel = "vanilla_materialized";
  ojson sweep;        // the expanded sweep the file was started with (null: not recorded)
  std::string shard;  // "I/N" when the file holds one shard of the sweep, "" otherwise
  Environment environment;
  std::vector<Row> rows;
};

// The axes object of a row: the shape axes (problem.hpp), then the problem's method parameters.
ojson axes_json(const Problem& p);
// One axis value as an axes object writes it: causal a boolean, precision its name, integers
// without a decimal point.
ojson axis_value_json(const std::string& name, double v);
// One axis value of an axes object or a sweep file as a number (causal: true/false or
// "causal"/"bidirectional"; precision: its name); throws InvalidProblem naming `where`.
double axis_value_from_json(const std::string& name, const ojson& v, const std::string& where);
// Parses an axes object into a problem: unlisted shape axes keep Problem's defaults
// (precision fp32, seed 1234, as files written before those axes existed imply), every other
// name is a method parameter. Throws InvalidProblem naming `where`.
Problem problem_from_axes(const ojson& axes, const std::string& where);

// describe() with the method parameters that are not 0 (0 often means "off" or "derived").
std::string describe_point(const Problem& p);

// Identity of a row for --resume and compare: kernel, backend and the axes.
std::string row_key(const Row& r);
std::string point_key(const std::string& kernel, Backend b, const Problem& p);

ojson to_json(const Row& r);
ojson to_json(const NoiseFigures& n);
ojson to_json(const GpuInfo& g);
NoiseFigures noise_from_json(const ojson& j, const std::string& where);
GpuInfo gpu_info_from_json(const ojson& j, const std::string& where);
ojson to_json(const Environment& e);
ojson to_json(const ResultsFile& f);
Row row_from_json(const ojson& j, const std::string& where);
Environment environment_from_json(const ojson& j, const std::string& where);
ResultsFile results_from_json(const ojson& j, const std::string& name);

// Reads a results file; throws InvalidProblem("<path>: <problem>").
ResultsFile read_results(const std::string& path);
// Writes `path` atomically (a temporary file in the same folder, then rename).
void write_results(const std::string& path, const ResultsFile& f);
// The same for a file that must not exist yet (write_text_new): throws when it does.
void create_results(const std::string& path, const ResultsFile& f);
void write_text_atomic(const std::string& path, const std::string& text);
// Creates `path` atomically with `text`; throws InvalidProblem when it exists already (it is
// never replaced, not even by a file written meanwhile).
void write_text_new(const std::string& path, const std::string& text);

// vs_vanilla of every row, against the ok row of `vanilla_kernel` with the same backend,
// batch, heads, seq_len, head_dim and causal (null where there is none).
void fill_vs_vanilla(ResultsFile& f);

// "17.2 GB", "3.4 MB", "512 B" (decimal units).
std::string format_bytes(double bytes);

}  // namespace attnbench
