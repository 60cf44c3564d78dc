#include "accuracy.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <span>

#include "attnbench/reference.hpp"

namespace attnbench {

namespace {

// Runs f(chunk of rows, output of that chunk) over the rows on every thread; rethrows the
// first exception after the loop (exceptions must not leave an OpenMP region).
template <class F>
void parallel_rows(const std::vector<RowId>& rows, int64_t dh, double* out, F f) {
  const int64_t n = int64_t(rows.size());
  if (n == 0) return;
  const int64_t chunks = std::min<int64_t>(n, 4 * int64_t(omp_get_max_threads()));
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
    try {
      f(std::span<const RowId>(rows.data() + lo, size_t(hi - lo)), out + lo * dh);
    } catch (...) {
#pragma omp critical(attnbench_parallel_rows)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

double mean_cosine(const Problem& p, const float* got, const std::vector<RowId>& rows,
                   const double* want) {
  const int64_t dh = p.head_dim;
  double sum = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* g = got + (rows[r].seq * p.seq_len + rows[r].row) * dh;
    double gw = 0, gg = 0, ww = 0;
    for (int64_t c = 0; c < dh; ++c) {
      const double w = want[int64_t(r) * dh + c];
      gw += double(g[c]) * w;
      gg += double(g[c]) * double(g[c]);
      ww += w * w;
    }
    sum += (gg > 0 && ww > 0) ? gw / std::sqrt(gg * ww) : (gg == ww ? 1.0 : 0.0);
  }
  return rows.empty() ? std::nan("") : sum / double(rows.size());
}

// Against the float64 reference of the kernel's own function (its cpu twin's).
void check_correctness(Accuracy& a, const Kernel& ref, const Problem& p, const Inputs& view,
                       const std::vector<float>& out) {
  const auto rows = correctness_rows(p);
  std::vector<double> want(rows.size() * size_t(p.head_dim));
  parallel_rows(rows, p.head_dim, want.data(), [&](std::span<const RowId> r, double* o) {
    ref.reference_rows(p, view, r, o);
  });
  a.correctness_rel_l2 = rel_l2_rows(p, out.data(), rows, want.data());
  a.correctness_rows = int64_t(rows.size());
}

// Against vanilla softmax attention on the same inputs (LISA: on the summed codeword
// embeddings).
void check_approximation(Accuracy& a, const KernelInfo& info, const Problem& p,
                         const Inputs& view, const std::vector<float>& out) {
  const int64_t dh = p.head_dim;
  const auto rows = approximation_rows(p);
  std::vector<double> want(rows.size() * size_t(dh));
  const double scale = 1.0 / std::sqrt(double(dh));
  if (info.inputs & kInputCodebooks) {
    const QKV e = lisa_equivalent_qkv(p, view, (info.inputs & kInputProbs) != 0);
    parallel_rows(rows, dh, want.data(), [&](std::span<const RowId> r, double* o) {
      vanilla_reference_rows(p, e.q.data(), e.k.data(), e.v.data(), scale, r, o);
    });
  } else {
    parallel_rows(rows, dh, want.data(), [&](std::span<const RowId> r, double* o) {
      vanilla_reference_rows(p, view.q, view.k, view.v, scale, r, o);
    });
  }
  a.approx_rel_l2 = rel_l2_rows(p, out.data(), rows, want.data());
  a.approx_cosine = mean_cosine(p, out.data(), rows, want.data());
  a.approx_rows = int64_t(rows.size());
}

}  // namespace

std::vector<RowId> correctness_rows(const Problem& p) {
  // every row of the first and the last sequence (a wrong sequence offset shows in the last)
  if (p.seq_len <= 2048) return sample_rows(p, std::min<int64_t>(p.sequences(), 2) * p.seq_len, 2);
  return sample_rows(p, 64, 4);
}

std::vector<RowId> approximation_rows(const Problem& p) { return sample_rows(p, 256, 4); }

Accuracy check_accuracy(const Kernel& k, const Problem& p, const HostInputs& in,
                        const std::vector<float>& out) {
  Accuracy a;
  const KernelInfo& info = k.info();
  const Inputs view = in.view();
  if (const Kernel* ref = Registry::instance().find(info.name, Backend::cpu))
    check_correctness(a, *ref, p, view, out);
  if (!info.is_vanilla && (info.inputs & (kInputQKV | kInputCodebooks)))
    check_approximation(a, info, p, view, out);
  return a;
}

}  // namespace attnbench
