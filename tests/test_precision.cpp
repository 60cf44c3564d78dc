// The precision axis: rounding to TF32, bf16 and fp16 bit-exactly as the GPU converts (round to
// nearest, ties to even), the derived correctness tolerances, and inputs rounded before the
// float64 reference sees them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "attnbench/math/precision.hpp"
#include "attnbench/problem.hpp"
#include "inputs.hpp"

namespace attnbench {
namespace {

// The nearest value with `keep` mantissa bits, ties to even, computed in double from the two
// neighbours that bracket x (an independent statement of what round_mantissa implements).
float nearest_with_mantissa(float x, int keep) {
  if (x == 0 || !std::isfinite(x)) return x;
  int e = 0;
  std::frexp(double(x), &e);
  e = std::max(e, -125);  // float32 subnormals share the smallest normal exponent's spacing
  const double ulp = std::ldexp(1.0, e - 1 - keep);
  const double lo = std::floor(double(x) / ulp) * ulp, hi = lo + ulp;
  const double dlo = double(x) - lo, dhi = hi - double(x);
  if (dlo < dhi) return float(lo);
  if (dhi < dlo) return float(hi);
  const bool lo_even = std::fmod(std::fabs(lo / ulp), 2.0) == 0.0;
  return float(lo_even ? lo : hi);
}

std::vector<float> awkward_floats() {
  std::vector<float> v = {0.f, -0.f, 1.f, -1.f, 1.0009765625f, 65504.f, 65519.f, 65520.f,
                          6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 3.0e-08f,
                          1e-10f, 3.4e38f, -7.5e-6f};
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const float x = math::bits_float(bits(rng));
    if (std::isfinite(x)) v.push_back(x);
  }
  // exact halfway cases: a kept mantissa plus half an ulp of each format
  for (uint32_t m = 0; m < 64; ++m) {
    v.push_back(math::bits_float(0x3f800000u | (m << 13) | (1u << 12)));  // tf32 ties
    v.push_back(math::bits_float(0x3f800000u | (m << 16) | (1u << 15)));  // bf16 ties
  }
  return v;
}

}  // namespace

TEST_CASE("TF32 and bf16 rounding is nearest-even on the kept mantissa", "[precision]") {
  for (float x : awkward_floats()) {
    INFO(x);
    if (std::fabs(x) < 3e38f) {
      CHECK(math::round_to_tf32(x) == nearest_with_mantissa(x, 10));
      CHECK(math::round_to_bf16(x) == nearest_with_mantissa(x, 7));
    }
    CHECK(math::bf16_bits_to_float(math::float_to_bf16_bits(x)) == math::round_to_bf16(x));
  }
  CHECK(std::isnan(math::round_to_bf16(std::nanf(""))));
  CHECK(std::isinf(math::round_to_bf16(3.4e38f)));  // carries past the largest bf16
}

TEST_CASE("fp16 conversion matches the compiler's _Float16 for every class of value",
          "[precision]") {
  for (float x : awkward_floats()) {
    INFO(x);
    const _Float16 want = static_cast<_Float16>(x);
    uint16_t want_bits;
    std::memcpy(&want_bits, &want, sizeof want_bits);
    CHECK(math::float_to_half_bits(x) == want_bits);
    CHECK(math::round_to_fp16(x) == static_cast<float>(want));
  }
  for (uint32_t h = 0; h < 0x10000u; ++h) {  // every half converts back exactly
    const float f = math::half_bits_to_float(uint16_t(h));
    if (std::isnan(f)) continue;
    CHECK(math::float_to_half_bits(f) == h);
  }
}

TEST_CASE("tolerances: fp32's is fixed, the others follow the unit roundoff", "[precision]") {
  CHECK(correctness_tolerance(Precision::fp32, 1) == 1e-5);
  CHECK(correctness_tolerance(Precision::fp32, 1 << 20) == 1e-5);
  for (Precision p : {Precision::tf32, Precision::bf16, Precision::fp16}) {
    INFO(precision_name(p));
    CHECK(correctness_tolerance(p, 64) > 4 * unit_roundoff(p));
    CHECK(correctness_tolerance(p, 1 << 16) > correctness_tolerance(p, 64));
    CHECK(correctness_tolerance(p, 64) > correctness_tolerance(Precision::fp32, 64));
  }
  CHECK(correctness_tolerance(Precision::bf16, 64) > correctness_tolerance(Precision::fp16, 64));
  CHECK(storage_bytes(Precision::bf16) == 2);
  CHECK(storage_bytes(Precision::tf32) == 4);
  for (Precision p : kAllPrecisions) CHECK(parse_precision(precision_name(p)) == p);
  CHECK_FALSE(parse_precision("fp8"));
}

TEST_CASE("inputs at a lower precision are the fp32 inputs rounded", "[precision]") {
  Problem p;
  p.seq_len = 33;
  p.head_dim = 8;
  const HostInputs full = make_inputs(p, kInputQKV, 5);
  for (Precision pr : {Precision::tf32, Precision::bf16, Precision::fp16}) {
    p.precision = pr;
    const HostInputs low = make_inputs(p, kInputQKV, 5);
    REQUIRE(low.q.size() == full.q.size());
    size_t changed = 0;
    for (size_t i = 0; i < full.q.size(); ++i) {
      CHECK(low.q[i] == round_to(pr, full.q[i]));
      changed += low.q[i] != full.q[i];
    }
    CHECK(changed > full.q.size() / 2);  // the rounding did happen
  }
  CHECK(input_sizes(p, kInputQKV).bytes() == 3 * 33 * 8 * 2);  // fp16 q, k, v: 2 bytes each
}

}  // namespace attnbench
