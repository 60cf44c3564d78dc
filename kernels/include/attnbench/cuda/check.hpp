// Error checking for the CUDA backend: every CUDA runtime and cuBLAS call is wrapped, and
// every kernel launch is followed by AB_CUDA_CHECK_LAUNCH(). A failure throws
// std::runtime_error("file:line: call: error name (error string)"), which the harness records
// against the point and the sweep goes on. Included only where ATTNBENCH_HAVE_CUDA is set.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace attnbench::gpu {

[[noreturn]] inline void throw_cuda_failure(const char* file, int line, const char* call,
                                            const std::string& what) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " +
                           what);
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    throw_cuda_failure(file, line, call,
                       std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")");
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw_cuda_failure(file, line, call,
                       std::string(cublasGetStatusName(s)) + " (" + cublasGetStatusString(s) +
                           ")");
}

}  // namespace attnbench::gpu

#define AB_CUDA_CHECK(call) ::attnbench::gpu::check_cuda((call), #call, __FILE__, __LINE__)
#define AB_CUBLAS_CHECK(call) ::attnbench::gpu::check_cublas((call), #call, __FILE__, __LINE__)
// After every <<<...>>> launch: launch-configuration errors surface here, at the launch.
#define AB_CUDA_CHECK_LAUNCH() \
  ::attnbench::gpu::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
