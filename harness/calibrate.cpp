#include "calibrate.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <cblas.h>
#include <omp.h>

#include "inputs.hpp"

namespace attnbench {

namespace {
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Median sgemm rate in GFLOP/s for an n x n x n product. one_thread: the product runs on
// thread 0 of a parallel region, where the OpenMP build of OpenBLAS runs serially; changing
// OpenBLAS's global thread count instead disturbs the timing of everything after it.
double sgemm_rate(int64_t n, int reps, bool one_thread) {
  SgemmProduct product(n);
  std::vector<double> secs;
  for (int r = 0; r < reps + 1; ++r) {
    double s = 0;
    if (one_thread && omp_get_max_threads() > 1) {
#pragma omp parallel num_threads(2)
      if (omp_get_thread_num() == 0) {
        const auto t0 = Clock::now();
        product.run();
        s = seconds_since(t0);
      }
    } else {
      const auto t0 = Clock::now();
      product.run();
      s = seconds_since(t0);
    }
    if (r > 0) secs.push_back(s);  // the first run warms up
  }
  return product.flop() / median(secs) / 1e9;
}

// Copy bandwidth in GB/s (read + write bytes) over buffers of `bytes`, all threads.
double copy_rate(size_t bytes, int reps, int threads) {
  const size_t n = bytes / sizeof(float);
  std::vector<float> src(n), dst(n);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i) {
    src[size_t(i)] = float(i & 1023);
    dst[size_t(i)] = 0.f;  // touch every page before timing
  }
  std::vector<double> secs;
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      const size_t t = size_t(omp_get_thread_num()), nt = size_t(omp_get_num_threads());
      const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
      std::memcpy(dst.data() + lo, src.data() + lo, (hi - lo) * sizeof(float));
    }
    if (r > 0) secs.push_back(seconds_since(t0));
  }
  return 2.0 * double(n * sizeof(float)) / median(secs) / 1e9;
}
}  // namespace

SgemmProduct::SgemmProduct(int64_t n, int outputs)
    : n_(n), a_(size_t(n * n)), b_(size_t(n * n)), c_(size_t(n * n) * size_t(std::max(outputs, 1))) {
  for (size_t i = 0; i < a_.size(); ++i) {
    a_[i] = float(counter_normal(7, 1, i));
    b_[i] = float(counter_normal(7, 2, i));
  }
}

void SgemmProduct::run(int output) {
  const int n = int(n_);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a_.data(), n, b_.data(), n,
              0.0f, c_.data() + size_t(output) * size_t(n_ * n_), n);
}

double measure_sgemm_gflops() {
  // Best of a few runs of one all-threads product and of one product per thread in parallel
  // (OpenBLAS runs serially inside a parallel region), and never below 16 GFLOP/s per thread:
  // the rate must not understate the machine on a loaded host, or the lower bound built on it
  // would skip points that can run.
  const int threads = omp_get_max_threads();
  SgemmProduct product(384, threads);
  double best = 16.0 * threads;
  for (int r = 0; r < 4; ++r) {  // r = 0 warms up
    auto t0 = Clock::now();
    product.run();
    double s = seconds_since(t0);
    if (r > 0 && s > 0) best = std::max(best, product.flop() / s / 1e9);
    t0 = Clock::now();
#pragma omp parallel
    product.run(omp_get_thread_num());
    s = seconds_since(t0);
    if (r > 0 && s > 0) best = std::max(best, threads * product.flop() / s / 1e9);
  }
  return best;
}

Calibration calibrate(bool quick) {
  const auto t0 = Clock::now();
  Calibration c;
  c.threads = omp_get_max_threads();
  c.sgemm_n = quick ? 256 : 2048;
  c.copy_bytes = quick ? (size_t(16) << 20) : (size_t(512) << 20);
  const int reps = quick ? 2 : 5;
  c.sgemm_gflops = sgemm_rate(c.sgemm_n, reps, false);
  c.sgemm_gflops_one_thread = sgemm_rate(c.sgemm_n, reps, true);
  c.bandwidth_gbs = copy_rate(c.copy_bytes, reps, c.threads);
  c.seconds = seconds_since(t0);
  return c;
}

