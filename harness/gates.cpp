// The CI performance gates' decisions and baseline files (gates.hpp).
#include "gates.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "errors.hpp"
#include "file_io.hpp"
#include "stats.hpp"
#include "sysinfo.hpp"
#include "text.hpp"

namespace attnbench::gates {

namespace {


std::string slug(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c))
      out += char(std::tolower(c));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unknown" : out;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// "lisa_base cpu b=1 h=1 N=1024 dh=64 causal B=8 W=128": the method parameters that are set.
std::string point_words(const Row& r) {
  return fmt::format("{} {} {}", r.kernel, backend_name(r.backend), describe_point(r.problem));
}

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string pct(double ratio, int decimals = 1) {
  if (!std::isfinite(ratio)) return "-";
  return fmt::format("{:+.{}f} %", (ratio - 1.0) * 100.0, decimals);
}

// Two different numbers printed with enough digits that they print differently.
std::pair<std::string, std::string> distinct(double a, double b) {
  for (int digits = 3; digits <= 17; ++digits) {
    std::string x = fmt::format("{:.{}e}", a, digits - 1), y = fmt::format("{:.{}e}", b, digits - 1);
    if (x != y || a == b || digits == 17) return {x, y};
  }
  return {"", ""};
}

std::map<std::string, const Row*> index_rows(const ResultsFile& f) {
  std::map<std::string, const Row*> m;
  for (const Row& r : f.rows) m.emplace(row_key(r), &r);
  return m;
}

// Compares an exact figure that must not grow; records a finding either way.
// (with `slack`: a change up to slack bytes either way is "within").
void exact_bytes(GateReport& rep, const std::string& point, const char* metric, uint64_t base,
                 uint64_t now, uint64_t slack = 0) {
  Finding f{point, metric, with_commas(base) + " B", with_commas(now) + " B", "", Verdict::same, ""};
  if (now != base) {
    const int64_t d = int64_t(now) - int64_t(base);
    f.change = fmt::format("{}{} B", d > 0 ? "+" : "-", with_commas(uint64_t(d > 0 ? d : -d)));
    if (base > 0) f.change += fmt::format(" ({})", pct(double(now) / double(base)));
    if (now > base + slack)
      f.verdict = Verdict::regressed;
    else if (now + slack < base)
      f.verdict = Verdict::improved;
    else
      f.verdict = Verdict::within;
    if (slack > 0 && f.verdict != Verdict::within)
      f.note = fmt::format("allocator granularity allowance {} B", with_commas(slack));
  }
  rep.findings.push_back(std::move(f));
}

void exact_error(GateReport& rep, const std::string& point, const std::optional<double>& base,
                 const std::optional<double>& now) {
  Finding f{point, "correctness_rel_l2", "-", "-", "", Verdict::same, ""};
  const bool bn = base && std::isfinite(*base), nn = now && std::isfinite(*now);
  if (bn && nn) {
    std::tie(f.base, f.now) = distinct(*base, *now);
    if (*now != *base) {
      f.change = *base > 0 ? fmt::format("{:+.3g} %", (*now / *base - 1.0) * 100.0) : "";
      f.verdict = *now > *base ? Verdict::regressed : Verdict::improved;
    }
  } else if (bn && !nn) {
    f.base = fmt::format("{:.3e}", *base);
    f.now = now ? "NaN" : "not measured";
    f.verdict = Verdict::regressed;
  } else if (!bn && nn) {
    f.now = fmt::format("{:.3e}", *now);
    f.verdict = Verdict::improved;
    f.note = "the baseline has no finite error here";
  }
  rep.findings.push_back(std::move(f));
}

void build_warnings(GateReport& rep, const Environment& b, const Environment& n) {
  auto differ = [&](const char* what, const std::string& x, const std::string& y) {
    if (x != y)
      rep.warnings.push_back(fmt::format("the baseline was made with another {} ('{}', now '{}'): "
                                         "a change may come from it",
                                         what, x, y));
  };
  differ("compiler", b.compiler, n.compiler);
  differ("set of compiler flags", b.cxx_flags, n.cxx_flags);
  differ("BLAS library", b.blas, n.blas);
  differ("build type", b.build_type, n.build_type);
}

}  // namespace

