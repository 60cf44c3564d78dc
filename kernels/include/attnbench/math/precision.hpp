// Rounding float32 values to the arithmetic precisions of the `precision` axis, bit-exactly as
// the GPU converts them (round to nearest, ties to even; TF32 keeps 10 mantissa bits, bf16 7,
// fp16 10 with its narrower exponent range). The harness rounds a point's inputs with these
// before the float64 reference sees them, so a lower-precision row is judged only on the
// rounding its own computation adds (docs/methods.md section 5). Host and device share them.
#pragma once

#include <cstdint>
#include <cstring>

#include "attnbench/math/hd.hpp"

namespace attnbench::math {

AB_HD uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

AB_HD float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

AB_HD bool is_nan_bits(uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }

// Keeps the top (23 - drop) mantissa bits, rounding to nearest even; NaN stays NaN and a carry
// into the exponent rounds up to the next binade (or to infinity) as the hardware does.
AB_HD float round_mantissa(float x, int drop) {
  const uint32_t u = float_bits(x);
  if (is_nan_bits(u)) return x;
  const uint32_t half = 1u << (drop - 1);
  const uint32_t lsb = (u >> drop) & 1u;
  const uint32_t rounded = (u + half - 1u + lsb) & ~((1u << drop) - 1u);
  return bits_float(rounded);
}

AB_HD float round_to_tf32(float x) { return round_mantissa(x, 13); }
AB_HD float round_to_bf16(float x) { return round_mantissa(x, 16); }

// bf16 storage: the top 16 bits of the (rounded) float32 pattern.
AB_HD uint16_t float_to_bf16_bits(float x) { return uint16_t(float_bits(round_to_bf16(x)) >> 16); }
AB_HD float bf16_bits_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

// IEEE binary16 from float32, round to nearest even, with subnormals and overflow to infinity.
AB_HD uint16_t float_to_half_bits(float x) {
  const uint32_t u = float_bits(x);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) return uint16_t(sign | 0x7e00u);            // NaN
  if (mag >= 0x477ff000u) return uint16_t(sign | 0x7c00u);           // rounds past 65504
  if (mag >= 0x38800000u) {                                          // normal half
    const uint32_t lsb = (mag >> 13) & 1u;
    const uint32_t r = mag + 0xfffu + lsb;
    return uint16_t(sign | ((r - 0x38000000u) >> 13));
  }
  if (mag < 0x33000000u) return uint16_t(sign);                      // below half of 2^-24
  // subnormal half: value = m * 2^-24 with m < 1024
  const int exp = int(mag >> 23);                                    // 102 .. 112
  const uint32_t mant = (mag & 0x7fffffu) | 0x800000u;
  const int shift = 126 - exp;                                       // 14 .. 24
  const uint32_t halfway = 1u << (shift - 1);
  const uint32_t rest = mant & ((1u << shift) - 1u);
  uint32_t m = mant >> shift;
  if (rest > halfway || (rest == halfway && (m & 1u))) ++m;
  return uint16_t(sign | m);
}

AB_HD float half_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  // subnormal or zero: mant * 2^-24, exact in float32
  const float v = float(mant) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

AB_HD float round_to_fp16(float x) { return half_bits_to_float(float_to_half_bits(x)); }

}  // namespace attnbench::math
