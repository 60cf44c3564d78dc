#include "sweep.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace attnbench {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The options with this machine's sgemm rate filled in when a cpu point may need the lower
// bound of its time and no rate was given.
RunOptions with_sgemm_rate(RunOptions o, const std::vector<Point>& points) {
  const bool any_cpu = std::any_of(points.begin(), points.end(),
                                   [](const Point& p) { return p.backend == Backend::cpu; });
  if (o.max_point_seconds > 0 && !(o.cpu_sgemm_gflops > 0) && any_cpu)
    o.cpu_sgemm_gflops = measure_sgemm_gflops();
  return o;
}

// The points `file` has no ok or skipped row of, in run order.
std::vector<const Point*> pending_points(const std::vector<Point>& points, const ResultsFile& file) {
  std::set<std::string> have;
  for (const Row& r : file.rows)
    if (r.status == "ok" || r.status == "skipped") have.insert(row_key(r));
  std::vector<const Point*> todo;
  for (const Point& pt : points)
    if (!have.count(pt.key())) todo.push_back(&pt);
  return todo;
}

// The row of one point on its backend's runner (made on first use); an exception outside the
// point (no runner) makes an error row. nullopt: the sweep was interrupted.
std::optional<Row> run_one(const Point& pt, const RunOptions& o, const std::vector<Row>& done,
                           std::map<Backend, std::unique_ptr<BackendRunner>>& runners) {
  try {
    auto& runner = runners[pt.backend];
    if (!runner) runner = make_runner(pt.backend, RunnerOptions{o.cuda_warm});
    return run_point(pt, o, done, *runner);
  } catch (const SweepInterrupted&) {
    return std::nullopt;
  } catch (const std::exception& e) {
    Row row = point_row(pt, o);
    row.status = "error";
    row.reason = e.what();
    return row;
  }
}

// Appends the row, or replaces the error row of an earlier run of the same point.
const Row& store_row(ResultsFile& file, Row row) {
  const std::string key = row_key(row);
  size_t at = 0;
  while (at < file.rows.size() && row_key(file.rows[at]) != key) ++at;
  if (at < file.rows.size())
    file.rows[at] = std::move(row);
  else
    file.rows.push_back(std::move(row));
  return file.rows[at];
}

SweepProgress progress_at(size_t i, size_t total, const Point& pt, Clock::time_point t0) {
  SweepProgress pr;
  pr.index = i;
  pr.total = total;
  pr.point = &pt;
  pr.elapsed_s = seconds_since(t0);
  if (i > 0) pr.eta_s = pr.elapsed_s / double(i) * double(total - i);
  return pr;
}

}  // namespace

size_t run_sweep(const std::vector<Point>& points, const RunOptions& opt, ResultsFile& file,
                 const std::string& out_path,
                 const std::function<void(const SweepProgress&)>& progress) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const RunOptions o = with_sgemm_rate(opt, points);
  const std::vector<const Point*> todo = pending_points(points, file);
  std::map<Backend, std::unique_ptr<BackendRunner>> runners;
  const auto t0 = Clock::now();
  size_t ran = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    SweepProgress pr = progress_at(i, todo.size(), *todo[i], t0);
    if (progress) progress(pr);
    if (o.interrupted && o.interrupted->load()) break;
    std::optional<Row> row = run_one(*todo[i], o, file.rows, runners);
    if (!row) break;
    if (row->status == "ok" && row->time) fill_roofline(*row, file.environment.calibration);
    const Row& stored = store_row(file, std::move(*row));
    ++ran;
    fill_vs_vanilla(file);
    if (!out_path.empty()) write_results(out_path, file);
    if (progress) {
      pr.finished = &stored;
      pr.elapsed_s = seconds_since(t0);
      pr.eta_s = pr.elapsed_s / double(i + 1) * double(todo.size() - i - 1);
      progress(pr);
    }
  }
  fill_vs_vanilla(file);
  return ran;
}

}  // namespace attnbench
