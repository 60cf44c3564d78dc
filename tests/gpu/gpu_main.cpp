// Main of the GPU test executable. Without the CUDA backend or without a CUDA device it
// prints why and exits 77, which CTest reports as "Skipped" (SKIP_RETURN_CODE), never as
// passed. With a device it runs the Catch2 tests of tests/gpu/.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#if defined(ATTNBENCH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

int main(int argc, char** argv) {
#if !defined(ATTNBENCH_HAVE_CUDA)
  std::printf("SKIPPED: attnbench was built without the CUDA backend (no nvcc)\n");
  return 77;
#else
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
    return 77;
  }
  return Catch::Session().run(argc, argv);
#endif
}
