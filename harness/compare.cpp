#include "compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "errors.hpp"
#include "stats.hpp"

namespace attnbench {

namespace {

std::string point_words(const Row& r) { return describe_point(r.problem); }

std::string pct(double ratio) { return fmt::format("{:+.1f} %", (ratio - 1.0) * 100.0); }

std::string sci(const std::optional<double>& v) { return v ? fmt::format("{:.1e}", *v) : "-"; }

}  // namespace

std::string RowComparison::verdict() const {
  if (base_status.empty()) return "new";
  if (new_status.empty()) return "missing";
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
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v) || v < 0)
    fail_at(fmt::format("{} {}", option, text), "expected a fraction (0.1) or a percentage (10%)");
  if (percent) v /= 100.0;
  if (v >= 1.0 && !percent)
    fail_at(fmt::format("{} {}", option, text),
            "give a fraction below 1 (0.1) or a percentage (10%)");
  return v;
}

Comparison compare_results(const ResultsFile& base, const ResultsFile& next,
                           const CompareOptions& o) {
  Comparison c;
  c.options = o;
  const Environment &eb = base.environment, &en = next.environment;
  auto differ = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b) c.environment_warnings.push_back(fmt::format("{} differs: '{}' vs '{}'", what, a, b));
  };
  differ("CPU", eb.cpu_model, en.cpu_model);
  differ("GPU", eb.gpu ? eb.gpu->name : "none", en.gpu ? en.gpu->name : "none");
  differ("threads used", std::to_string(eb.threads_used), std::to_string(en.threads_used));
  differ("build type", eb.build_type, en.build_type);
  differ("compiler", eb.compiler, en.compiler);

  std::map<std::string, const Row*> base_rows;
  for (const Row& r : base.rows) base_rows.emplace(row_key(r), &r);
  std::map<std::string, bool> matched;

  auto fill_side = [](const Row& r, bool is_base, RowComparison& rc) {
    (is_base ? rc.base_status : rc.new_status) = r.status;
    if (r.time) (is_base ? rc.base_median_ms : rc.new_median_ms) = r.time->median;
    (is_base ? rc.base_peak_bytes : rc.new_peak_bytes) = double(r.memory.peak_bytes());
    (is_base ? rc.base_correctness : rc.new_correctness) = r.correctness_rel_l2;
    (is_base ? rc.base_approx : rc.new_approx) = r.approx_rel_l2;
  };

  for (const Row& n : next.rows) {
    RowComparison rc;
    rc.kernel = n.kernel;
    rc.backend = backend_name(n.backend);
    rc.point = point_words(n);
    fill_side(n, false, rc);
    const std::string key = row_key(n);
    auto it = base_rows.find(key);
    if (it == base_rows.end()) {
      c.rows.push_back(std::move(rc));
      continue;
    }
    matched[key] = true;
    const Row& b = *it->second;
    fill_side(b, true, rc);
    ++c.matched;

    if (b.status == "ok" && n.status != "ok") {
      rc.status_regressed = true;
      rc.notes.push_back(fmt::format("ran in BASE, {} in NEW: {}", n.status, n.reason));
    }
    if (b.time && n.time && b.time->median > 0) {
      rc.time_ratio = n.time->median / b.time->median;
      const auto mw = stats::mann_whitney_u(b.time->samples, n.time->samples);
      rc.p_value = mw.p_value;
      const bool can_reach =
          stats::mann_whitney_min_p(b.time->samples.size(), n.time->samples.size()) < o.alpha;
      rc.time_judged_on_median = !can_reach;
      const bool significant = !can_reach || mw.p_value < o.alpha;
      rc.time_regressed = significant && *rc.time_ratio > 1.0 + o.threshold;
      rc.time_improved = significant && *rc.time_ratio < 1.0 - o.threshold;
    }
    if (b.status == "ok" && n.status == "ok") {
      const double bp = double(b.memory.peak_bytes()), np = double(n.memory.peak_bytes());
      rc.memory_regressed = np > bp * (1.0 + o.threshold);
      rc.memory_improved = np < bp * (1.0 - o.threshold);
      if (n.correctness_rel_l2 && *n.correctness_rel_l2 > kCorrectnessTolerance &&
          (!b.correctness_rel_l2 || *n.correctness_rel_l2 > 10.0 * *b.correctness_rel_l2)) {
        rc.accuracy_regressed = true;
        rc.notes.push_back(fmt::format("correctness {} is above the float32 tolerance {:.0e}",
                                       sci(n.correctness_rel_l2), kCorrectnessTolerance));
      }
      if (b.approx_rel_l2 && n.approx_rel_l2 &&
          *n.approx_rel_l2 > *b.approx_rel_l2 * (1.0 + o.threshold) + 1e-6) {
        rc.accuracy_regressed = true;
        rc.notes.push_back(fmt::format("approximation error grew from {} to {}",
                                       sci(b.approx_rel_l2), sci(n.approx_rel_l2)));
      }
    }
    if (rc.regressed()) ++c.regressions;
    c.rows.push_back(std::move(rc));
  }
  for (const Row& b : base.rows) {
    if (matched.count(row_key(b))) continue;
    RowComparison rc;
    rc.kernel = b.kernel;
    rc.backend = backend_name(b.backend);
    rc.point = point_words(b);
    fill_side(b, true, rc);
    c.rows.push_back(std::move(rc));
  }
  return c;
}

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
  if (only_base || only_new)
    summary += fmt::format("; {} row{} only in BASE, {} only in NEW", only_base,
                           only_base == 1 ? "" : "s", only_new);
  out += markdown ? "\n**" + summary + "**\n" : summary + "\n";
  return out;
}

}  // namespace attnbench