// ---- fingerprint -----------------------------------------------------------------------------

std::string Fingerprint::key() const {
  std::string k = slug(cpu_model) + "_" + slug(isa_level);
  for (const auto& e : isa_extras) {
    k += '-';
    k += slug(e);
  }
  return k + fmt::format("_{}t", threads);
}

std::string Fingerprint::words() const {
  std::string s = cpu_model + ", " + isa_level;
  for (const auto& e : isa_extras) s += " +" + e;
  return s + fmt::format(", {} thread{}", threads, threads == 1 ? "" : "s");
}

Fingerprint fingerprint_from_cpuinfo(const std::string& cpuinfo, int threads) {
  Fingerprint f;
  f.threads = threads;
  std::set<std::string> flags;
  bool have_model = false, have_flags = false;
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (!have_model && (name == "model name" || name == "Model" || name == "cpu model")) {
      f.cpu_model = value;
      have_model = true;
    } else if (!have_flags && (name == "flags" || name == "Features")) {
      std::istringstream fl(value);
      for (std::string x; fl >> x;) flags.insert(x);
      have_flags = true;
    }
  }
  if (f.cpu_model.empty()) f.cpu_model = "unknown";
  auto all = [&](std::initializer_list<const char*> need) {
    return std::all_of(need.begin(), need.end(), [&](const char* x) { return flags.count(x) > 0; });
  };
  std::vector<std::pair<const char*, const char*>> extras;
  if (flags.count("sse2")) {
    f.isa_level = "x86-64";
    if (all({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})) {
      f.isa_level = "x86-64-v2";
      if (all({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})) {
        f.isa_level = "x86-64-v3";
        if (all({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})) f.isa_level = "x86-64-v4";
      }
    }
    // instruction sets beyond the level that OpenBLAS or -march=native code paths use
    extras = {{"amx_tile", "amx"},   {"avx512_bf16", "bf16"}, {"avx512_fp16", "fp16"},
              {"avx512ifma", "ifma"}, {"avx512vbmi", "vbmi"}, {"avx512_vnni", "vnni"},
              {"avx_vnni", "avxvnni"}};
  } else if (flags.count("asimd")) {
    f.isa_level = "arm64";
    extras = {{"bf16", "bf16"}, {"asimddp", "dotprod"}, {"i8mm", "i8mm"}, {"sve", "sve"},
              {"sve2", "sve2"}};
  } else {
    f.isa_level = have_flags ? "other" : "unknown";
  }
  for (const auto& [flag, name] : extras)
    if (flags.count(flag)) f.isa_extras.push_back(name);
  std::sort(f.isa_extras.begin(), f.isa_extras.end());
  return f;
}

Fingerprint this_machine(int threads) {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  Fingerprint f = fingerprint_from_cpuinfo(ss.str(), threads);
  if (f.cpu_model == "unknown") f.cpu_model = sysinfo::cpu_model();
  return f;
}

ojson to_json(const Fingerprint& f) {
  return {{"key", f.key()},
          {"cpu_model", f.cpu_model},
          {"isa_level", f.isa_level},
          {"isa_extras", f.isa_extras},
          {"threads", f.threads}};
}

Fingerprint fingerprint_from_json(const ojson& j) {
  Fingerprint f;
  if (!j.is_object()) return f;
  f.cpu_model = j.value("cpu_model", "");
  f.isa_level = j.value("isa_level", "");
  if (j.contains("isa_extras") && j["isa_extras"].is_array())
    for (const auto& e : j["isa_extras"]) f.isa_extras.push_back(e.get<std::string>());
  f.threads = j.value("threads", 0);
  return f;
}

// ---- reports ---------------------------------------------------------------------------------

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::same: return "same";
    case Verdict::within: return "within tolerance";
    case Verdict::improved: return "improved";
    case Verdict::added: return "new point (not gated)";
    case Verdict::regressed: return "**REGRESSED**";
    case Verdict::removed: return "**MISSING** (in the baseline, not run)";
  }
  return "?";
}

bool is_failure(Verdict v) { return v == Verdict::regressed || v == Verdict::removed; }

