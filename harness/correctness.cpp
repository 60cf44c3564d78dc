#include "correctness.hpp"

#include <fmt/format.h>

namespace attnbench {

void judge_correctness(Row& row) {
  if (!row.correctness_rel_l2) return;
  const Problem& p = row.problem;
  const double tol = correctness_tolerance(p.precision, p.seq_len);
  row.correctness_tolerance = tol;
  if (*row.correctness_rel_l2 > tol)
    row.warnings.push_back(fmt::format(
        "correctness error {:.3g} exceeds the {} tolerance {:.3g} at N = {}: the output is wrong "
        "beyond the precision's rounding", *row.correctness_rel_l2, precision_name(p.precision),
        tol, p.seq_len));
}

}  // namespace attnbench
