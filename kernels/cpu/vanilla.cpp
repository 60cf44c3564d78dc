// Vanilla softmax attention on the CPU (kernels.md section 1). Two versions:
//   vanilla_materialized  S = scale Q K^T and P = softmax(S) in one b*h*N*N workspace (softmax
//                         in place), both products through CBLAS sgemm. The papers' baseline.
//   vanilla_flash         BLOCK_M queries stream over BLOCK_N-key tiles with the online softmax
//                         of math/softmax.hpp; O(BLOCK * dh) scratch per thread; causal key
//                         tiles above the diagonal are skipped.
// The float64 reference (reference.hpp, vanilla_reference_rows) checks both.
// Run: ./run_all.sh test (tests/test_kernels_cpu.cpp), or the harness.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnbench/cpu_util.hpp"
#include "attnbench/math/softmax.hpp"
#include "attnbench/reference.hpp"

namespace attnbench {
namespace {

double vanilla_flops(const Problem& p) {
  const double f = 4.0 * double(p.batch) * double(p.heads) * double(p.seq_len) *
                   double(p.seq_len) * double(p.head_dim);
  return p.causal ? f / 2 : f;
}

// Both vanilla kernels share their description, FLOP count and reference.
class VanillaCpuBase : public Kernel {
 public:
  double flops(const Problem& p) const override { return vanilla_flops(p); }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    vanilla_reference_rows(p, in.q, in.k, in.v, 1.0 / std::sqrt(double(p.head_dim)), rows,
                           out);
  }
};

KernelInfo vanilla_info(const char* name, const char* summary) {
  KernelInfo i;
  i.name = name;
  i.backend = Backend::cpu;
  i.family = "vanilla";
  i.summary = summary;
  i.inputs = kInputQKV;
  i.is_vanilla = true;
  return i;
}

// ---------------------------------------------------------------------------------------
// vanilla_materialized

// Softmax of row i of an N-wide score row in place; keys past `len` (the causal mask) get 0.
void softmax_row_inplace(float* row, int64_t len, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, row[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < len; ++j) {
    row[j] = std::exp(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < len; ++j) row[j] *= inv;
  std::fill(row + len, row + n, 0.f);
}

class VanillaMaterializedCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_info(
        "vanilla_materialized",
        "softmax attention with the N x N scores in memory (sgemm, row softmax, sgemm)");
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, static_cast<size_t>(p.batch * p.heads) * static_cast<size_t>(p.seq_len) *
                   static_cast<size_t>(p.seq_len) * sizeof(float)};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
    const float scale = 1.0f / std::sqrt(float(dh));
    const int nt = cpu::threads_for(ctx);
    float* scores_all = static_cast<float*>(scratch);
    auto one_sequence = [&](int64_t s, bool parallel_rows) {
      const float* q = in.q + s * N * dh;
      const float* k = in.k + s * N * dh;
      const float* v = in.v + s * N * dh;
      float* sc = scores_all + s * N * N;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(N), int(N), int(dh), scale, q,
                  int(dh), k, int(dh), 0.0f, sc, int(N));
#pragma omp parallel for num_threads(nt) schedule(static) if (parallel_rows)
      for (int64_t i = 0; i < N; ++i) softmax_row_inplace(sc + i * N, p.causal ? i + 1 : N, N);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(N), int(dh), int(N), 1.0f, sc,
                  int(N), v, int(dh), 0.0f, out + s * N * dh, int(dh));
    };
    if (S >= nt) {
      // Enough sequences for every thread: one sequence per thread, single-threaded BLAS
      // (the OpenMP build of OpenBLAS runs serially inside a parallel region).
#pragma omp parallel for num_threads(nt) schedule(dynamic)
      for (int64_t s = 0; s < S; ++s) one_sequence(s, false);
    } else {
      for (int64_t s = 0; s < S; ++s) one_sequence(s, true);
    }
  }
};

// ---------------------------------------------------------------------------------------
// vanilla_flash

constexpr int64_t kBlockM = 64;  // queries per tile
constexpr int64_t kBlockN = 64;  // keys per tile

class VanillaFlashCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i =
        vanilla_info("vanilla_flash", "fused tiled softmax attention with an online softmax, "
                                      "O(N dh) memory");
    return i;
  }
  static cpu::Sizer per_thread(int64_t dh) {
    cpu::Sizer s;
    s.add<float>(dh * kBlockN)         // K tile, transposed
        .add<float>(kBlockM * kBlockN)  // scores of the tile
        .add<float>(kBlockM * dh)       // output accumulators
        .add<math::OnlineSoftmaxRow>(kBlockM);
    return s;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, per_thread(p.head_dim).bytes() * static_cast<size_t>(cpu::max_threads())};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
    const float scale = 1.0f / std::sqrt(float(dh));
    const int64_t q_tiles = (N + kBlockM - 1) / kBlockM;
    const size_t slot = per_thread(dh).bytes();
    const int nt = cpu::threads_for(ctx);
#pragma omp parallel num_threads(nt)
    {
      cpu::Carver carve(static_cast<char*>(scratch) + slot * size_t(omp_get_thread_num()));
      float* kt = carve.take<float>(dh * kBlockN);
      float* sc = carve.take<float>(kBlockM * kBlockN);
      float* acc = carve.take<float>(kBlockM * dh);
      auto* st = carve.take<math::OnlineSoftmaxRow>(kBlockM);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < S * q_tiles; ++item) {
        const int64_t s = item / q_tiles, i0 = (item % q_tiles) * kBlockM;
        const int64_t rows = std::min(kBlockM, N - i0);
        const float* q = in.q + (s * N + i0) * dh;
        const float* k = in.k + s * N * dh;
        const float* v = in.v + s * N * dh;
        std::fill(acc, acc + rows * dh, 0.f);
        for (int64_t r = 0; r < rows; ++r) st[r] = math::online_softmax_init();
        // causal: key tiles wholly above the diagonal are never visited
        const int64_t key_end = p.causal ? i0 + rows : N;
        for (int64_t j0 = 0; j0 < key_end; j0 += kBlockN) {
          const int64_t cols = std::min(kBlockN, key_end - j0);
          for (int64_t j = 0; j < cols; ++j)
            for (int64_t d = 0; d < dh; ++d) kt[d * kBlockN + j] = k[(j0 + j) * dh + d];
          for (int64_t r = 0; r < rows; ++r) {
            float* srow = sc + r * kBlockN;
            std::fill(srow, srow + cols, 0.f);
            for (int64_t d = 0; d < dh; ++d) {
              const float qd = q[r * dh + d] * scale;
              const float* ktd = kt + d * kBlockN;
              for (int64_t j = 0; j < cols; ++j) srow[j] += qd * ktd[j];
            }
            // causal mask inside the diagonal tile: key j0+j is visible to query i0+r iff <=
            const int64_t visible = p.causal ? std::min(cols, i0 + r - j0 + 1) : cols;
            if (visible <= 0) continue;
            float tile_max = srow[0];
            for (int64_t j = 1; j < visible; ++j) tile_max = std::max(tile_max, srow[j]);
            const float factor = math::online_softmax_rescale(st[r], tile_max);
            float* a = acc + r * dh;
            if (factor != 1.0f)
              for (int64_t c = 0; c < dh; ++c) a[c] *= factor;
            float tile_sum = 0.f;
            for (int64_t j = 0; j < visible; ++j) {
              const float w = math::online_softmax_weight(st[r], srow[j]);
              tile_sum += w;
              const float* vj = v + (j0 + j) * dh;
              for (int64_t c = 0; c < dh; ++c) a[c] += w * vj[c];
            }
            st[r].l += tile_sum;
          }
        }
        float* o = out + (s * N + i0) * dh;
        for (int64_t r = 0; r < rows; ++r) {
          const float inv = math::online_softmax_inv_sum(st[r]);
          for (int64_t c = 0; c < dh; ++c) o[r * dh + c] = acc[r * dh + c] * inv;
        }
      }
    }
  }
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(VanillaMaterializedCpu);
ATTNBENCH_REGISTER_KERNEL(VanillaFlashCpu);

}  // namespace attnbench
