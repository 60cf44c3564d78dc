#include "heap.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace attnbench::heap {

namespace {
// Constant-initialized, so the interposer may count allocations made before main().
struct Counter {
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peak{0};
  std::atomic<int64_t> baseline{0};

  void add(int64_t n) {
    const int64_t now = live.fetch_add(n, std::memory_order_relaxed) + n;
    int64_t seen = peak.load(std::memory_order_relaxed);
    while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void sub(int64_t n) { live.fetch_sub(n, std::memory_order_relaxed); }
  void reset() {
    const int64_t now = live.load(std::memory_order_relaxed);
    baseline.store(now, std::memory_order_relaxed);
    peak.store(now, std::memory_order_relaxed);
  }
  size_t since_reset() const {
    const int64_t d = peak.load(std::memory_order_relaxed) - baseline.load(std::memory_order_relaxed);
    return d > 0 ? size_t(d) : 0;
  }
};
Counter g_heap;
Counter g_counted;
std::atomic<bool> g_interposed{false};
}  // namespace

#ifdef ATTNBENCH_NO_INTERPOSER
// Sanitizer builds leave heap_interpose.cpp out (ASan owns malloc): nothing to install, and
// interposed() stays false, so measured peaks come from the counting allocator.
void install_interposer() {}
#endif

void mark_interposed() { g_interposed.store(true); }
bool interposed() { return g_interposed.load(); }

int64_t heap_live_bytes() { return g_heap.live.load(std::memory_order_relaxed); }
void reset_heap_peak() { g_heap.reset(); }
size_t heap_peak_since_reset() { return g_heap.since_reset(); }

void note_alloc(size_t usable_bytes) { g_heap.add(int64_t(usable_bytes)); }
void note_free(size_t usable_bytes) { g_heap.sub(int64_t(usable_bytes)); }

void* counted_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64) != 0 || !p) throw std::bad_alloc();
  g_counted.add(int64_t(bytes));
  return p;
}

void counted_free(void* p, size_t bytes) {
  if (!p) return;
  std::free(p);
  g_counted.sub(int64_t(bytes));
}

int64_t counted_live_bytes() { return g_counted.live.load(std::memory_order_relaxed); }
void reset_counted_peak() { g_counted.reset(); }
size_t counted_peak_since_reset() { return g_counted.since_reset(); }

}  // namespace attnbench::heap
