#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace attnbench::stats {

double quantile_sorted(const std::vector<double>& v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = std::clamp(q, 0.0, 1.0) * double(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

Summary summarize(std::vector<double> s) {
  Summary r;
  if (s.empty()) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.median = r.min = r.max = r.p25 = r.p75 = r.mean = nan;
    return r;
  }
  std::sort(s.begin(), s.end());
  r.count = int64_t(s.size());
  r.min = s.front();
  r.max = s.back();
  r.median = quantile_sorted(s, 0.5);
  r.p25 = quantile_sorted(s, 0.25);
  r.p75 = quantile_sorted(s, 0.75);
  r.mean = std::accumulate(s.begin(), s.end(), 0.0) / double(s.size());
  return r;
}

double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y) {
  MannWhitney r;
  r.n_x = x.size();
  r.n_y = y.size();
  if (x.empty() || y.empty()) return r;
  // ranks of the pooled sample, ties sharing their mean rank
  struct Item {
    double v;
    bool from_x;
  };
  std::vector<Item> all;
  all.reserve(x.size() + y.size());
  for (double v : x) all.push_back({v, true});
  for (double v : y) all.push_back({v, false});
  std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.v < b.v; });
  const double n = double(all.size());
  double rank_sum_x = 0, tie_term = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].v == all[i].v) ++j;
    const double t = double(j - i);
    const double mean_rank = (double(i + 1) + double(j)) / 2.0;
    for (size_t k = i; k < j; ++k)
      if (all[k].from_x) rank_sum_x += mean_rank;
    tie_term += t * t * t - t;
    i = j;
  }
  const double nx = double(x.size()), ny = double(y.size());
  r.u_x = rank_sum_x - nx * (nx + 1) / 2.0;
  r.u_y = nx * ny - r.u_x;
  const double mu = nx * ny / 2.0;
  const double var = nx * ny / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
  if (!(var > 0)) return r;  // every value ties: no evidence of a difference
  const double u = std::max(r.u_x, r.u_y);
  r.z = std::max(0.0, (u - mu - 0.5) / std::sqrt(var));
  r.p_value = std::min(1.0, 2.0 * normal_sf(r.z));
  return r;
}

double mann_whitney_min_p(size_t n_x, size_t n_y) {
  if (!n_x || !n_y) return 1.0;
  std::vector<double> x(n_x), y(n_y);
  std::iota(x.begin(), x.end(), double(n_y));
  std::iota(y.begin(), y.end(), 0.0);
  return mann_whitney_u(x, y).p_value;
}

}  // namespace attnbench::stats
