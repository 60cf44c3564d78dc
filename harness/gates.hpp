// The CI performance gates (docs/measurement.md section 8): each compares a run against a
// stored baseline under results/baselines/ and says, per point and metric, whether it regressed.
//
//   memory  deterministic: the workspace query (inputs + outputs + prepared + scratch bytes)
//           and the correctness error against float64 must not grow (exact comparison, no
//           noise allowance); the measured heap peak must not grow beyond the allocator's
//           granularity (16 kB, see MemoryOptions).
//   work    deterministic: instructions executed by one kernel run under callgrind (portable
//           build, one thread); a small relative tolerance (2 %).
//   time    statistical: kernel CPU time on one thread divided by the median of an sgemm
//           reference timed in the same run, interleaved with the samples; Mann-Whitney U
//           test plus a minimum effect (+15 % on the median). A missing baseline for this
//           hardware is a warning.
//
// Everything here is a pure function of results (plus the file I/O of baselines), so the
// decisions are unit-tested on crafted runs (tests/test_gates.cpp). Measuring is the job of
// harness/gates_{memory,work,time}.cpp (gates_run.hpp) and bench/work/work_driver.cpp.
// Baselines are results files (results/README.md) with a "gate" object added at the top
// level; results/baselines/README.md documents them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "results.hpp"

