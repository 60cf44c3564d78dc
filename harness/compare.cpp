#include "compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "errors.hpp"
#include "stats.hpp"
#include "text.hpp"

namespace attnbench {

namespace {

std::string point_words(const Row& r) { return describe_point(r.problem); }

std::string pct(double ratio) { return fmt::format("{:+.1f} %", (ratio - 1.0) * 100.0); }

std::string sci(const std::optional<double>& v) { return v ? fmt::format("{:.1e}", *v) : "-"; }

// Samples are stored rounded to the nanosecond (1e-6 ms); the summary was taken before that.
bool same_figure(double stored, double recomputed) {
  return std::fabs(stored - recomputed) <= 1e-6 + 1e-9 * std::fabs(recomputed);
}

void check_summary(const TimeStats& t, const std::string& where) {
  const stats::Summary s = stats::summarize(t.samples);
  const std::pair<const char*, std::pair<double, double>> figures[] = {
      {"median", {t.median, s.median}}, {"min", {t.min, s.min}}, {"max", {t.max, s.max}},
      {"p25", {t.p25, s.p25}},          {"p75", {t.p75, s.p75}}, {"mean", {t.mean, s.mean}}};
  for (const auto& [what, v] : figures)
    if (!same_figure(v.first, v.second))
      throw InvalidProblem(fmt::format("{}: stored {} {} ms is not the {} of its samples ({} ms)",
                                       where, what, v.first, what, v.second));
}

double median_of(const TimeStats& t) { return stats::summarize(t.samples).median; }

std::vector<std::string> environment_differences(const Environment& eb, const Environment& en) {
  std::vector<std::string> w;
  auto differ = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b) w.push_back(fmt::format("{} differs: '{}' vs '{}'", what, a, b));
  };
  differ("CPU", eb.cpu_model, en.cpu_model);
  differ("GPU", eb.gpu ? eb.gpu->name : "none", en.gpu ? en.gpu->name : "none");
  differ("threads used", std::to_string(eb.threads_used), std::to_string(en.threads_used));
  differ("build type", eb.build_type, en.build_type);
  differ("compiler", eb.compiler, en.compiler);
  return w;
}

// One side of a comparison: what the row says, the median recomputed from its samples.
void fill_side(const Row& r, bool is_base, RowComparison& rc) {
  (is_base ? rc.base_status : rc.new_status) = r.status;
  if (r.time) (is_base ? rc.base_median_ms : rc.new_median_ms) = median_of(*r.time);
  (is_base ? rc.base_peak_bytes : rc.new_peak_bytes) = double(r.memory.peak_bytes());
  (is_base ? rc.base_correctness : rc.new_correctness) = r.correctness_rel_l2;
  (is_base ? rc.base_approx : rc.new_approx) = r.approx_rel_l2;
}

RowComparison side_only(const Row& r, bool is_base) {
  RowComparison rc;
  rc.kernel = r.kernel;
  rc.backend = backend_name(r.backend);
  rc.point = point_words(r);
  fill_side(r, is_base, rc);
  return rc;
}

// Time: the ratio of the medians and the U test, both over the samples.
void judge_time(const TimeStats& b, const TimeStats& n, const CompareOptions& o, RowComparison& rc) {
  rc.time_ratio = median_of(n) / median_of(b);
  const auto mw = stats::mann_whitney_u(b.samples, n.samples);
  rc.p_value = mw.p_value;
  const bool can_reach = stats::mann_whitney_min_p(b.samples.size(), n.samples.size()) < o.alpha;
  rc.time_judged_on_median = !can_reach;
  const bool significant = !can_reach || mw.p_value < o.alpha;
  rc.time_regressed = significant && *rc.time_ratio > 1.0 + o.threshold;
  rc.time_improved = significant && *rc.time_ratio < 1.0 - o.threshold;
}

// The bound a row's correctness error is judged against: its own correctness_tolerance (its
// precision's, at its N; schema 2 rows carry it), else float32's constant (older rows).
double row_tolerance(const Row& r) {
  return r.correctness_tolerance.value_or(kCorrectnessTolerance);
}

void judge_memory_and_accuracy(const Row& b, const Row& n, const CompareOptions& o,
                               RowComparison& rc) {
  const double bp = double(b.memory.peak_bytes()), np = double(n.memory.peak_bytes());
  rc.memory_regressed = np > bp * (1.0 + o.threshold);
  rc.memory_improved = np < bp * (1.0 - o.threshold);
  const double tolerance = row_tolerance(n);
  if (n.correctness_rel_l2 && *n.correctness_rel_l2 > tolerance &&
      (!b.correctness_rel_l2 || *n.correctness_rel_l2 > 10.0 * *b.correctness_rel_l2)) {
    rc.accuracy_regressed = true;
    rc.notes.push_back(fmt::format("correctness {} is above the row's {} tolerance {:.1e}",
                                   sci(n.correctness_rel_l2), precision_name(n.problem.precision),
                                   tolerance));
  }
  if (b.approx_rel_l2 && n.approx_rel_l2 &&
      *n.approx_rel_l2 > *b.approx_rel_l2 * (1.0 + o.threshold) + 1e-6) {
    rc.accuracy_regressed = true;
    rc.notes.push_back(fmt::format("approximation error grew from {} to {}",
                                   sci(b.approx_rel_l2), sci(n.approx_rel_l2)));
  }
}

