// harness/gates: the CI performance gates' decisions on crafted runs (docs/measurement.md
// section 8). Nothing here measures anything: the runs are built by hand, so the tests
// assert behaviour, not timings.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "gates.hpp"

using namespace attnbench;
using namespace attnbench::gates;

namespace {

Fingerprint machine(int threads = 2) {
  Fingerprint f;
  f.cpu_model = "Test CPU 9000";
  f.isa_level = "x86-64-v3";
  f.threads = threads;
  return f;
}

Row point(const std::string& kernel, int64_t n, bool causal = true) {
  Row r;
  r.kernel = kernel;
  r.backend = Backend::cpu;
  r.problem.seq_len = n;
  r.problem.causal = causal;
  if (kernel.rfind("lisa", 0) == 0) r.problem.set_param("codebooks", 8).set_param("codewords", 16);
  r.status = "ok";
  return r;
}

Row memory_row(const std::string& kernel, int64_t n, size_t scratch, size_t measured, double err) {
  Row r = point(kernel, n);
  r.memory.inputs_bytes = size_t(3 * n * 64 * 4);
  r.memory.outputs_bytes = size_t(n * 64 * 4);
  r.memory.prepared_bytes = 4096;
  r.memory.scratch_bytes = scratch;
  r.measured_peak_bytes = measured;
  r.measured_peak_source = "heap";
  r.correctness_rel_l2 = err;
  return r;
}

MemoryRun memory_run(std::vector<Row> rows, int threads = 2) {
  MemoryRun m;
  m.fingerprint = machine(threads);
  m.results.rows = std::move(rows);
  return m;
}

MemoryRun memory_baseline() {
  return memory_run({memory_row("lisa_base", 1024, 65536, 1200000, 2.5e-7),
                     memory_row("vanilla_materialized", 1024, 4194304, 5200000, 1.25e-7)});
}

bool has_failure(const GateReport& r, const std::string& metric) {
  for (const auto& f : r.findings)
    if (f.metric == metric && is_failure(f.verdict)) return true;
  return false;
}

// Deterministic jitter in [-amp, +amp] (a fixed pseudo-random sequence, no clock involved).
std::vector<double> jittered(double centre, size_t n, double amp, uint64_t seed) {
  std::vector<double> v;
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const double u = double(x % 100001) / 100000.0;  // [0, 1]
    v.push_back(centre * (1.0 + amp * (2.0 * u - 1.0)));
  }
  return v;
}

TimeRun time_run(const std::vector<std::pair<std::string, double>>& kernel_ms, double ref_ms,
                 double scale, uint64_t seed, double jitter = 0.03) {
  TimeRun t;
  t.fingerprint = machine(1);
  t.reference = "sgemm 384^3 on 1 thread";
  uint64_t s = seed;
  for (const auto& [name, ms] : kernel_ms) {
    Row r = point(name, 2048);
    t.kernel_ms[row_key(r)] = jittered(ms * scale, 25, jitter, ++s);
    t.reference_ms[row_key(r)] = jittered(ref_ms * scale, 25, jitter, s + 1000);
    t.results.rows.push_back(r);
  }
  return t;
}

const std::vector<std::pair<std::string, double>> kTimes = {
    {"lisa_base", 4.0}, {"vanilla_flash", 9.0}, {"performer", 2.5}};

}  // namespace

// ---- memory and accuracy ---------------------------------------------------------------------

TEST_CASE("memory gate: identical runs pass with no change", "[gates][memory]") {
  const GateReport r = compare_memory(memory_baseline(), memory_baseline(), MemoryScope::full);
  CHECK_FALSE(r.failed());
  for (const auto& f : r.findings) CHECK(f.verdict == Verdict::same);
  CHECK(markdown(r).find("No change beyond the tolerance") != std::string::npos);
}

TEST_CASE("memory gate: a grown workspace fails, to the byte", "[gates][memory]") {
  MemoryRun now = memory_baseline();
  now.results.rows[0].memory.scratch_bytes += 64;  // one cache line more
  const GateReport r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(r.failed());
  CHECK(has_failure(r, "scratch_bytes"));
  CHECK(has_failure(r, "peak_bytes"));
  const std::string md = markdown(r);
  CHECK(md.find("FAIL") != std::string::npos);
  CHECK(md.find("| lisa_base cpu") != std::string::npos);
  CHECK(md.find("+64 B") != std::string::npos);
}

