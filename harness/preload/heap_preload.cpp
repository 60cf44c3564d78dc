// The malloc interposer (heap_interpose.cpp, heap.cpp) as an LD_PRELOAD library, so that a
// process the suite does not build (the PyTorch peers' python3, peers/) has its heap peak
// measured by the same counters as the attnbench tool's cpu rows. The counters are read
// through these C functions (ctypes):
//   attnbench_heap_reset()       restart the high-water mark at the current live bytes
//   attnbench_heap_live_bytes()  live heap bytes (usable sizes of every block)
//   attnbench_heap_peak_bytes()  high-water mark since the reset, minus the live bytes then
// heap_interpose.cpp already counts every allocation entry point PyTorch's CPU allocator and
// NumPy use: malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc,
// pvalloc.
#include <cstdint>

#include "heap.hpp"

extern "C" {

__attribute__((visibility("default"))) void attnbench_heap_reset() {
  attnbench::heap::reset_heap_peak();
}

__attribute__((visibility("default"))) int64_t attnbench_heap_live_bytes() {
  return attnbench::heap::heap_live_bytes();
}

__attribute__((visibility("default"))) int64_t attnbench_heap_peak_bytes() {
  return int64_t(attnbench::heap::heap_peak_since_reset());
}

}  // extern "C"

// Counting starts with the process: mark it, as install_interposer() does in the tool.
__attribute__((constructor)) static void attnbench_heap_preload_init() {
  attnbench::heap::install_interposer();
}