// A row found in both files (both checked by check_time_samples).
void judge(const Row& b, const Row& n, const CompareOptions& o, RowComparison& rc) {
  fill_side(b, true, rc);
  if (b.status == "ok" && n.status != "ok") {
    rc.status_regressed = true;
    rc.notes.push_back(fmt::format("ran in BASE, {} in NEW: {}", n.status, n.reason));
  }
  if (b.time && n.time) judge_time(*b.time, *n.time, o, rc);
  if (b.status == "ok" && n.status == "ok") judge_memory_and_accuracy(b, n, o, rc);
}

}  // namespace

std::string RowComparison::verdict() const {
  if (base_status.empty()) return "new";
  if (new_status.empty()) return missing_regressed ? "REGRESSED: missing from NEW" : "missing";
  std::vector<std::string> what;
  if (status_regressed) what.push_back("now " + new_status);
  if (time_regressed && time_ratio) what.push_back("time " + pct(*time_ratio));
  if (memory_regressed && base_peak_bytes && new_peak_bytes)
    what.push_back("memory " + pct(*new_peak_bytes / *base_peak_bytes));
  if (accuracy_regressed) what.push_back("accuracy");
  if (!what.empty()) {
    std::string s = "REGRESSED:";
    for (size_t i = 0; i < what.size(); ++i) s += (i ? ", " : " ") + what[i];
    return s;
  }
  std::vector<std::string> good;
  if (time_improved) good.push_back("faster");
  if (memory_improved) good.push_back("less memory");
  if (!good.empty()) {
    std::string s;
    for (size_t i = 0; i < good.size(); ++i) s += (i ? ", " : "") + good[i];
    return s;
  }
  if (base_status != "ok" || new_status != "ok") return new_status;
  return "ok";
}

double parse_fraction(const std::string& text, const std::string& option) {
  const bool percent = !text.empty() && text.back() == '%';
  const auto v = parse_number(percent ? text.substr(0, text.size() - 1) : text);
  if (!v || *v < 0)
    fail_at(fmt::format("{} {}", option, text), "expected a fraction (0.1) or a percentage (10%)");
  if (percent) return *v / 100.0;
  if (*v >= 1.0)
    fail_at(fmt::format("{} {}", option, text),
            "give a fraction below 1 (0.1) or a percentage (10%)");
  return *v;
}

void check_time_samples(const ResultsFile& f, const std::string& name) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < f.rows.size(); ++i) {
    const Row& r = f.rows[i];
    const std::string where = fmt::format("{}: row {} ({} {} {})", name, i, r.kernel,
                                          backend_name(r.backend), point_words(r));
    if (auto [it, added] = seen.emplace(row_key(r), i); !added)
      throw InvalidProblem(fmt::format("{}: the same point as row {}", where, it->second));
    if (r.correctness_tolerance && !(std::isfinite(*r.correctness_tolerance) &&
                                     *r.correctness_tolerance > 0))
      throw InvalidProblem(fmt::format("{}: correctness_tolerance {} is not positive and finite",
                                       where, *r.correctness_tolerance));
    if (!r.time) {
      if (r.status == "ok") throw InvalidProblem(where + ": status ok without a time");
      continue;
    }
    const std::vector<double>& s = r.time->samples;
    if (s.empty()) throw InvalidProblem(where + ": time_ms without samples");
    for (size_t k = 0; k < s.size(); ++k)
      if (!(std::isfinite(s[k]) && s[k] > 0))
        throw InvalidProblem(fmt::format("{}: sample {} is {} ms (a time is positive and finite)",
                                         where, k, s[k]));
    if (r.time->count != int64_t(s.size()))
      throw InvalidProblem(fmt::format("{}: count {} but {} samples", where, r.time->count,
                                       s.size()));
    check_summary(*r.time, where);
  }
}

Comparison compare_results(const ResultsFile& base, const ResultsFile& next,
                           const CompareOptions& o) {
  check_time_samples(base, o.base_name);
  check_time_samples(next, o.new_name);
  Comparison c;
  c.options = o;
  c.environment_warnings = environment_differences(base.environment, next.environment);
  std::map<std::string, const Row*> base_rows;
  for (const Row& r : base.rows) base_rows.emplace(row_key(r), &r);
  std::set<std::string> matched;
  for (const Row& n : next.rows) {
    RowComparison rc = side_only(n, false);
    auto it = base_rows.find(row_key(n));
    if (it != base_rows.end()) {
      matched.insert(it->first);
      judge(*it->second, n, o, rc);
      ++c.matched;
    }
    if (rc.regressed()) ++c.regressions;
    c.rows.push_back(std::move(rc));
  }
  for (const Row& b : base.rows) {
    if (matched.count(row_key(b))) continue;
    RowComparison rc = side_only(b, true);
    ++c.missing;
    if (o.require_all) {
      rc.missing_regressed = true;
      rc.notes.push_back(fmt::format("in {}, missing from {} (--require-all)", o.base_name,
                                     o.new_name));
      ++c.regressions;
    }
    c.rows.push_back(std::move(rc));
  }
  return c;
}

