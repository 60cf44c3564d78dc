// AB_HD marks arithmetic that both the CPU kernels and the CUDA kernels evaluate: under nvcc
// it is __host__ __device__, otherwise a plain inline function. The CPU tests therefore
// exercise exactly the formulas the GPU runs (design.md; style.md "no copy-paste").
#pragma once

#if defined(__CUDACC__)
#define AB_HD __host__ __device__ inline
#else
#define AB_HD inline
#endif

#include <cmath>

namespace attnbench::math {

// exp that maps -inf to 0 on both sides without a branch on the caller.
AB_HD float exp_f(float x) { return expf(x); }
AB_HD float max_f(float a, float b) { return a > b ? a : b; }
AB_HD float neg_inf_f() { return -INFINITY; }

}  // namespace attnbench::math
