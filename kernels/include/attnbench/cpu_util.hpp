// Small helpers for the CPU kernels: thread counts and the CBLAS header.
#pragma once

#include <cstdint>

#include <cblas.h>
#include <omp.h>

#include "attnbench/kernel.hpp"

namespace attnbench::cpu {

// Threads a cpu kernel uses: ctx.threads if set, else every OpenMP thread. Kernels size
// their per-thread scratch with max_threads() so the workspace query needs no context.
inline int max_threads() { return omp_get_max_threads(); }
inline int threads_for(const ExecContext& ctx) {
  return ctx.threads > 0 && ctx.threads < max_threads() ? ctx.threads : max_threads();
}

// Carves consecutive, 64-byte aligned sub-buffers out of one workspace block.
class Carver {
 public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  template <class T>
  T* take(int64_t count) {
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += align_bytes(static_cast<size_t>(count) * sizeof(T));
    return p;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

// The same layout arithmetic as Carver, for workspace queries.
class Sizer {
 public:
  template <class T>
  Sizer& add(int64_t count) {
    bytes_ += align_bytes(static_cast<size_t>(count) * sizeof(T));
    return *this;
  }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_ = 0;
};

}  // namespace attnbench::cpu
