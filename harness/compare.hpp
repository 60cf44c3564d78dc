// `attnbench compare BASE NEW`: rows matched by kernel, backend and axes; time change judged
// with a Mann-Whitney U test over the samples, memory change exact, a row's correctness error
// against its own correctness_tolerance (its precision's at its N; docs/methods.md section 5).
// Used by CI performance gates too.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "results.hpp"

namespace attnbench {

struct CompareOptions {
  double threshold = 0.10;  // relative change that counts (time and peak memory)
  double alpha = 0.05;      // significance of the time change
  bool require_all = false;  // a row of BASE missing from NEW is a regression
  std::string base_name = "BASE", new_name = "NEW";  // the files, for messages
};

// float32 rounding level: a correctness error above it is a failed kernel
// (docs/methods.md section 5). Only for rows without their own correctness_tolerance (files
// of schema 1); every other row is judged against its own.
constexpr double kCorrectnessTolerance = 1e-4;

struct RowComparison {
  std::string kernel, backend, point;   // point: the axes in words
  std::string base_status, new_status;  // "" when the row is missing on that side
  std::optional<double> base_median_ms, new_median_ms;
  std::optional<double> time_ratio;     // new median / base median
  std::optional<double> p_value;        // Mann-Whitney, two-sided
  bool time_judged_on_median = false;   // too few samples for the test to reach alpha
  std::optional<double> base_peak_bytes, new_peak_bytes;
  std::optional<double> base_correctness, new_correctness;
  std::optional<double> base_approx, new_approx;
  bool time_regressed = false, time_improved = false;
  bool memory_regressed = false, memory_improved = false;
  bool accuracy_regressed = false;
  bool status_regressed = false;        // ran before, does not now
  bool missing_regressed = false;       // in BASE, not in NEW, under require_all
  std::vector<std::string> notes;
  bool regressed() const {
    return time_regressed || memory_regressed || accuracy_regressed || status_regressed ||
           missing_regressed;
  }
  std::string verdict() const;          // "regressed: time +52 %", "ok", "faster", "new", ...
};

struct Comparison {
  std::vector<RowComparison> rows;
  std::vector<std::string> environment_warnings;  // the two runs ran on different machines
  size_t regressions = 0;
  size_t matched = 0;
  size_t missing = 0;  // rows of BASE that NEW lacks
  CompareOptions options;
};

// Every figure comes from the stored samples, never from the stored summary; both files are
// first checked with check_time_samples (InvalidProblem on a bad file).
Comparison compare_results(const ResultsFile& base, const ResultsFile& next,
                           const CompareOptions& o = {});
// Each row's stored median, min, max, p25, p75, mean and count must be those of its samples
// (within the samples' nanosecond rounding), every sample positive and finite, every ok row
// timed, a stored correctness_tolerance positive, and no point stored twice. Throws
// InvalidProblem("<name>: row <i> (<point>): ...").
void check_time_samples(const ResultsFile& f, const std::string& name);
// A fixed-width table, or a Markdown table for a CI comment.
std::string comparison_report(const Comparison& c, bool markdown);

// "10%" -> 0.10, "0.1" -> 0.1; throws InvalidProblem.
double parse_fraction(const std::string& text, const std::string& option);

}  // namespace attnbench