namespace attnbench::gates {

constexpr int kGateSchemaVersion = 1;

// ---- hardware fingerprint --------------------------------------------------------------------

// What makes a deterministic number (floating-point error, heap peak) or a time ratio
// machine-specific: the CPU, the instruction sets that change the code the compiler and
// OpenBLAS pick, and the threads the gate runs with.
struct Fingerprint {
  std::string cpu_model;
  std::string isa_level;              // "x86-64-v4", "x86-64-v3", ... or the flags' architecture
  std::vector<std::string> isa_extras;  // short names beyond the level: bf16, fp16, vnni, ...
  int threads = 0;
  // File-name slug: "amd-epyc_x86-64-v4-bf16-vnni_2t".
  std::string key() const;
  std::string words() const;  // "AMD EPYC, x86-64-v4 +bf16 +vnni, 2 threads"
  bool operator==(const Fingerprint&) const = default;
};

// From the text of /proc/cpuinfo (first "model name" and "flags"/"Features" lines).
Fingerprint fingerprint_from_cpuinfo(const std::string& cpuinfo, int threads);
// This machine (reads /proc/cpuinfo).
Fingerprint this_machine(int threads);
ojson to_json(const Fingerprint& f);
Fingerprint fingerprint_from_json(const ojson& j);

// ---- the outcome of a gate -------------------------------------------------------------------

enum class Verdict {
  same,       // no change
  within,     // changed, but within the gate's allowance (work tolerance, time noise)
  improved,   // better beyond the allowance: passes; --update locks it in
  added,      // in this run, not in the baseline: not gated until --update
  regressed,  // fails the gate
  removed,    // in the baseline, not run now: fails the gate
};
const char* verdict_name(Verdict v);
bool is_failure(Verdict v);

struct Finding {
  std::string point;   // "lisa_base cpu b=1 h=1 N=1024 dh=64 causal B=8 W=128"
  std::string metric;  // "scratch_bytes", "instructions", "time / sgemm"
  std::string base, now, change;  // formatted for the table
  Verdict verdict = Verdict::same;
  std::string note;
};

struct GateReport {
  std::string gate;             // "memory", "work", "time"
  std::string title;            // "memory and accuracy (exact)"
  std::string baseline_path;    // where the baseline came from ("" = none)
  bool baseline_missing = false;
  size_t points = 0;            // points measured in this run
  std::vector<Finding> findings;
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
  size_t regressions() const;
  bool failed() const { return regressions() > 0; }
};

// A Markdown section: a status line, warnings and notes, then a table of the findings that
// changed (every finding with `all`). Printed by the gate tool and pasted into CI summaries.
std::string markdown(const GateReport& r, bool all = false);

// ---- the memory and accuracy gate ------------------------------------------------------------

struct MemoryRun {
  ResultsFile results;       // one row per point (status, memory figures, correctness)
  Fingerprint fingerprint;
};

// What the comparison covers: the workspace query is a pure function of the problem and the
// thread count, so it is compared against any baseline; the measured heap peak and the
// floating-point error depend on the hardware and are compared only against a baseline made
// on the same fingerprint.
enum class MemoryScope { query_only, full };

struct MemoryOptions {
  // The measured heap high-water mark is not reproducible to the byte: glibc hands out a
  // block up to 31 bytes larger than asked depending on the heap's layout (which the length
  // of the command line already moves), and libgomp and OpenBLAS allocate a few hundred bytes
  // of bookkeeping whose timing depends on the threads; once in a while a 4 kB runtime buffer
  // falls inside or outside a point. So the measured peak may grow by this much; every figure
  // of the workspace query and the correctness error are compared exactly.
  uint64_t measured_slack_bytes = 16 * 1024;
};

GateReport compare_memory(const MemoryRun& base, const MemoryRun& now, MemoryScope scope,
                          const MemoryOptions& o = {});

// ---- the work gate ---------------------------------------------------------------------------

struct WorkRun {
  ResultsFile results;                          // one row per point (status, memory figures)
  std::map<std::string, double> instructions;   // row_key -> instructions of one run
  Fingerprint fingerprint;
  ojson tool;                                   // valgrind version, OPENBLAS_CORETYPE, flags
};

struct WorkOptions {
  double tolerance = 0.02;  // relative change in instructions that is still noise
};

GateReport compare_work(const WorkRun& base, const WorkRun& now, const WorkOptions& o = {});

// One callgrind dump file: the label of the client request that triggered it ("" for the
// final dump) and the total instruction count (the "totals:" or "summary:" line).
struct CallgrindDump {
  std::string trigger;
  uint64_t instructions = 0;
};
// Throws InvalidProblem when the text has no totals / summary line.
CallgrindDump parse_callgrind_dump(const std::string& text);

// ---- the time gate ---------------------------------------------------------------------------

// The gate times one thread by its CPU time (CLOCK_THREAD_CPUTIME_ID): on a shared machine
// the wall time of a run also holds the time the thread waited for a core, which grows with
// the run's length and so does not cancel in the ratio to a short reference.
struct TimeRun {
  ResultsFile results;  // one row per point; `time` = the runner's wall-clock samples (shown)
  std::map<std::string, std::vector<double>> kernel_ms;     // row_key -> CPU ms per sample
  std::map<std::string, std::vector<double>> reference_ms;  // row_key -> sgemm CPU ms beside them
  Fingerprint fingerprint;
  std::string reference;  // what the reference is, in words
};

struct TimeOptions {
  double min_effect = 0.15;  // the median normalised time must grow by more than this ...
  double alpha = 0.01;       // ... and the Mann-Whitney U test be significant at alpha
};

// Kernel samples divided by the median of the reference samples measured beside them.
std::vector<double> normalized_samples(const std::vector<double>& kernel_ms,
                                       const std::vector<double>& reference_ms);

// `base` null: no baseline for this hardware; the report warns and fails nothing.
GateReport compare_time(const TimeRun* base, const TimeRun& now, const TimeOptions& o = {});

// ---- baseline files --------------------------------------------------------------------------

// results/baselines/memory/<fingerprint>.json, results/baselines/work.json,
// results/baselines/time/<fingerprint>.json under `dir`.
std::string memory_baseline_path(const std::string& dir, const Fingerprint& f);
std::string work_baseline_path(const std::string& dir);
std::string time_baseline_path(const std::string& dir, const Fingerprint& f);

// A results file (to_json(ResultsFile)) with a "gate" object: name, schema_version,
// fingerprint and the gate's own data.
ojson to_json(const MemoryRun& r);
ojson to_json(const WorkRun& r);
ojson to_json(const TimeRun& r);
MemoryRun memory_run_from_json(const ojson& j, const std::string& where);
WorkRun work_run_from_json(const ojson& j, const std::string& where);
TimeRun time_run_from_json(const ojson& j, const std::string& where);

// Reads a JSON file; throws InvalidProblem("<path>: ...").
ojson read_json_file(const std::string& path);

}  // namespace attnbench::gates