size_t GateReport::regressions() const {
  return size_t(std::count_if(findings.begin(), findings.end(),
                              [](const Finding& f) { return is_failure(f.verdict); }));
}

std::string markdown(const GateReport& r, bool all) {
  std::string s;
  const size_t n = r.regressions();
  std::string status = n ? fmt::format("FAIL ({} regression{})", n, n == 1 ? "" : "s")
                     : r.baseline_missing ? "PASS (no baseline: nothing gated)"
                                          : "PASS";
  s += fmt::format("### {} gate: {}\n\n", r.title, status);
  if (r.baseline_missing)
    s += fmt::format("{} points measured; no baseline{}.\n",
                     r.points, r.baseline_path.empty() ? "" : " at `" + r.baseline_path + "`");
  else
    s += fmt::format("{} points against `{}`.\n", r.points, r.baseline_path);
  for (const auto& w : r.warnings) s += fmt::format("\n> warning: {}\n", w);
  for (const auto& x : r.notes) s += fmt::format("\n> {}\n", x);
  std::vector<const Finding*> shown;
  size_t within = 0;
  for (const auto& f : r.findings) {
    if (all || (f.verdict != Verdict::same && f.verdict != Verdict::within)) shown.push_back(&f);
    within += f.verdict == Verdict::within;
  }
  if (within > 0 && !all)
    s += fmt::format("\n{} change{} within the gate's tolerance not listed (--all lists every "
                     "compared figure).\n",
                     within, within == 1 ? "" : "s");
  if (shown.empty()) {
    s += "\nNo change beyond the tolerance.\n\n";
    return s;
  }
  auto cell = [](std::string x) {
    for (size_t i = 0; (i = x.find('|', i)) != std::string::npos; i += 2) x.replace(i, 1, "\\|");
    return x.empty() ? std::string("-") : x;
  };
  s += "\n| point | metric | baseline | now | change | verdict |\n|---|---|---|---|---|---|\n";
  for (const Finding* f : shown) {
    std::string verdict = verdict_name(f->verdict);
    if (!f->note.empty()) verdict += ": " + f->note;
    s += fmt::format("| {} | {} | {} | {} | {} | {} |\n", cell(f->point), cell(f->metric),
                     cell(f->base), cell(f->now), cell(f->change), cell(verdict));
  }
  s += "\n";
  return s;
}

// ---- memory and accuracy ---------------------------------------------------------------------

namespace {

// A point whose status changed: running where it failed is an improvement, failing where it
// ran (or failing differently) a regression.
void compare_status(GateReport& rep, const std::string& words, const Row& b, const Row& n) {
  if (b.status != n.status) {
    Verdict v = Verdict::within;
    if (b.status == "ok" || n.status == "error") v = Verdict::regressed;
    else if (n.status == "ok") v = Verdict::improved;
    rep.findings.push_back({words, "status", b.status, n.status, "", v,
                            n.reason.empty() ? b.reason : n.reason});
  } else if (n.status == "error" && n.reason != b.reason) {
    rep.findings.push_back({words, "status", b.status, n.status, "", Verdict::regressed, n.reason});
  }
}

// One point in both runs: status, the workspace query and, on the same hardware, the measured
// peak and the correctness error.
void compare_memory_row(GateReport& rep, const Row& b, const Row& n, MemoryScope scope,
                        const MemoryOptions& o) {
  const std::string words = point_words(n);
  compare_status(rep, words, b, n);
  if (b.status != "ok" || n.status != "ok") return;
  exact_bytes(rep, words, "inputs_bytes", b.memory.inputs_bytes, n.memory.inputs_bytes);
  exact_bytes(rep, words, "outputs_bytes", b.memory.outputs_bytes, n.memory.outputs_bytes);
  exact_bytes(rep, words, "prepared_bytes", b.memory.prepared_bytes, n.memory.prepared_bytes);
  exact_bytes(rep, words, "scratch_bytes", b.memory.scratch_bytes, n.memory.scratch_bytes);
  exact_bytes(rep, words, "peak_bytes", b.memory.peak_bytes(), n.memory.peak_bytes());
  if (scope != MemoryScope::full) return;
  if (b.measured_peak_bytes && n.measured_peak_bytes) {
    exact_bytes(rep, words, "measured_peak_bytes", *b.measured_peak_bytes, *n.measured_peak_bytes,
                o.measured_slack_bytes);
  } else if (b.measured_peak_bytes) {
    rep.findings.push_back({words, "measured_peak_bytes", with_commas(*b.measured_peak_bytes),
                            "not measured", "", Verdict::regressed, ""});
  }
  if (b.measured_peak_source != n.measured_peak_source)
    rep.findings.back().note = fmt::format("measured by '{}' in the baseline, '{}' now",
                                           b.measured_peak_source, n.measured_peak_source);
  exact_error(rep, words, b.correctness_rel_l2, n.correctness_rel_l2);
}

}  // namespace

