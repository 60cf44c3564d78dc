// One point, from its description to its row (docs/measurement.md section 1): validation, the
// workspace query, the skip decisions of point_policy.hpp, inputs, setup, warm-up, timed
// samples, measured memory and its agreement with the query, phases, the output checks and
// the accuracy.
#pragma once

#include <vector>

#include "accuracy.hpp"
#include "backend.hpp"
#include "point_policy.hpp"
#include "results.hpp"

namespace attnbench {

// Thrown out of run_point when RunOptions::interrupted is set while a point runs; run_sweep
// stops on it and writes no row for that point.
struct SweepInterrupted {};

// The row of a point before anything is measured: kernel, backend, family, axes, the command
// that reruns it and the timing method.
Row point_row(const Point& pt, const RunOptions& o);

// Runs one point: skip checks, inputs, setup, warm-up, timed samples, measured memory,
// accuracy. Never throws for a failing point: the row says skipped or error.
Row run_point(const Point& pt, const RunOptions& o, const std::vector<Row>& done,
              BackendRunner& runner);

}  // namespace attnbench
