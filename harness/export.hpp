// What the PyTorch peers (peers/, README "PyTorch peers") ask the tool for, so that Python
// never re-implements the sweep expansion, the input generator or the float64 references:
//   attnbench sweep ... --dry-run --json   the expanded points, timing and environment
//   attnbench export --kernel K --axis name=value ... --out DIR
//                                          one point's seeded inputs (eval's .npy layout), the
//                                          float64 reference of its checked rows, point.json
#pragma once

#include <string>
#include <vector>

#include "results.hpp"
#include "sweep.hpp"

namespace attnbench {

// The plan of a dry run as JSON: name, vanilla_kernel, timing per backend (after the
// command-line overrides), max_point_seconds, threads, environment, and one object per point
// (kernel, backend, family, is_vanilla, inputs, group, axes as a results row writes them).
ojson sweep_plan_json(const SweepSpec& s, const RunOptions& o, const std::vector<Point>& points,
                      const Environment& env);

// The cpu point of `kernel` at `axes` ("name=value", one value each; unset axes default as
// in a sweep file). Throws InvalidProblem for an unknown kernel or axis, or several values.
Point export_point(const std::string& kernel, const std::vector<std::string>& axes);

// Writes into `dir` (created): the point's seeded inputs (make_inputs) as `attnbench eval`
// reads them (q, k, v, codes, codebooks, wq/wk/wv, probs, conv: only those the kernel reads);
// rows.npy, int64 [rows, 2] of (sequence b * heads + h, position), the rows of
// correctness_rows(p); reference.npy, float64 [rows, head_dim], the kernel's float64
// reference on them; point.json (kernel, family, axes, flops, min_bytes, inputs_bytes,
// outputs_bytes, seed, files). Returns the names of the files written.
std::vector<std::string> export_point_files(const Point& pt, const std::string& dir);

// `attnbench export`: the two steps above and a one-line summary on stdout.
int run_export_command(const std::string& kernel, const std::vector<std::string>& axes,
                       const std::string& dir);

}  // namespace attnbench
