// The malloc interposer behind the measured peak memory on the cpu backend (heap.hpp).
//
// Defining malloc & co. in an executable overrides glibc's for the whole process (glibc
// supports replacing its allocator this way), including the allocations made inside the
// kernels' shared library, OpenBLAS and libstdc++'s operator new. Each function forwards to
// glibc's own implementation (__libc_malloc ...) and counts the block's usable size. This
// object file is linked only into executables that call heap::install_interposer() (it lives
// in a static library), so the tests and other tools keep the plain allocator.
#include <malloc.h>

#include <cerrno>
#include <cstddef>

#include "heap.hpp"

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}

namespace {
inline void* counted(void* p) {
  if (p) attnbench::heap::note_alloc(malloc_usable_size(p));
  return p;
}
}  // namespace

extern "C" {

void* malloc(size_t n) { return counted(__libc_malloc(n)); }

void free(void* p) {
  if (!p) return;
  attnbench::heap::note_free(malloc_usable_size(p));
  __libc_free(p);
}

void* calloc(size_t n, size_t size) { return counted(__libc_calloc(n, size)); }

void* realloc(void* p, size_t n) {
  const size_t old = p ? malloc_usable_size(p) : 0;
  void* q = __libc_realloc(p, n);
  if (q) {
    attnbench::heap::note_free(old);
    attnbench::heap::note_alloc(malloc_usable_size(q));
  } else if (p && n == 0) {
    attnbench::heap::note_free(old);  // realloc(p, 0) freed p
  }
  return q;
}

void* memalign(size_t alignment, size_t n) { return counted(__libc_memalign(alignment, n)); }

void* aligned_alloc(size_t alignment, size_t n) {
  return counted(__libc_memalign(alignment, n));
}

int posix_memalign(void** out, size_t alignment, size_t n) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, n);
  if (!p && n) return ENOMEM;
  *out = counted(p);
  return 0;
}

void* valloc(size_t n) { return counted(__libc_valloc(n)); }
void* pvalloc(size_t n) { return counted(__libc_pvalloc(n)); }

}  // extern "C"

namespace attnbench::heap {
void install_interposer() { mark_interposed(); }
}  // namespace attnbench::heap
