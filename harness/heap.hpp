// Heap accounting for the measured peak memory of a point (docs/measurement.md).
//
// Two sources feed the same counters:
//   - the cpu runner's counting allocator (counted_alloc / counted_free below) counts every
//     buffer the harness hands a kernel; always available;
//   - the malloc interposer (heap_interpose.cpp), linked into an executable that calls
//     install_interposer(): malloc/free/calloc/realloc/aligned_alloc/posix_memalign/memalign
//     forward to glibc and count live bytes (malloc_usable_size), so allocations a kernel or
//     BLAS makes on its own show up too.
// With the interposer, the heap high-water mark is the measurement; without it, the counting
// allocator's. All counters are atomics: any thread may allocate.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnbench::heap {

// Pulls the interposer into the executable (see heap_interpose.cpp) and marks it active; a
// no-op in sanitizer builds (ATTNBENCH_NO_INTERPOSER), which measure with the counting allocator.
void install_interposer();
// True once install_interposer() ran: the whole process heap is counted.
bool interposed();

// Whole-heap figures (meaningful only when interposed()).
int64_t heap_live_bytes();
// Restarts the heap high-water mark at the current live bytes and remembers that baseline.
void reset_heap_peak();
// High-water mark of live heap bytes since reset_heap_peak(), minus the baseline.
size_t heap_peak_since_reset();

// The counting allocator: 64-byte aligned blocks, counted exactly by requested size.
void* counted_alloc(size_t bytes);  // throws std::bad_alloc
void counted_free(void* p, size_t bytes);
int64_t counted_live_bytes();
void reset_counted_peak();
size_t counted_peak_since_reset();

// Called by the interposer only.
void mark_interposed();
void note_alloc(size_t usable_bytes);
void note_free(size_t usable_bytes);

}  // namespace attnbench::heap
