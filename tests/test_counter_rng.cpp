// The one counter-based generator (attnbench/counter_rng.hpp): its three frozen key
// derivations reproduce, bit for bit, the values the suite drew before they were merged into
// it (the fingerprints below were taken from the former separate generators), and the
// harness's counter_uniform / counter_normal (which delegate to the `inputs` derivation) keep
// those values.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "attnbench/counter_rng.hpp"
#include "inputs.hpp"

namespace attnbench::testing {
namespace {

// FNV-1a over the bits of f(seed, stream, index) on a grid of counters (the seeds and streams
// include 0, the all-ones seed and the streams Performer and Reformer use).
template <class F>
uint64_t fingerprint(F f) {
  uint64_t x = 1469598103934665603ULL;
  for (uint64_t seed : {0ULL, 1ULL, 1234ULL, 0xffffffffffffffffULL})
    for (uint64_t stream : {0ULL, 1ULL, 11ULL, 0x50524f4a424c4b00ULL, 0x7265666f726d6572ULL})
      for (uint64_t i = 0; i < 2000; ++i) {
        const double v = f(seed, stream, i);
        uint64_t b;
        std::memcpy(&b, &v, sizeof b);
        for (int k = 0; k < 8; ++k) {
          x ^= (b >> (8 * k)) & 0xff;
          x *= 1099511628211ULL;
        }
      }
  return x;
}

}  // namespace

TEST_CASE("the counter generator reproduces the former generators bit for bit", "[rng]") {
  CHECK(fingerprint(rng::inputs_uniform) == 0xc4069dbf6290250fULL);
  CHECK(fingerprint(rng::inputs_normal) == 0x3c8ba89e939f3d2cULL);
  CHECK(fingerprint(rng::performer_uniform) == 0xa840470b9674a481ULL);
  CHECK(fingerprint(rng::performer_normal) == 0x95fc5eed8a36b142ULL);
  CHECK(fingerprint(rng::reformer_uniform) == 0x3ccf84323763a6a5ULL);
  CHECK(fingerprint(rng::reformer_normal) == 0x98b8f9f68280f998ULL);
}

TEST_CASE("the harness's seeded inputs keep the values every stored figure was drawn from",
          "[rng]") {
  CHECK(fingerprint(counter_uniform) == 0xc4069dbf6290250fULL);
  CHECK(fingerprint(counter_normal) == 0x3c8ba89e939f3d2cULL);
}

TEST_CASE("uniforms stay in their intervals at the extreme bit patterns", "[rng]") {
  CHECK(rng::unit_closed_open(0) == 0.0);
  CHECK(rng::unit_closed_open(~0ULL) < 1.0);
  CHECK(rng::unit_open_closed(0) > 0.0);
  CHECK(rng::unit_open_closed(~0ULL) == 1.0);
  CHECK(std::isfinite(rng::box_muller(rng::unit_open_closed(0), 0.5)));
}

}  // namespace attnbench::testing