GateReport compare_memory(const MemoryRun& base, const MemoryRun& now, MemoryScope scope,
                          const MemoryOptions& o) {
  GateReport rep;
  rep.gate = "memory";
  rep.title = "memory and accuracy (exact; measured heap peak within allocator granularity)";
  rep.points = now.results.rows.size();
  if (scope == MemoryScope::full)
    build_warnings(rep, base.results.environment, now.results.environment);
  else
    rep.notes.push_back(fmt::format(
        "no baseline for this hardware ({}): only the workspace query (inputs, outputs, "
        "prepared, scratch, peak bytes) is compared; the measured heap peak and the "
        "correctness error are not gated until a baseline for it is stored (--update)",
        now.fingerprint.words()));
  if (base.fingerprint.threads != now.fingerprint.threads)
    rep.warnings.push_back(fmt::format("the baseline ran with {} threads, this run with {}: "
                                       "per-thread workspace differs",
                                       base.fingerprint.threads, now.fingerprint.threads));

  const auto brows = index_rows(base.results);
  std::set<std::string> seen;
  for (const Row& n : now.results.rows) {
    const auto it = brows.find(row_key(n));
    if (it == brows.end()) {
      rep.findings.push_back({point_words(n), "status", "-", n.status, "", Verdict::added,
                              "not in the baseline; --update adds it"});
      continue;
    }
    seen.insert(row_key(n));
    compare_memory_row(rep, *it->second, n, scope, o);
  }
  for (const Row& b : base.results.rows)
    if (!seen.count(row_key(b)) && b.status != "skipped")
      rep.findings.push_back({point_words(b), "status", b.status, "-", "", Verdict::removed,
                              "the point ran in the baseline and was not measured now"});
  return rep;
}

// ---- work ------------------------------------------------------------------------------------

GateReport compare_work(const WorkRun& base, const WorkRun& now, const WorkOptions& o) {
  GateReport rep;
  rep.gate = "work";
  rep.title = fmt::format("work (instructions under callgrind, tolerance {:.0f} %)", o.tolerance * 100);
  rep.points = now.results.rows.size();
  build_warnings(rep, base.results.environment, now.results.environment);
  if (base.tool != now.tool)
    rep.warnings.push_back(fmt::format("measured with another tool setup (baseline {}, now {})",
                                       base.tool.dump(), now.tool.dump()));
  if (base.fingerprint.cpu_model != now.fingerprint.cpu_model ||
      base.fingerprint.isa_level != now.fingerprint.isa_level)
    rep.notes.push_back(fmt::format(
        "baseline from {}, this run on {}: instruction counts of the portable build barely "
        "depend on the CPU (glibc's string functions pick their variant from cpuid)",
        base.fingerprint.words(), now.fingerprint.words()));

  const auto brows = index_rows(base.results);
  std::set<std::string> seen;
  for (const Row& n : now.results.rows) {
    const std::string key = row_key(n), words = point_words(n);
    const auto bi = base.instructions.find(key);
    const auto ni = now.instructions.find(key);
    if (brows.find(key) == brows.end() || bi == base.instructions.end()) {
      rep.findings.push_back({words, "instructions", "-",
                              ni == now.instructions.end() ? n.status : with_commas(uint64_t(ni->second)),
                              "", Verdict::added, "not in the baseline; --update adds it"});
      continue;
    }
    seen.insert(key);
    Finding f{words, "instructions", with_commas(uint64_t(bi->second)), "-", "", Verdict::same, ""};
    if (ni == now.instructions.end()) {
      f.now = n.status;
      f.verdict = Verdict::regressed;
      f.note = n.reason.empty() ? "not measured" : n.reason;
    } else {
      f.now = with_commas(uint64_t(ni->second));
      const double ratio = bi->second > 0 ? ni->second / bi->second : (ni->second > 0 ? INFINITY : 1.0);
      f.change = pct(ratio, 2);
      if (ni->second != bi->second) f.verdict = Verdict::within;
      if (ratio > 1.0 + o.tolerance) f.verdict = Verdict::regressed;
      else if (ratio < 1.0 - o.tolerance) f.verdict = Verdict::improved;
    }
    rep.findings.push_back(std::move(f));
  }
  for (const Row& b : base.results.rows)
    if (!seen.count(row_key(b)) && base.instructions.count(row_key(b)))
      rep.findings.push_back({point_words(b), "instructions",
                              with_commas(uint64_t(base.instructions.at(row_key(b)))), "-", "",
                              Verdict::removed, "the point was not measured now"});
  return rep;
}

