// Helpers the kernel tests share: build a problem for a kernel, run it with guarded,
// poisoned buffers, and compare against its float64 reference.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "attnbench/kernel.hpp"
#include "attnbench/reference.hpp"
#include "inputs.hpp"

namespace attnbench::testing {

// A problem for kernel `k` with its declared parameter defaults, then the given shape.
inline Problem problem_for(const Kernel& k, int64_t batch, int64_t heads, int64_t n, int64_t dh,
                           bool causal) {
  Problem p = with_defaults(k, Problem{});
  p.batch = batch;
  p.heads = heads;
  p.seq_len = n;
  p.head_dim = dh;
  p.causal = causal;
  return p;
}

// Guard bytes around the workspace: a kernel that writes outside what it asked for
// changes them.
constexpr size_t kGuardBytes = 4096;
constexpr unsigned char kGuardByte = 0xA7;

struct RunResult {
  std::vector<float> out;
  bool guards_intact = true;
  size_t poisoned_left = 0;   // output elements the kernel never wrote
  size_t non_finite = 0;      // written but NaN or inf
};

// Runs prepare + run on host inputs with exactly the reported workspace (guarded on both
// sides) and a poisoned output buffer.
inline RunResult run_guarded(const Kernel& k, const Problem& p, const HostInputs& in) {
  const WorkspaceSize ws = k.workspace(p);
  std::vector<unsigned char> prepared(ws.prepared_bytes + 2 * kGuardBytes + 64, kGuardByte);
  std::vector<unsigned char> scratch(ws.scratch_bytes + 2 * kGuardBytes + 64, kGuardByte);
  // 64-byte aligned starts, as a real allocator would give
  auto aligned = [](std::vector<unsigned char>& v) {
    auto addr = reinterpret_cast<uintptr_t>(v.data() + kGuardBytes);
    return reinterpret_cast<unsigned char*>((addr + 63) / 64 * 64);
  };
  unsigned char* prep = aligned(prepared);
  unsigned char* scr = aligned(scratch);
  RunResult r;
  r.out.resize(output_elems(p));
  poison(r.out.data(), r.out.size());
  const Inputs view = in.view();
  k.validate(p);
  k.validate_inputs(p, view);
  ExecContext ctx;
  k.prepare(p, view, ws.prepared_bytes ? prep : nullptr, ctx);
  k.run(p, view, ws.prepared_bytes ? prep : nullptr, ws.scratch_bytes ? scr : nullptr,
        r.out.data(), ctx);
  auto intact = [](const unsigned char* lo, const unsigned char* hi, size_t n,
                   const std::vector<unsigned char>& v) {
    for (const unsigned char* x = v.data(); x < lo; ++x)
      if (*x != kGuardByte) return false;
    for (const unsigned char* x = hi + n; x < v.data() + v.size(); ++x)
      if (*x != kGuardByte) return false;
    return true;
  };
  r.guards_intact = intact(prep, prep, ws.prepared_bytes, prepared) &&
                    intact(scr, scr, ws.scratch_bytes, scratch);
  for (float x : r.out) {
    if (is_poison(x))
      ++r.poisoned_left;
    else if (!std::isfinite(x))
      ++r.non_finite;
  }
  return r;
}

// Relative L2 error of a full output against the kernel's float64 reference on `rows`.
inline double reference_error(const Kernel& k, const Problem& p, const HostInputs& in,
                              const std::vector<float>& out, const std::vector<RowId>& rows) {
  std::vector<double> want(rows.size() * size_t(p.head_dim));
  k.reference_rows(p, in.view(), rows, want.data());
  return rel_l2_rows(p, out.data(), rows, want.data());
}

}  // namespace attnbench::testing