TEST_CASE("memory gate: a doubled workspace fails even when only the query is compared",
          "[gates][memory]") {
  MemoryRun now = memory_baseline();
  now.results.rows[0].memory.scratch_bytes *= 2;
  now.results.rows[0].measured_peak_bytes = 1;  // another machine's heap: not compared
  now.results.rows[0].correctness_rel_l2 = 1.0;
  const GateReport r = compare_memory(memory_baseline(), now, MemoryScope::query_only);
  CHECK(r.failed());
  CHECK(has_failure(r, "scratch_bytes"));
  CHECK_FALSE(has_failure(r, "measured_peak_bytes"));
  CHECK_FALSE(has_failure(r, "correctness_rel_l2"));
}

TEST_CASE("memory gate: a grown measured peak fails beyond the allocator's granularity",
          "[gates][memory]") {
  MemoryRun now = memory_baseline();
  *now.results.rows[1].measured_peak_bytes += 512 * 1024;  // e.g. a buffer behind the harness's back
  GateReport r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(r.regressions() == 1);
  CHECK(has_failure(r, "measured_peak_bytes"));
  // allocator rounding and runtime bookkeeping (tens to a few thousand bytes) pass
  now = memory_baseline();
  *now.results.rows[1].measured_peak_bytes += 200;
  *now.results.rows[0].measured_peak_bytes -= 4024;
  r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK_FALSE(r.failed());
  MemoryOptions strict;
  strict.measured_slack_bytes = 0;
  CHECK(compare_memory(memory_baseline(), now, MemoryScope::full, strict).failed());
}

TEST_CASE("memory gate: a worse error fails, with no noise allowance", "[gates][memory]") {
  MemoryRun now = memory_baseline();
  now.results.rows[0].correctness_rel_l2 = std::nextafter(2.5e-7, 1.0);  // one ulp worse
  GateReport r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(has_failure(r, "correctness_rel_l2"));
  // the table shows the two values with enough digits to tell them apart
  const std::string md = markdown(r);
  CHECK(md.find("2.50000000000000") != std::string::npos);

  now.results.rows[0].correctness_rel_l2 = std::nan("");
  r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(has_failure(r, "correctness_rel_l2"));
}

TEST_CASE("memory gate: smaller figures pass as improvements", "[gates][memory]") {
  MemoryRun now = memory_baseline();
  now.results.rows[0].memory.scratch_bytes /= 2;
  now.results.rows[0].correctness_rel_l2 = 1e-7;
  const GateReport r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK_FALSE(r.failed());
  size_t improved = 0;
  for (const auto& f : r.findings) improved += f.verdict == Verdict::improved;
  CHECK(improved >= 3);  // scratch, peak, error
}

TEST_CASE("memory gate: a point that stopped running or vanished fails, and a new one does not",
          "[gates][memory]") {
  MemoryRun now = memory_baseline();
  now.results.rows[0].status = "error";
  now.results.rows[0].reason = "the kernel left 5 of 65536 output elements unwritten";
  GateReport r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(has_failure(r, "status"));

  now = memory_baseline();
  now.results.rows.pop_back();
  now.results.rows.push_back(memory_row("performer", 512, 100, 100, 1e-7));
  r = compare_memory(memory_baseline(), now, MemoryScope::full);
  CHECK(r.regressions() == 1);  // vanilla_materialized is missing
  bool added = false;
  for (const auto& f : r.findings) added = added || f.verdict == Verdict::added;
  CHECK(added);
}

// ---- work ------------------------------------------------------------------------------------

namespace {
WorkRun work_run(double lisa, double vanilla) {
  WorkRun w;
  w.fingerprint = machine(1);
  w.tool = {{"valgrind", "valgrind-3.19.0"}, {"OPENBLAS_CORETYPE", "Haswell"}};
  for (auto [name, count] : {std::pair<const char*, double>{"lisa_base", lisa}, {"vanilla_flash", vanilla}}) {
    Row r = point(name, 1024);
    w.instructions[row_key(r)] = count;
    w.results.rows.push_back(r);
  }
  return w;
}
}  // namespace