CallgrindDump parse_callgrind_dump(const std::string& text) {
  CallgrindDump d;
  bool found = false;
  std::istringstream in(text);
  std::string line;
  const std::string trigger = "desc: Trigger: Client Request: ";
  while (std::getline(in, line)) {
    if (line.rfind(trigger, 0) == 0) d.trigger = trim(line.substr(trigger.size()));
    for (const char* tag : {"totals:", "summary:"}) {
      if (line.rfind(tag, 0) != 0) continue;
      std::istringstream v(line.substr(std::strlen(tag)));
      uint64_t x = 0;
      if (v >> x) {
        // "totals:" is what the dump measured; keep it over "summary:" when both appear
        if (!found || std::string(tag) == "totals:") d.instructions = x;
        found = true;
      }
    }
  }
  if (!found) throw InvalidProblem("callgrind output has no 'totals:' or 'summary:' line");
  return d;
}

// ---- time ------------------------------------------------------------------------------------

std::vector<double> normalized_samples(const std::vector<double>& kernel_ms,
                                       const std::vector<double>& reference_ms) {
  const double ref = stats::summarize(reference_ms).median;
  std::vector<double> out;
  if (!(ref > 0)) return out;
  out.reserve(kernel_ms.size());
  for (double x : kernel_ms) out.push_back(x / ref);
  return out;
}

namespace {

// A point's samples divided by the median of the reference beside them (empty: none).
std::vector<double> normalized_of(const TimeRun& run, const Row& r) {
  const auto k = run.kernel_ms.find(row_key(r));
  const auto ref = run.reference_ms.find(row_key(r));
  if (k == run.kernel_ms.end() || ref == run.reference_ms.end()) return {};
  return normalized_samples(k->second, ref->second);
}

// "0.8123 (3.45 ms)": the median ratio and the median CPU time, or the row's status.
std::string time_cell(const TimeRun& run, const Row& r, const std::vector<double>& norm) {
  if (norm.empty()) return r.status;
  const auto k = run.kernel_ms.find(row_key(r));
  const double ms = k == run.kernel_ms.end() ? std::nan("") : stats::summarize(k->second).median;
  return fmt::format("{:.4g} ({:.3g} ms)", stats::summarize(norm).median, ms);
}

// The verdict on two sets of normalised samples: a regression needs both the minimum effect on
// the median and a significant U test (or, with samples too few for the test, the medians).
void judge_samples(Finding& f, const std::vector<double>& bn, const std::vector<double>& nn,
                   const TimeOptions& o) {
  const double ratio = stats::summarize(nn).median / stats::summarize(bn).median;
  const auto mw = stats::mann_whitney_u(bn, nn);
  const bool can_reach = stats::mann_whitney_min_p(bn.size(), nn.size()) < o.alpha;
  const bool significant = !can_reach || mw.p_value < o.alpha;
  f.change = fmt::format("{} (p = {:.2g})", pct(ratio), mw.p_value);
  if (!can_reach) f.note = "too few samples for the test: judged on the medians";
  f.verdict = ratio != 1.0 ? Verdict::within : Verdict::same;
  if (significant && ratio > 1.0 + o.min_effect) f.verdict = Verdict::regressed;
  else if (significant && ratio < 1.0 / (1.0 + o.min_effect)) f.verdict = Verdict::improved;
}

// The finding of one point of this run; `b` is its baseline row (null: not in the baseline).
Finding time_finding(const TimeRun* base, const Row* b, const TimeRun& now, const Row& n,
                     const TimeOptions& o) {
  const std::vector<double> nn = normalized_of(now, n);
  Finding f{point_words(n), "cpu time / sgemm (median)", "-", time_cell(now, n, nn), "",
            Verdict::same, ""};
  if (!b) {
    f.verdict = Verdict::added;
    f.note = base ? "not in the baseline; --update adds it" : "";
    return f;
  }
  const std::vector<double> bn = normalized_of(*base, *b);
  f.base = time_cell(*base, *b, bn);
  if (bn.empty()) {
    f.verdict = Verdict::added;
    f.note = "the baseline has no samples here";
  } else if (nn.empty()) {
    f.verdict = Verdict::regressed;
    f.note = n.reason.empty() ? "not measured" : n.reason;
  } else {
    judge_samples(f, bn, nn, o);
  }
  return f;
}

}  // namespace

