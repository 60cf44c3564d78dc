#include "attnbench/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace attnbench {

void Kernel::validate_common(const Problem& p) const {
  const auto& in = info();
  auto positive = [&](const char* what, int64_t v) {
    if (v <= 0)
      throw InvalidProblem(fmt::format("{}: {} must be positive, got {}", in.name, what, v));
  };
  positive("batch", p.batch);
  positive("heads", p.heads);
  positive("seq_len", p.seq_len);
  positive("head_dim", p.head_dim);
  if (p.causal && !in.has_causal)
    throw InvalidProblem(fmt::format("{}: no causal form", in.name));
  if (!p.causal && !in.has_bidirectional)
    throw InvalidProblem(fmt::format("{}: no bidirectional form", in.name));
  if (in.inputs & (kInputCodes | kInputCodebooks | kInputProbs)) {
    positive("codebooks", p.codebooks);
    positive("codewords", p.codewords);
  }
  // Every index a kernel forms is an int64 product; refuse sizes whose element counts
  // overflow it (they could never fit in memory anyway).
  const double elems = double(p.batch) * double(p.heads) * double(p.seq_len) *
                       double(std::max<int64_t>(p.head_dim, p.seq_len));
  if (elems > 4.0e18)
    throw InvalidProblem(fmt::format("{}: problem too large ({})", in.name, describe(p)));
}

void Kernel::validate(const Problem& p) const { validate_common(p); }

void Kernel::validate_inputs(const Problem&, const Inputs&) const {}

void Kernel::prepare(const Problem&, const Inputs&, void*, const ExecContext&) const {}

double Kernel::min_bytes(const Problem& p) const {
  return double(input_sizes(p, info().inputs).bytes() + output_elems(p) * sizeof(float));
}

void Kernel::reference_rows(const Problem&, const Inputs&, std::span<const RowId>,
                            double*) const {
  throw InvalidProblem(fmt::format("{} ({}): no float64 reference on this backend",
                                   info().name, backend_name(info().backend)));
}

Registry& Registry::instance() {
  static Registry r;
  return r;
}

void Registry::add(std::unique_ptr<Kernel> k) {
  sorted_.push_back(k.get());
  owned_.push_back(std::move(k));
  std::sort(sorted_.begin(), sorted_.end(), [](const Kernel* a, const Kernel* b) {
    if (a->info().name != b->info().name) return a->info().name < b->info().name;
    return a->info().backend < b->info().backend;
  });
}

const Kernel* Registry::find(const std::string& name, Backend b) const {
  for (const Kernel* k : sorted_)
    if (k->info().name == name && k->info().backend == b) return k;
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> v;
  for (const Kernel* k : sorted_)
    if (v.empty() || v.back() != k->info().name) v.push_back(k->info().name);
  return v;
}

const Kernel& Registry::get(const std::string& name, Backend b) const {
  if (const Kernel* k = find(name, b)) return *k;
  const auto all = names();
  if (std::find(all.begin(), all.end(), name) != all.end())
    throw InvalidProblem(
        fmt::format("kernel '{}' has no {} backend in this build", name, backend_name(b)));
  std::string known;
  for (const auto& n : all) known += (known.empty() ? "" : ", ") + n;
  throw InvalidProblem(fmt::format("unknown kernel '{}' (known: {})", name, known));
}

}  // namespace attnbench
