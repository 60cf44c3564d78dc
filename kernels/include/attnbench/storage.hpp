// The element types behind Inputs::q/k/v and a kernel's output pointer at each precision
// (problem.hpp): float32 for fp32 and tf32, 16-bit patterns for bf16 and fp16. Only kernels
// that declare a 16-bit precision use storage_cast; the pointer types stay float* so the
// kernel interface does not change for every other kernel.
#pragma once

#include <cstdint>

namespace attnbench {

// The raw 16-bit storage of bf16 / fp16 tensors (math/precision.hpp converts).
using Bits16 = uint16_t;

template <class T>
const T* storage_cast(const float* p) {
  return reinterpret_cast<const T*>(p);
}
template <class T>
T* storage_cast(float* p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace attnbench