GateReport compare_time(const TimeRun* base, const TimeRun& now, const TimeOptions& o) {
  GateReport rep;
  rep.gate = "time";
  rep.title = fmt::format("time (CPU time / {}; regression = +{:.0f} % and Mann-Whitney p < {})",
                          now.reference.empty() ? "a reference" : now.reference,
                          o.min_effect * 100, o.alpha);
  rep.points = now.results.rows.size();
  rep.baseline_missing = base == nullptr;
  if (!base)
    rep.warnings.push_back(fmt::format(
        "no time baseline for this hardware ({}, key {}): the time gate checks nothing here; "
        "store one with --update on this machine",
        now.fingerprint.words(), now.fingerprint.key()));
  else
    build_warnings(rep, base->results.environment, now.results.environment);

  const auto brows = base ? index_rows(base->results) : std::map<std::string, const Row*>{};
  std::set<std::string> seen;
  for (const Row& n : now.results.rows) {
    const auto it = brows.find(row_key(n));
    if (it != brows.end()) seen.insert(row_key(n));
    rep.findings.push_back(time_finding(base, it == brows.end() ? nullptr : it->second, now, n, o));
  }
  if (base)
    for (const Row& b : base->results.rows)
      if (!seen.count(row_key(b)) && base->kernel_ms.count(row_key(b)))
        rep.findings.push_back({point_words(b), "cpu time / sgemm (median)", "measured", "-", "",
                                Verdict::removed, "the point was not measured now"});
  return rep;
}

// ---- files -----------------------------------------------------------------------------------

std::string memory_baseline_path(const std::string& dir, const Fingerprint& f) {
  return dir + "/memory/" + f.key() + ".json";
}
std::string work_baseline_path(const std::string& dir) { return dir + "/work.json"; }
std::string time_baseline_path(const std::string& dir, const Fingerprint& f) {
  return dir + "/time/" + f.key() + ".json";
}

namespace {

ojson gate_header(const char* name, const Fingerprint& f) {
  ojson g = ojson::object();
  g["name"] = name;
  g["schema_version"] = kGateSchemaVersion;
  g["fingerprint"] = to_json(f);
  return g;
}

const ojson& gate_of(const ojson& j, const char* name, const std::string& where) {
  if (!j.is_object() || !j.contains("gate") || !j["gate"].is_object())
    fail_at(where, "not a gate baseline (no 'gate' object)");
  const ojson& g = j["gate"];
  if (g.value("name", "") != name)
    fail_at(where, fmt::format("a '{}' gate baseline, not a '{}' one", g.value("name", "?"), name));
  if (g.value("schema_version", 0) != kGateSchemaVersion)
    fail_at(where, fmt::format("gate schema_version {} is not supported (this tool reads {})",
                           g.value("schema_version", 0), kGateSchemaVersion));
  return g;
}

double round_ms(double x) { return std::round(x * 1e6) / 1e6; }

}  // namespace

