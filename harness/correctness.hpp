// Judging a row's correctness error against the bound of its precision
// (problem.hpp correctness_tolerance; docs/measurement.md section 6): a lower-precision row is
// correct when it stays under its own, looser tolerance, not under float32's.
#pragma once

#include "results.hpp"

namespace attnbench {

// For a row with a correctness error: sets correctness_tolerance for its precision and
// reduction length (N), and adds a warning when the error exceeds it.
void judge_correctness(Row& row);

}  // namespace attnbench
