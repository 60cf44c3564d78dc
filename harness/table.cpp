#include "table.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace attnbench {

namespace {

using Cells = std::vector<std::vector<std::string>>;

std::string status_cell(const Row& r) {
  std::string st = r.status;
  if (!r.reason.empty()) {
    std::string reason = r.reason;
    if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
    st += ": " + reason;
  } else if (r.memory_agrees && !*r.memory_agrees) {
    st += " (memory: measured differs)";
  }
  return st;
}

// The median, marked when the row is noisy (noise.hpp) even after its retries.
std::string median_cell(const Row& r) {
  if (!r.time) return "-";
  return fmt::format("{}{:.3f}", r.noisy ? kNoisyMark : "", r.time->median);
}

std::vector<std::string> row_cells(const Row& r) {
  auto sci = [](const std::optional<double>& v) { return v ? fmt::format("{:.1e}", *v) : "-"; };
  return {r.kernel,
          backend_name(r.backend),
          describe_point(r.problem),
          median_cell(r),
          r.pct_of_peak ? fmt::format("{:.0f} {}", *r.pct_of_peak, r.roofline_bound.substr(0, 3)) : "-",
          fmt::format("{:.1f}", double(r.memory.peak_bytes()) / 1e6),
          r.vs_vanilla ? fmt::format("{:.2f}x", r.vs_vanilla->speedup) : "-",
          r.vs_vanilla ? fmt::format("{:.2f}x", r.vs_vanilla->memory_ratio) : "-",
          sci(r.correctness_rel_l2),
          sci(r.approx_rel_l2),
          status_cell(r)};
}

// Columns padded to their widest cell (the figures right-aligned), a rule under the header.
std::string layout(const Cells& cells) {
  std::vector<size_t> w(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::string out;
  for (size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < cells[r].size(); ++i) {
      const bool right = i >= 3 && i <= 9;
      const std::string& s = cells[r][i];
      const std::string pad(w[i] - s.size(), ' ');
      line += (i ? "  " : "") + (right ? pad + s : (i + 1 < cells[r].size() ? s + pad : s));
    }
    out += line + "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t x : w) total += x + 2;
      out += std::string(total - 2, '-') + "\n";
    }
  }
  return out;
}

}  // namespace

std::string results_table(const ResultsFile& f) {
  Cells cells;
  cells.push_back({"kernel", "backend", "point", "median ms", "% peak", "peak MB", "speedup",
                   "mem ratio", "correct", "approx", "status"});
  for (const Row& r : f.rows) cells.push_back(row_cells(r));
  const auto noisy =
      std::count_if(f.rows.begin(), f.rows.end(), [](const Row& r) { return r.noisy; });
  if (!noisy) return layout(cells);
  return layout(cells) + fmt::format("{} {} noisy row{}: spread or contention above the thresholds "
                                     "after the retries (the row's warnings say which)\n",
                                     kNoisyMark, noisy, noisy == 1 ? "" : "s");
}

}  // namespace attnbench