nlohmann::json to_json(const Calibration& c) {
  return {{"sgemm_gflops", c.sgemm_gflops},
          {"sgemm_gflops_one_thread", c.sgemm_gflops_one_thread},
          {"bandwidth_gbs", c.bandwidth_gbs},
          {"threads", c.threads},
          {"sgemm_n", c.sgemm_n},
          {"copy_bytes", c.copy_bytes},
          {"seconds", c.seconds}};
}

Calibration calibration_from_json(const nlohmann::json& j) {
  Calibration c;
  if (!j.is_object()) return c;
  c.sgemm_gflops = j.value("sgemm_gflops", 0.0);
  c.sgemm_gflops_one_thread = j.value("sgemm_gflops_one_thread", 0.0);
  c.bandwidth_gbs = j.value("bandwidth_gbs", 0.0);
  c.threads = j.value("threads", 0);
  c.sgemm_n = j.value("sgemm_n", int64_t(0));
  c.copy_bytes = j.value("copy_bytes", size_t(0));
  c.seconds = j.value("seconds", 0.0);
  return c;
}

Roofline roofline_at(double flops, double bytes, double time_ms, double gflops, double gbs) {
  Roofline r;
  if (!(gflops > 0) || !(gbs > 0)) return r;
  const double compute_ms = flops / (gflops * 1e9) * 1e3;
  const double memory_ms = bytes / (gbs * 1e9) * 1e3;
  r.bound = compute_ms >= memory_ms ? "compute" : "memory";
  r.floor_ms = std::max(compute_ms, memory_ms);
  r.pct_of_peak = time_ms > 0 ? 100.0 * r.floor_ms / time_ms : 0.0;
  return r;
}

Roofline roofline(double flops, double bytes, double time_ms, const Calibration& c) {
  if (!c.valid()) return {};
  return roofline_at(flops, bytes, time_ms, c.sgemm_gflops, c.bandwidth_gbs);
}

namespace {
// The (GFLOP/s, GB/s) ceilings a row is read against, or nullopt.
std::optional<std::pair<double, double>> ceilings_for(const Row& r, const ojson& calibration) {
  if (r.backend == Backend::cpu) {
    const Calibration c = calibration_from_json(calibration);
    if (!c.valid()) return std::nullopt;
    return std::pair{c.sgemm_gflops, c.bandwidth_gbs};
  }
  const auto g = gpu_calibration_from_json(calibration);
  if (!g || !(g->gemm_rate(r.problem.precision) > 0)) return std::nullopt;
  return std::pair{g->gemm_rate(r.problem.precision), g->bandwidth_gbs};
}
}  // namespace

Roofline roofline_for(const Row& r, const ojson& calibration) {
  if (r.status != "ok" || !r.time) return {};
  const auto c = ceilings_for(r, calibration);
  if (!c) return {};
  return roofline_at(r.flops, r.min_bytes, r.time->median, c->first, c->second);
}

void fill_roofline(Row& r, const ojson& calibration) {
  const Roofline rf = roofline_for(r, calibration);
  if (rf.bound.empty()) return;
  r.roofline_bound = rf.bound;
  r.floor_ms = rf.floor_ms;
  r.pct_of_peak = rf.pct_of_peak;
  const auto c = ceilings_for(r, calibration);
  for (PhaseRow& ph : r.phases) {
    if (!(ph.flops > 0 || ph.bytes > 0) || !(ph.ms > 0)) continue;
    const Roofline prf = roofline_at(ph.flops, ph.bytes, ph.ms, c->first, c->second);
    ph.bound = prf.bound;
    ph.pct_of_peak = prf.pct_of_peak;
  }
}

}  // namespace attnbench
