// Seeded random inputs for any kernel of the registry (docs/measurement.md):
// realistic scale, never zeros; LISA codes follow a Zipf-like item popularity.
// The values are a pure function of (seed, tensor, index), so they do not depend on the
// thread count or on the order of generation.
#pragma once

#include <cstdint>
#include <vector>

#include "attnbench/counter_rng.hpp"
#include "attnbench/kernel.hpp"

namespace attnbench {

// Owns host copies of a kernel's inputs; `view()` gives the Inputs a kernel reads.
struct HostInputs {
  std::vector<float> q, k, v, codebooks, wq, wk, wv, probs, conv;
  std::vector<int32_t> codes;
  Inputs view() const;
  size_t bytes() const;
};

// Zipf exponent of the item popularity behind generated codes.
constexpr double kZipfExponent = 1.0;
// Distinct items in the generated catalogue; each item has one fixed code per codebook.
constexpr int64_t kCatalogueItems = 20000;

// The inputs of a point, each float tensor rounded to the problem's precision (so the float64
// reference sees exactly the values a lower-precision kernel is given).
HostInputs make_inputs(const Problem& p, unsigned input_flags, uint64_t seed);
// Rounds every float tensor to `precision` (fp32: unchanged).
void round_to_precision(HostInputs& h, Precision precision);

// Standard normal / uniform [0, 1) values: the counter generator's frozen `inputs` derivation.
inline double counter_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  return rng::inputs_normal(seed, stream, index);
}
inline double counter_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return rng::inputs_uniform(seed, stream, index);
}

// Fills `out` with a float value that no kernel produces by accident (a signalling pattern:
// NaN with a recognisable payload), so unwritten output elements are detected.
void poison(float* out, size_t n);
bool is_poison(float x);

}  // namespace attnbench