TEST_CASE("work gate: within the tolerance passes, beyond it fails", "[gates][work]") {
  const WorkRun base = work_run(50'000'000, 80'000'000);
  CHECK_FALSE(compare_work(base, base).failed());
  CHECK_FALSE(compare_work(base, work_run(50'900'000, 79'000'000)).failed());  // +1.8 %, -1.3 %
  const GateReport r = compare_work(base, work_run(100'000'000, 80'000'000));   // doubled
  CHECK(r.regressions() == 1);
  CHECK(markdown(r, true).find("+100.00 %") != std::string::npos);
  CHECK(compare_work(base, work_run(51'500'000, 80'000'000)).failed());       // +3 %
  WorkOptions loose;
  loose.tolerance = 0.05;
  CHECK_FALSE(compare_work(base, work_run(51'500'000, 80'000'000), loose).failed());
}

TEST_CASE("work gate: a point without a count fails", "[gates][work]") {
  const WorkRun base = work_run(50'000'000, 80'000'000);
  WorkRun now = base;
  now.instructions.erase(row_key(now.results.rows[0]));
  now.results.rows[0].status = "error";
  CHECK(compare_work(base, now).failed());
}

TEST_CASE("callgrind dumps: trigger and totals", "[gates][work]") {
  const std::string dump =
      "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 4242\ncmd:  driver p.json\n"
      "part: 2\n\ndesc: I1 cache: \ndesc: Timerange: Basic block 100 - 200\n"
      "desc: Trigger: Client Request: attnbench:p3\n\npositions: line\nevents: Ir\n"
      "summary: 123456789\n\n\nfl= (1)\nfn= (1)\n0 5\ntotals: 123456789\n";
  const CallgrindDump d = parse_callgrind_dump(dump);
  CHECK(d.trigger == "attnbench:p3");
  CHECK(d.instructions == 123456789u);
  CHECK_THROWS_AS(parse_callgrind_dump("version: 1\n"), InvalidProblem);
}

// ---- time ------------------------------------------------------------------------------------

TEST_CASE("time gate: identical and noise-level runs pass", "[gates][time]") {
  const TimeRun base = time_run(kTimes, 1.2, 1.0, 1);
  CHECK_FALSE(compare_time(&base, base).failed());
  const TimeRun noisy = time_run(kTimes, 1.2, 1.0, 77);  // other +-3 % jitter
  const GateReport r = compare_time(&base, noisy);
  CHECK_FALSE(r.failed());
  CHECK(r.findings.size() == kTimes.size());
}

TEST_CASE("time gate: a doubled time fails", "[gates][time]") {
  const TimeRun base = time_run(kTimes, 1.2, 1.0, 1);
  auto slower = kTimes;
  slower[0].second *= 2;
  const GateReport r = compare_time(&base, time_run(slower, 1.2, 1.0, 5));
  CHECK(r.regressions() == 1);
  const std::string md = markdown(r, true);
  CHECK(md.find("REGRESSED") != std::string::npos);
  CHECK(md.find("+100") != std::string::npos);
}

TEST_CASE("time gate: a small real change under the minimum effect passes", "[gates][time]") {
  const TimeRun base = time_run(kTimes, 1.2, 1.0, 1, 0.01);
  auto slower = kTimes;
  slower[0].second *= 1.10;  // significant, but under +15 %
  const GateReport r = compare_time(&base, time_run(slower, 1.2, 1.0, 5, 0.01));
  CHECK_FALSE(r.failed());
  bool within = false;
  for (const auto& f : r.findings) within = within || f.verdict == Verdict::within;
  CHECK(within);
}

TEST_CASE("time gate: normalisation cancels a uniformly slower machine", "[gates][time]") {
  const TimeRun base = time_run(kTimes, 1.2, 1.0, 1);
  // every kernel and the reference 1.5x slower: a busier or slower machine
  const TimeRun slow_machine = time_run(kTimes, 1.2, 1.5, 1);
  CHECK_FALSE(compare_time(&base, slow_machine).failed());
  // while the kernel alone 1.5x slower is a regression
  TimeRun kernel_only = time_run(kTimes, 1.2, 1.0, 1);
  for (auto& [key, samples] : kernel_only.kernel_ms)
    for (double& x : samples) x *= 1.5;
  CHECK(compare_time(&base, kernel_only).regressions() == kTimes.size());
}

