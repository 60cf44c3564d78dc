// Small helpers for the CPU kernels: thread counts, the CBLAS header and the workspace carver.
#pragma once

#include <cstdint>

#include <cblas.h>
#include <omp.h>

#include "attnbench/kernel.hpp"
#include "attnbench/workspace.hpp"  // Carver: the workspace layouts of the cpu kernels

namespace attnbench::cpu {

// Threads a cpu kernel uses: ctx.threads if set, else every OpenMP thread. Kernels size
// their per-thread scratch with max_threads() so the workspace query needs no context.
inline int max_threads() { return omp_get_max_threads(); }
inline int threads_for(const ExecContext& ctx) {
  return ctx.threads > 0 && ctx.threads < max_threads() ? ctx.threads : max_threads();
}

}  // namespace attnbench::cpu
