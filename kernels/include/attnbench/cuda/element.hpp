// The element types a CUDA kernel's buffers hold at each precision, and the one load and store
// of each (docs/methods.md section 5, storage.hpp):
//   f32   float32 (fp32 and tf32 problems, and every float32 intermediate);
//   bf16  bfloat16 bits, f16  IEEE binary16 bits (q, k, v, the output and the probabilities of
//         bf16 / fp16 problems).
// A store rounds to nearest, ties to even, with the math/precision.hpp conversions, on the host
// and on the device alike, so the CPU emulation (tests/test_cuda_tiling.cpp) stores exactly the
// bits the GPU kernels store. Loads are exact.
#pragma once

#include <cstddef>
#include <cstdint>

#include "attnbench/math/hd.hpp"
#include "attnbench/math/precision.hpp"
#include "attnbench/problem.hpp"

namespace attnbench::gpu {

enum class Elem : uint8_t { f32, bf16, f16 };

// The storage of q, k, v and the output at a precision (storage_bytes(p) bytes each).
constexpr Elem storage_elem(Precision p) {
  return p == Precision::bf16 ? Elem::bf16 : p == Precision::fp16 ? Elem::f16 : Elem::f32;
}
AB_HD constexpr size_t elem_bytes(Elem e) { return e == Elem::f32 ? 4 : 2; }

AB_HD float load_elem(Elem e, const void* base, int64_t i) {
  if (e == Elem::f32) return static_cast<const float*>(base)[i];
  const uint16_t h = static_cast<const uint16_t*>(base)[i];
  return e == Elem::bf16 ? math::bf16_bits_to_float(h) : math::half_bits_to_float(h);
}

AB_HD void store_elem(Elem e, void* base, int64_t i, float x) {
  if (e == Elem::f32) {
    static_cast<float*>(base)[i] = x;
    return;
  }
  static_cast<uint16_t*>(base)[i] =
      e == Elem::bf16 ? math::float_to_bf16_bits(x) : math::float_to_half_bits(x);
}

}  // namespace attnbench::gpu
