// The roofline arithmetic behind pct_of_peak, and a quick calibration's sanity (it measures;
// nothing here asserts a speed).
#include <catch2/catch.hpp>

#include <cmath>

#include "calibrate.hpp"

namespace attnbench::testing {

TEST_CASE("roofline picks the binding ceiling and the percentage of it", "[calibrate]") {
  Calibration c;
  c.sgemm_gflops = 100;   // 1e11 FLOP/s
  c.bandwidth_gbs = 10;   // 1e10 B/s: balance 10 FLOP per byte
  // 1e9 FLOPs over 1e7 bytes (100 FLOP/B): compute-bound, floor 10 ms
  Roofline r = roofline(1e9, 1e7, 20.0, c);
  CHECK(r.bound == "compute");
  CHECK(r.floor_ms == Approx(10.0));
  CHECK(r.pct_of_peak == Approx(50.0));
  // 1e8 FLOPs over 1e9 bytes (0.1 FLOP/B): memory-bound, floor 100 ms
  r = roofline(1e8, 1e9, 125.0, c);
  CHECK(r.bound == "memory");
  CHECK(r.floor_ms == Approx(100.0));
  CHECK(r.pct_of_peak == Approx(80.0));
  // without a calibration there is no roofline
  CHECK(roofline(1e9, 1e7, 20.0, Calibration{}).bound.empty());
}

TEST_CASE("a quick calibration measures positive, finite ceilings and round-trips JSON",
          "[calibrate]") {
  const Calibration c = calibrate(true);
  CHECK(c.valid());
  CHECK(std::isfinite(c.sgemm_gflops));
  CHECK(c.sgemm_gflops_one_thread > 0);
  CHECK(std::isfinite(c.bandwidth_gbs));
  const Calibration back = calibration_from_json(to_json(c));
  CHECK(back.sgemm_gflops == c.sgemm_gflops);
  CHECK(back.bandwidth_gbs == c.bandwidth_gbs);
  CHECK(back.threads == c.threads);
}

}  // namespace attnbench::testing
