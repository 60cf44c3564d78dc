// Carving a workspace into consecutive 64-byte aligned sub-buffers, for the CPU and the CUDA
// kernels alike. A Carver made without a base only adds up the aligned sizes (take returns
// null); with a base it hands out the same sub-buffers. A kernel therefore writes one layout
// function that takes its buffers from a Carver, calls it on a sizing Carver in workspace()
// and on the real block in run() or prepare(), and the two cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>

#include "attnbench/kernel.hpp"

namespace attnbench {

class Carver {
 public:
  explicit Carver(void* base = nullptr) : base_(static_cast<char*>(base)) {}
  // The next `count` elements of T, or null when sizing.
  template <class T>
  T* take(int64_t count) {
    T* p = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += align_bytes(static_cast<size_t>(count) * sizeof(T));
    return p;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

// The bytes a layout takes: layout(carver) run on a sizing Carver.
template <class Layout>
size_t layout_bytes(Layout&& layout) {
  Carver sizing;
  layout(sizing);
  return sizing.used();
}

// `count` equal slots (per-thread scratch), each laid out by the same function: slot t starts
// at at(t), and the caller carves it with Carver(at(t)).
struct Slots {
  char* base;
  size_t bytes;  // of one slot, a multiple of 64
  char* at(int64_t t) const { return base ? base + bytes * static_cast<size_t>(t) : nullptr; }
};
template <class Layout>
Slots take_slots(Carver& c, int64_t count, Layout&& layout) {
  const size_t bytes = layout_bytes(layout);
  return {c.take<char>(static_cast<int64_t>(bytes) * count), bytes};
}

}  // namespace attnbench