namespace {

// The report's last line: regressions, rows judged on medians alone, rows on one side only.
std::string summary_line(const Comparison& c) {
  size_t few = 0, only_base = 0, only_new = 0;
  for (const auto& r : c.rows) {
    few += r.time_judged_on_median;
    only_base += r.new_status.empty();
    only_new += r.base_status.empty();
  }
  std::string summary = fmt::format("{} regression{} in {} matched row{} (threshold {:.0f} %, alpha {})",
                                    c.regressions, c.regressions == 1 ? "" : "s", c.matched,
                                    c.matched == 1 ? "" : "s", c.options.threshold * 100.0,
                                    c.options.alpha);
  if (few)
    summary += fmt::format("; {} row{} (p marked *) had too few samples for the test to reach "
                           "alpha and {} judged on the medians alone",
                           few, few == 1 ? "" : "s", few == 1 ? "was" : "were");
  if (only_base)
    summary += fmt::format("; {} row{} of BASE missing from NEW ({})", only_base,
                           only_base == 1 ? "" : "s",
                           c.options.require_all ? "regressions under --require-all"
                                                 : "--require-all would fail on them");
  if (only_new) summary += fmt::format("; {} row{} only in NEW", only_new, only_new == 1 ? "" : "s");
  return summary;
}

}  // namespace

std::string comparison_report(const Comparison& c, bool markdown) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"kernel", "backend", "point", "base ms", "new ms", "time", "p", "peak memory",
                   "correctness", "approx error", "verdict"});
  for (const auto& r : c.rows) {
    std::vector<std::string> row;
    row.push_back(r.kernel);
    row.push_back(r.backend);
    row.push_back(r.point);
    row.push_back(r.base_median_ms ? fmt::format("{:.3f}", *r.base_median_ms) : "-");
    row.push_back(r.new_median_ms ? fmt::format("{:.3f}", *r.new_median_ms) : "-");
    row.push_back(r.time_ratio ? pct(*r.time_ratio) : "-");
    row.push_back(r.p_value ? fmt::format("{:.3g}{}", *r.p_value, r.time_judged_on_median ? "*" : "")
                            : "-");
    if (r.base_peak_bytes && r.new_peak_bytes)
      row.push_back(*r.base_peak_bytes == *r.new_peak_bytes
                        ? format_bytes(*r.new_peak_bytes)
                        : fmt::format("{} -> {} ({})", format_bytes(*r.base_peak_bytes),
                                      format_bytes(*r.new_peak_bytes),
                                      pct(*r.new_peak_bytes / *r.base_peak_bytes)));
    else
      row.push_back("-");
    row.push_back(fmt::format("{} -> {}", sci(r.base_correctness), sci(r.new_correctness)));
    row.push_back(r.base_approx || r.new_approx
                      ? fmt::format("{} -> {}", sci(r.base_approx), sci(r.new_approx))
                      : "-");
    row.push_back(r.verdict());
    cells.push_back(std::move(row));
  }
  std::string out;
  if (markdown) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out += "|";
      for (const auto& s : cells[i]) out += " " + s + " |";
      out += "\n";
      if (i == 0) {
        out += "|";
        for (size_t k = 0; k < cells[0].size(); ++k) out += (k >= 3 && k <= 6) ? "---:|" : "---|";
        out += "\n";
      }
    }
    out += "\n";
  } else {
    std::vector<size_t> w(cells[0].size(), 0);
    for (const auto& row : cells)
      for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
    for (size_t r = 0; r < cells.size(); ++r) {
      std::string line;
      for (size_t i = 0; i < cells[r].size(); ++i) {
        const std::string& s = cells[r][i];
        const std::string pad(w[i] - s.size(), ' ');
        const bool right = i >= 3 && i <= 6;
        line += (i ? "  " : "") + (right ? pad + s : (i + 1 < cells[r].size() ? s + pad : s));
      }
      out += line + "\n";
    }
  }
  for (const auto& r : c.rows)
    for (const auto& n : r.notes)
      out += fmt::format("{}{} {} {}: {}\n", markdown ? "- " : "note: ", r.kernel, r.backend,
                         r.point, n);
  const std::string summary = summary_line(c);
  out += markdown ? "\n**" + summary + "**\n" : summary + "\n";
  return out;
}

}  // namespace attnbench
