#include "device_data.hpp"

#include <cstring>

#include "attnbench/cuda/element.hpp"
#include "inputs.hpp"

namespace attnbench {
namespace {
// The 16-bit poison: the top half of inputs.cpp's float pattern 0x7fa5a5a5 (NaN as bf16 and as
// fp16, and not the NaN a kernel's arithmetic produces).
uint16_t poison_bits16() {
  float x;
  poison(&x, 1);
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return uint16_t(u >> 16);
}
}  // namespace

std::vector<unsigned char> to_storage(const std::vector<float>& src, size_t count, Precision p) {
  const gpu::Elem e = gpu::storage_elem(p);
  std::vector<unsigned char> out(count * gpu::elem_bytes(e));
  for (size_t i = 0; i < count; ++i) gpu::store_elem(e, out.data(), int64_t(i), src[i]);
  return out;
}

std::vector<unsigned char> poisoned_storage(size_t count, Precision p) {
  const gpu::Elem e = gpu::storage_elem(p);
  std::vector<unsigned char> out(count * gpu::elem_bytes(e));
  if (e == gpu::Elem::f32) {
    poison(reinterpret_cast<float*>(out.data()), count);
    return out;
  }
  const uint16_t bits = poison_bits16();
  for (size_t i = 0; i < count; ++i) std::memcpy(out.data() + 2 * i, &bits, 2);
  return out;
}

std::vector<float> from_storage(const unsigned char* data, size_t count, Precision p) {
  const gpu::Elem e = gpu::storage_elem(p);
  std::vector<float> out(count);
  if (e == gpu::Elem::f32) {
    if (count) std::memcpy(out.data(), data, count * sizeof(float));
    return out;
  }
  const uint16_t poison16 = poison_bits16();
  for (size_t i = 0; i < count; ++i) {
    uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    if (bits == poison16)
      poison(&out[i], 1);
    else
      out[i] = gpu::load_elem(e, data, int64_t(i));
  }
  return out;
}

}  // namespace attnbench
