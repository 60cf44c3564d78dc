// The points each CI gate measures (gates_run.hpp).
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

}  // namespace

// Every cpu kernel, both forms where it has them, at one sequence (the kernels cut it into
// chunks for the threads) and at four sequences (one or more per thread).
std::vector<Point> memory_points() {
  std::vector<Point> pts;
  for (const Kernel* k : Registry::instance().kernels()) {
    if (k->info().backend != Backend::cpu) continue;
    for (Shape s : {Shape{1, 1, 512}, Shape{2, 2, 1024}})
      for (bool causal : forms_of(*k)) pts.push_back(make_point(*k, s, causal));
  }
  return pts;
}

// Small points under callgrind (~50x slower than native): vanilla both ways, LISA, one
// linear and one sparse kernel.
std::vector<Point> work_points() {
  const Registry& reg = Registry::instance();
  struct Spec {
    const char* kernel;
    int64_t n;
    bool causal;
  };
  const Spec specs[] = {{"vanilla_materialized", 512, true}, {"vanilla_flash", 512, true},
                        {"lisa_base", 1024, true},            {"lisa_base", 1024, false},
                        {"lisa_mini", 1024, true},            {"performer", 1024, true},
                        {"local_window", 1024, true}};
  std::vector<Point> pts;
  for (const Spec& s : specs)
    if (const Kernel* k = reg.find(s.kernel, Backend::cpu)) pts.push_back(make_point(*k, {1, 1, s.n}, s.causal));
  return pts;
}

// Points of a few milliseconds on one thread.
std::vector<Point> time_points() {
  const Registry& reg = Registry::instance();
  struct Spec {
    const char* kernel;
    int64_t n;
  };
  const Spec specs[] = {{"vanilla_materialized", 1024}, {"vanilla_flash", 1024},
                        {"lisa_base", 2048},            {"lisa_mini", 4096},
                        {"performer", 2048},            {"local_window", 4096}};
  std::vector<Point> pts;
  for (const Spec& s : specs)
    if (const Kernel* k = reg.find(s.kernel, Backend::cpu)) pts.push_back(make_point(*k, {1, 1, s.n}, true));
  return pts;
}

std::vector<std::string> opted_out(const std::string&) { return {}; }

}  // namespace attnbench::gates