TEST_CASE("time gate: a missing baseline for this hardware warns and passes", "[gates][time]") {
  const TimeRun now = time_run(kTimes, 1.2, 1.0, 1);
  const GateReport r = compare_time(nullptr, now);
  CHECK_FALSE(r.failed());
  CHECK(r.baseline_missing);
  REQUIRE_FALSE(r.warnings.empty());
  CHECK(r.warnings[0].find(now.fingerprint.key()) != std::string::npos);
  CHECK(markdown(r).find("no baseline") != std::string::npos);
}

TEST_CASE("time gate: normalised samples divide by the reference median", "[gates][time]") {
  const auto v = normalized_samples({2, 4, 6}, {1, 2, 100});
  REQUIRE(v.size() == 3);
  CHECK(v[0] == 1.0);
  CHECK(v[2] == 3.0);
  CHECK(normalized_samples({1}, {}).empty());
}

// ---- fingerprints and files ------------------------------------------------------------------

TEST_CASE("fingerprints come from /proc/cpuinfo and name the baseline files", "[gates][files]") {
  const std::string cpuinfo =
      "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n"
      "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 cx16 lahf_lm popcnt avx avx2 bmi1 bmi2 f16c "
      "fma abm movbe xsave avx512f avx512bw avx512cd avx512dq avx512vl avx512_bf16 avx512_vnni\n"
      "processor\t: 1\nmodel name\t: AMD EPYC 9B14\n";
  const Fingerprint f = fingerprint_from_cpuinfo(cpuinfo, 2);
  CHECK(f.cpu_model == "AMD EPYC 9B14");
  CHECK(f.isa_level == "x86-64-v4");
  CHECK(f.isa_extras == std::vector<std::string>{"bf16", "vnni"});
  CHECK(f.key() == "amd-epyc-9b14_x86-64-v4-bf16-vnni_2t");
  const Fingerprint avx2 = fingerprint_from_cpuinfo(
      "model name : Some CPU\nflags : sse2 ssse3 sse4_1 sse4_2 cx16 lahf_lm popcnt avx avx2 bmi1 "
      "bmi2 f16c fma abm movbe xsave\n",
      1);
  CHECK(avx2.isa_level == "x86-64-v3");
  CHECK(avx2.key() != f.key());
  CHECK(fingerprint_from_json(to_json(f)) == f);
  CHECK(time_baseline_path("b", f) == "b/time/amd-epyc-9b14_x86-64-v4-bf16-vnni_2t.json");
}

TEST_CASE("baselines round-trip through their JSON", "[gates][files]") {
  const MemoryRun m = memory_baseline();
  const MemoryRun m2 = memory_run_from_json(to_json(m), "memory");
  CHECK_FALSE(compare_memory(m, m2, MemoryScope::full).failed());
  for (const auto& f : compare_memory(m, m2, MemoryScope::full).findings) CHECK(f.verdict == Verdict::same);

  const WorkRun w = work_run(50'000'000, 80'000'000);
  const WorkRun w2 = work_run_from_json(to_json(w), "work");
  CHECK(w2.instructions == w.instructions);
  CHECK(w2.tool == w.tool);

  const TimeRun t = time_run(kTimes, 1.2, 1.0, 1);
  const TimeRun t2 = time_run_from_json(to_json(t), "time");
  CHECK(t2.reference_ms.size() == t.reference_ms.size());
  REQUIRE(t2.kernel_ms.size() == t.kernel_ms.size());
  for (const auto& [key, samples] : t.kernel_ms) {
    REQUIRE(t2.kernel_ms.at(key).size() == samples.size());
    CHECK_THAT(t2.kernel_ms.at(key)[0], Catch::Matchers::WithinAbs(samples[0], 1e-6));  // ns kept
  }
  CHECK_FALSE(compare_time(&t, t2).failed());

  // a baseline of one gate is not read as another's
  CHECK_THROWS_AS(work_run_from_json(to_json(m), "memory.json"), InvalidProblem);
}
