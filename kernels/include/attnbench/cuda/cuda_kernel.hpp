// What the CUDA runner (harness/backend_cuda.cpp) needs to know about a CUDA kernel beyond the
// Kernel interface. Kept out of kernel.hpp so the interface stays backend-neutral; the runner
// asks for it with dynamic_cast and assumes the safe answer when a kernel lacks it.
#pragma once

#include "attnbench/kernel.hpp"

namespace attnbench::gpu {

class CudaKernelTraits {
 public:
  virtual ~CudaKernelTraits() = default;
  // True when prepare or run calls cuBLAS for this problem: the runner then hands the cuBLAS
  // handle a workspace carved from its memory pool, so the pool's high-water mark counts it.
  virtual bool uses_cublas(const Problem& p) const = 0;
};

}  // namespace attnbench::gpu
