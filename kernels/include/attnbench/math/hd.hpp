// AB_HD marks arithmetic that both the CPU kernels and the CUDA kernels evaluate: under nvcc
// it is __host__ __device__, otherwise a plain inline function (one source per
// formula). What is shared, exactly: each formula's source, its operations and their
// order, which the CPU tests (and the CPU emulation of the CUDA pipelines) run. Not shared:
//  - exp_f itself: the host evaluates exp_host below (within 2 ulp of exp), the device CUDA's
//    expf (documented: 2 ulp), so host and device differ in the last bits after any exp;
//  - sums the host splits into lanes for SIMD (lisa_weights' 16 partial sums) add in
//    another order on the device, where the function says so;
//  - the CPU linear family's AVX-512 row helpers (cpu/linear_simd.hpp: exp16, elu16 and the
//    feature maps, softmax and FAVOR+ finish built on them) use their own vector exp and
//    reduction order; tests/test_linear_simd.cpp pins them to the functions here over 120k
//    arguments and the edges (0, -0, the underflow threshold, -inf): within 5 ulp elementwise
//    (measured: exp 3, elu 2) and 8 ulp for the maps with a sum (LinRec 4, softmax 7), and
//    bit-identical without AVX-512.
//    Efficient attention's causal running normalisation there divides by a reciprocal
//    estimate and one Newton step (within 2 ulp of the quotient, pinned by the same file).
// The CPU LISA kernels' AVX-512 helpers (cpu/lisa_simd.hpp) are the same to the bit as
// lisa_weights and argmax_row here (tests/test_lisa_simd.cpp).
#pragma once

#if defined(__CUDACC__)
#define AB_HD __host__ __device__ inline
#else
#define AB_HD inline
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

namespace attnbench::math {

AB_HD float max_f(float a, float b) { return a > b ? a : b; }
AB_HD float neg_inf_f() { return -INFINITY; }

#if !defined(__CUDA_ARCH__)
// exp for float32 that the host compiler vectorizes (glibc's expf is a scalar call unless
// -ffast-math): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-7 polynomial, times 2^n
// built in the exponent bits. Relative error ~2 ulp over the range; exp(x) = 0 below
// -87.3 (where float32 goes subnormal) and -inf gives 0.
__attribute__((always_inline)) inline float exp_host(float x) {
  const float lo = -87.33654f, hi = 88.72283f;
  const bool under = x < lo;
  x = x < lo ? lo : (x > hi ? hi : x);
  // n = round(x log2 e) by the 1.5 * 2^23 shifter (round-to-nearest, no library call)
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  // r = x - n ln2 in two parts for accuracy
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // Taylor/Horner to degree 7: truncation < 1e-8 relative on |r| <= 0.347
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ni;
  std::memcpy(&ni, &t, sizeof ni);  // low bits of t hold n + 2^22 * 3 (two's complement)
  ni = (ni - 0x4B400000) + 127;     // biased exponent of 2^n
  ni = ni < 1 ? 1 : ni;             // n >= -126 after the clamp; keep it a normal number
  const bool top = ni > 254;        // n = 128 near the top of the range: 2^127 * 2
  ni = top ? 254 : ni;
  int32_t bits = ni << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = p * scale * (top ? 2.0f : 1.0f);
  return under ? 0.0f : y;
}
#endif

// exp of the shared formulas: the vectorizable polynomial on the host, expf on the device.
AB_HD float exp_f(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return exp_host(x);
#endif
}

}  // namespace attnbench::math
