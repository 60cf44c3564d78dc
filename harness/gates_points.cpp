// The points each CI gate measures (gates_run.hpp): every cpu kernel of the registry, unless
// its description opts out of the gate; the sizes follow from the kernel's FLOP count, so a
// new kernel joins every gate with no change here.
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "gates_run.hpp"

namespace attnbench::gates {

namespace {

struct Shape {
  int64_t batch, heads, seq_len;
};

Point make_point(const Kernel& k, Shape s, bool causal) {
  Point pt;
  pt.kernel = &k;
  pt.backend = k.info().backend;
  Problem p = with_defaults(k, default_shape());
  p.batch = s.batch;
  p.heads = s.heads;
  p.seq_len = s.seq_len;
  p.causal = causal;
  pt.problem = p;
  pt.group = "gate";
  return pt;
}

std::vector<bool> forms_of(const Kernel& k) {
  std::vector<bool> f;
  if (k.info().has_causal) f.push_back(true);
  if (k.info().has_bidirectional) f.push_back(false);
  return f;
}

// The cpu kernels of the registry in `gate`, in registry order.
std::vector<const Kernel*> gate_kernels(const std::string& gate) {
  std::vector<const Kernel*> ks;
  for (const Kernel* k : Registry::instance().kernels())
    if (k->info().backend == Backend::cpu && !k->info().gate_opt_outs.count(gate)) ks.push_back(k);
  return ks;
}

// The kernels of `gate` that have a form, each with its first one (causal where it has it).
std::vector<std::pair<const Kernel*, bool>> first_forms(const std::string& gate) {
  std::vector<std::pair<const Kernel*, bool>> v;
  for (const Kernel* k : gate_kernels(gate))
    if (const auto forms = forms_of(*k); !forms.empty()) v.emplace_back(k, forms.front());
  return v;
}

double flops_at(const Kernel& k, int64_t n, bool causal) {
  return k.flops(make_point(k, {1, 1, n}, causal).problem);
}

// Whether the kernel's work grows quadratically with N (more than 3x from N = 512 to 1024).
bool quadratic(const Kernel& k, bool causal) {
  const double small = flops_at(k, 512, causal), large = flops_at(k, 1024, causal);
  return small > 0 && large / small > 3.0;
}

// Whether the two forms are different algorithms, which shows as FLOP counts more than 3x
// apart (LISA: prefix histograms against one histogram of the whole sequence).
bool forms_differ(const Kernel& k) {
  if (!k.info().has_causal || !k.info().has_bidirectional) return false;
  const double causal = flops_at(k, 1024, true), bidirectional = flops_at(k, 1024, false);
  const double lo = std::min(causal, bidirectional), hi = std::max(causal, bidirectional);
  return lo > 0 && hi / lo > 3.0;
}

// The time gate's budget: points of a few milliseconds on one core.
constexpr double kTimeGateFlops = 300e6;

}  // namespace

// Both forms where the kernel has them, at one sequence (the kernels cut it into chunks for
// the threads) and at four sequences (one or more per thread).
std::vector<Point> memory_points() {
  std::vector<Point> pts;
  for (const Kernel* k : gate_kernels("memory"))
    for (Shape s : {Shape{1, 1, 512}, Shape{2, 2, 1024}})
      for (bool causal : forms_of(*k)) pts.push_back(make_point(*k, s, causal));
  return pts;
}

// Small points under callgrind (~50x slower than native): N = 1024, halved where the work
// grows quadratically; the kernel's first form, and the other one too where it is another
// algorithm.
std::vector<Point> work_points() {
  std::vector<Point> pts;
  for (const auto& [k, form] : first_forms("work")) {
    const int64_t n = quadratic(*k, form) ? 512 : 1024;
    pts.push_back(make_point(*k, {1, 1, n}, form));
    if (forms_differ(*k)) pts.push_back(make_point(*k, {1, 1, n}, !form));
  }
  return pts;
}

// One point per kernel, its first form, at the largest N of 4096, 2048 and 1024 within the
// time gate's FLOP budget (1024 when none is).
std::vector<Point> time_points() {
  std::vector<Point> pts;
  for (const auto& [k, form] : first_forms("time")) {
    int64_t n = 4096;
    while (n > 1024 && flops_at(*k, n, form) > kTimeGateFlops) n /= 2;
    pts.push_back(make_point(*k, {1, 1, n}, form));
  }
  return pts;
}

std::vector<std::string> opted_out(const std::string& gate) {
  std::vector<std::string> lines;
  for (const Kernel* k : Registry::instance().kernels())
    if (k->info().backend == Backend::cpu)
      if (auto it = k->info().gate_opt_outs.find(gate); it != k->info().gate_opt_outs.end())
        lines.push_back(fmt::format("{}: {}", k->info().name, it->second));
  return lines;
}

}  // namespace attnbench::gates
