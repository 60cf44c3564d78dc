// Statistics over timing samples: summaries (median, quartiles) and the Mann-Whitney U test
// `attnbench compare` and the CI performance gates use to tell a real change from noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace attnbench::stats {

// Quantile q in [0, 1] of sorted values with linear interpolation between order statistics
// (NumPy's default, "linear"). NaN for an empty input.
double quantile_sorted(const std::vector<double>& sorted, double q);

struct Summary {
  double median = 0, min = 0, max = 0, p25 = 0, p75 = 0, mean = 0;
  int64_t count = 0;
};
// NaN figures and count 0 for an empty input.
Summary summarize(std::vector<double> samples);

// Two-sided Mann-Whitney U test of x against y, normal approximation with the tie correction
// of the variance and a continuity correction of 0.5 (as SciPy's mannwhitneyu with
// method="asymptotic", use_continuity=True).
struct MannWhitney {
  double u_x = 0;       // U statistic of x: pairs (xi, yj) with xi > yj, ties counted 1/2
  double u_y = 0;       // n_x n_y - u_x
  double z = 0;         // standardized max(u_x, u_y), continuity-corrected (>= 0)
  double p_value = 1;   // two-sided; 1 when either sample is empty or every value ties
  size_t n_x = 0, n_y = 0;
};
MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y);

// Smallest two-sided p-value the test can reach with samples of these sizes (all of x above
// all of y); a change cannot be significant at alpha below it.
double mann_whitney_min_p(size_t n_x, size_t n_y);

// Standard normal upper tail P(Z > z).
double normal_sf(double z);

}  // namespace attnbench::stats
