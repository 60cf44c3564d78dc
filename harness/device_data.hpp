// The host side of the cuda runner's tensors at each precision (storage.hpp): what is uploaded
// for q, k, v and the output buffer, and how the output comes back as float32. Float32 for
// fp32 and tf32; bf16 / fp16 bits for 16-bit problems, converted with the element stores of
// attnbench/cuda/element.hpp (the same conversion the kernels use). CUDA-free, so the CPU tests
// check it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "attnbench/problem.hpp"

namespace attnbench {

// The first `count` values of `src` as `p` stores them, as raw bytes (4 or 2 per element).
// The values are the harness's inputs, already rounded to p, so the conversion is exact.
std::vector<unsigned char> to_storage(const std::vector<float>& src, size_t count, Precision p);

// `count` poisoned output elements as `p` stores them (inputs.hpp poison(); for 16-bit
// storage the top half of the float poison pattern, a NaN in both bf16 and fp16).
std::vector<unsigned char> poisoned_storage(size_t count, Precision p);

// `count` stored elements back to float32; an element still holding the 16-bit poison
// becomes the float poison, so is_poison() finds unwritten elements at every precision.
std::vector<float> from_storage(const unsigned char* data, size_t count, Precision p);

}  // namespace attnbench
