// A short demonstration until the sweep harness lands: one point, every CPU kernel of the
// foundation, median time of a few runs and the correctness error on sampled rows.
// Usage: attnbench_demo [N] [dh] [B] [W]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "attnbench/kernel.hpp"
#include "attnbench/reference.hpp"
#include "inputs.hpp"

using namespace attnbench;

int main(int argc, char** argv) {
  Problem p;
  p.seq_len = argc > 1 ? std::atoll(argv[1]) : 4096;
  p.head_dim = argc > 2 ? std::atoll(argv[2]) : 1024;
  p.codebooks = argc > 3 ? std::atoll(argv[3]) : 8;
  p.codewords = argc > 4 ? std::atoll(argv[4]) : 16;
  p.causal = true;
  fmt::print("point: {} B={} W={}\n", describe(p), p.codebooks, p.codewords);
  for (const char* name : {"vanilla_materialized", "vanilla_flash", "lisa_base"}) {
    try {
      const Kernel& k = Registry::instance().get(name, Backend::cpu);
      k.validate(p);
      const HostInputs in = make_inputs(p, k.info().inputs, p.seed);
      k.validate_inputs(p, in.view());
      const WorkspaceSize ws = k.workspace(p);
      std::vector<unsigned char> prepared(ws.prepared_bytes), scratch(ws.scratch_bytes);
      std::vector<float> out(output_elems(p));
      ExecContext ctx;
      k.prepare(p, in.view(), prepared.data(), ctx);
      std::vector<double> ms;
      for (int rep = 0; rep < 7; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        k.run(p, in.view(), prepared.data(), scratch.data(), out.data(), ctx);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      const auto rows = sample_rows(p, 64);
      std::vector<double> want(rows.size() * size_t(p.head_dim));
      k.reference_rows(p, in.view(), rows, want.data());
      fmt::print("{:<22} median {:9.3f} ms (min {:9.3f}, 7 runs after 1 warm-up)  workspace {:>12} B  "
                 "rel-L2 vs float64 {:.2e}\n",
                 name, ms[ms.size() / 2], ms[0], ws.total(),
                 rel_l2_rows(p, out.data(), rows, want.data()));
    } catch (const std::exception& e) {
      fmt::print("{:<22} error: {}\n", name, e.what());
    }
  }
}
