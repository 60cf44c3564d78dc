// The sweep loop: every point of an expanded sweep (sweep_spec.hpp) run in order on its
// backend (point_runner.hpp), each row written to the results file as it finishes. This header
// also brings in the pieces a sweep is made of, for the tools and tests that use them:
//   sweep_spec.hpp    the sweep file, overrides, expansion into points, shards
//   point_policy.hpp  run options, timing plan, memory and time limits (skip decisions)
//   point_runner.hpp  one point from setup to row
//   accuracy.hpp      the correctness and approximation checks
//   table.hpp         the table printed after a sweep
//   calibrate.hpp     this machine's sgemm rate behind the lower bound of a point's time
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "accuracy.hpp"
#include "calibrate.hpp"
#include "point_policy.hpp"
#include "point_runner.hpp"
#include "results.hpp"
#include "sweep_spec.hpp"
#include "table.hpp"

namespace attnbench {

struct SweepProgress {
  size_t index = 0;   // 0-based index of the point about to run
  size_t total = 0;   // points to run in this invocation
  const Point* point = nullptr;
  const Row* finished = nullptr;  // the row just finished (null when starting a point)
  double elapsed_s = 0;
  double eta_s = -1;  // < 0: unknown
};

// Runs every point of `points` not already in `file` (rows with status ok or skipped are
// kept; an error row is run again and replaced), appending rows to `file` and, when
// `out_path` is not empty, rewriting it atomically after each row. Returns the number of
// points run.
size_t run_sweep(const std::vector<Point>& points, const RunOptions& o, ResultsFile& file,
                 const std::string& out_path,
                 const std::function<void(const SweepProgress&)>& progress = {});

}  // namespace attnbench