ojson to_json(const MemoryRun& r) {
  ojson j = attnbench::to_json(r.results);
  j["gate"] = gate_header("memory", r.fingerprint);
  return j;
}

ojson to_json(const WorkRun& r) {
  ojson j = attnbench::to_json(r.results);
  ojson g = gate_header("work", r.fingerprint);
  g["tool"] = r.tool;
  ojson ins = ojson::object();
  for (const Row& row : r.results.rows) {
    const auto it = r.instructions.find(row_key(row));
    if (it != r.instructions.end()) ins[row_key(row)] = uint64_t(it->second);
  }
  g["instructions"] = ins;
  j["gate"] = g;
  return j;
}

ojson to_json(const TimeRun& r) {
  ojson j = attnbench::to_json(r.results);
  ojson g = gate_header("time", r.fingerprint);
  g["reference"] = r.reference;
  g["clock"] = "thread CPU time (CLOCK_THREAD_CPUTIME_ID), ms";
  auto samples = [&](const std::map<std::string, std::vector<double>>& m) {
    ojson out = ojson::object();
    for (const Row& row : r.results.rows) {
      const auto it = m.find(row_key(row));
      if (it == m.end()) continue;
      ojson s = ojson::array();
      for (double x : it->second) s.push_back(round_ms(x));
      out[row_key(row)] = s;
    }
    return out;
  };
  g["kernel_ms"] = samples(r.kernel_ms);
  g["reference_ms"] = samples(r.reference_ms);
  j["gate"] = g;
  return j;
}

MemoryRun memory_run_from_json(const ojson& j, const std::string& where) {
  const ojson& g = gate_of(j, "memory", where);
  MemoryRun r;
  r.results = results_from_json(j, where);
  r.fingerprint = fingerprint_from_json(g.value("fingerprint", ojson::object()));
  return r;
}

WorkRun work_run_from_json(const ojson& j, const std::string& where) {
  const ojson& g = gate_of(j, "work", where);
  WorkRun r;
  r.results = results_from_json(j, where);
  r.fingerprint = fingerprint_from_json(g.value("fingerprint", ojson::object()));
  r.tool = g.value("tool", ojson::object());
  if (g.contains("instructions") && g["instructions"].is_object())
    for (auto it = g["instructions"].begin(); it != g["instructions"].end(); ++it) {
      if (!it->is_number()) fail_at(where, fmt::format("gate.instructions['{}'] is not a number", it.key()));
      r.instructions[it.key()] = it->get<double>();
    }
  return r;
}

TimeRun time_run_from_json(const ojson& j, const std::string& where) {
  const ojson& g = gate_of(j, "time", where);
  TimeRun r;
  r.results = results_from_json(j, where);
  r.fingerprint = fingerprint_from_json(g.value("fingerprint", ojson::object()));
  r.reference = g.value("reference", "");
  auto samples = [&](const char* name, std::map<std::string, std::vector<double>>& m) {
    if (!g.contains(name) || !g[name].is_object()) fail_at(where, fmt::format("gate.{} is missing", name));
    for (auto it = g[name].begin(); it != g[name].end(); ++it) {
      std::vector<double> v;
      for (const auto& x : *it) {
        if (!x.is_number()) fail_at(where, fmt::format("gate.{}['{}'] holds a non-number", name, it.key()));
        v.push_back(x.get<double>());
      }
      m[it.key()] = std::move(v);
    }
  };
  samples("kernel_ms", r.kernel_ms);
  samples("reference_ms", r.reference_ms);
  return r;
}

ojson read_json_file(const std::string& path) {
  const std::string text = file_io::read_regular(path, file_io::kMaxJsonInputBytes, "a baseline");
  try {
    return ojson::parse(text);
  } catch (const ojson::parse_error& e) {
    fail_at(path, fmt::format("not valid JSON ({})", one_line(e.what())));
  }
}

}  // namespace attnbench::gates
