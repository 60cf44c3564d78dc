// The CUDA pipelines carve their workspace with attnbench::Carver (attnbench/workspace.hpp,
// the CPU kernels' carver too): with a null base it only sizes, so a kernel's workspace query
// and the run that uses the memory share one function and cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>

#include "attnbench/kernel.hpp"
#include "attnbench/workspace.hpp"

namespace attnbench::gpu {

// The operations a CUDA kernel's pipeline (vanilla_pipeline.hpp, lisa_pipeline.hpp, ...) asks of
// its launcher. The device launcher (kernels/cuda/common.cuh) launches grid-stride kernels
// and calls cuBLAS on the context's stream; the host launcher of tests/test_cuda_tiling.cpp
// runs the same functors on the CPU and emulates cuBLAS's column-major products.
//   each(name, items, f)                       f(item) for item in [0, items), any order
//   zero(ptr, count)                           count floats set to 0
//   upload(dst, host_src, bytes)               host memory to the workspace (prepare only)
//   gemm_strided(name, shape, A, B, C)         GemmShape (gemm.hpp), strided batch; A, B, C
//                                              stored as the shape's element types
//   gemm_batched(name, shape, As, Bs, Cs)      GemmShape (float32), device arrays of pointers
//   row_softmax(in, out, sequences, n, causal, out_elem)
//                                              row_softmax.hpp, one block per row, float32
//                                              scores in, probabilities stored as out_elem;
//                                              in == out is the in-place (float32) form
//   flash(name, problem, inputs, out)          vanilla attention by the flash block
//                                              (flash_block.hpp; lsan_twin's global branch)

}  // namespace attnbench::gpu
