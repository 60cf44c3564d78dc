// Vanilla softmax attention on the CPU (kernels.md section 1). Two versions:
//   vanilla_materialized  S = scale Q K^T and P = softmax(S) in one b*h*N*N workspace (softmax
//                         in place), both products through CBLAS sgemm. The papers' baseline.
//                         Causal: blocks of query rows multiply only the keys they see.
//   vanilla_flash         BLOCK_M queries stream over BLOCK_N-key tiles with the online softmax
//                         of math/softmax.hpp, the two tile products through sgemm;
//                         O(BLOCK * dh) scratch per thread; causal key tiles above the
//                         diagonal are skipped.
// The float64 reference (reference.hpp, vanilla_reference_rows) checks both.
// Run: ./run_all.sh test (tests/test_kernels_cpu.cpp), or the harness.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
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

// ---------------------------------------------------------------------------------------
// vanilla_materialized

// Softmax of one score row in place over its first `len` entries (the keys it may see);
// entries [len, fill_end) are masked keys and get probability 0.
void softmax_row_inplace(float* row, int64_t len, int64_t fill_end) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, row[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < len; ++j) {
    row[j] = math::exp_f(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < len; ++j) row[j] *= inv;
  std::fill(row + len, row + fill_end, 0.f);
}

// Causal rows are processed in blocks of this many queries: block [i0, i0+R) needs keys
// [0, i0+R) only, so both products skip the masked upper triangle (half the FLOPs).
constexpr int64_t kCausalRowBlock = 256;

class VanillaMaterializedCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_materialized_info(Backend::cpu);
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    // one b*h*N*N buffer: the scores, turned into probabilities in place
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
      float* o = out + s * N * dh;
      const int64_t block = p.causal ? kCausalRowBlock : N;
      for (int64_t i0 = 0; i0 < N; i0 += block) {
        const int64_t rows = std::min(block, N - i0);
        const int64_t keys = p.causal ? i0 + rows : N;
        float* sb = sc + i0 * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(dh),
                    scale, q + i0 * dh, int(dh), k, int(dh), 0.0f, sb, int(N));
#pragma omp parallel for num_threads(nt) schedule(static) if (parallel_rows)
        for (int64_t r = 0; r < rows; ++r)
          softmax_row_inplace(sb + r * N, p.causal ? i0 + r + 1 : N, keys);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(keys),
                    1.0f, sb, int(N), v, int(dh), 0.0f, o + i0 * dh, int(dh));
      }
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
// vanilla_flash: a query tile's scores against one key tile are one small sgemm, the
// online softmax turns them into weights in place, and a second sgemm accumulates P V into
// the tile's accumulator (rescaled first by the online-softmax factor of each row).

constexpr int64_t kBlockM = 128;  // queries per tile
constexpr int64_t kBlockN = 256;  // keys per tile

class VanillaFlashCpu final : public VanillaCpuBase {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = vanilla_flash_info(Backend::cpu);
    return i;
  }
  static cpu::Sizer per_thread(int64_t dh) {
    cpu::Sizer s;
    s.add<float>(kBlockM * kBlockN)     // scores / weights of the tile
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
    const int64_t items = S * q_tiles;
#pragma omp parallel num_threads(nt)
    {
      cpu::Carver carve(static_cast<char*>(scratch) + slot * size_t(omp_get_thread_num()));
      float* sc = carve.take<float>(kBlockM * kBlockN);
      float* acc = carve.take<float>(kBlockM * dh);
      auto* st = carve.take<math::OnlineSoftmaxRow>(kBlockM);
#pragma omp for schedule(dynamic)
      for (int64_t it = 0; it < items; ++it) {
        // last query tiles first: under the causal mask they carry the most work
        const int64_t item = items - 1 - it;
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
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(cols), int(dh),
                      scale, q, int(dh), k + j0 * dh, int(dh), 0.0f, sc, int(kBlockN));
          for (int64_t r = 0; r < rows; ++r) {
            float* srow = sc + r * kBlockN;
            // causal mask inside the diagonal tile: key j0+j is visible to query i0+r iff <=
            const int64_t visible =
                p.causal ? std::clamp<int64_t>(i0 + r - j0 + 1, 0, cols) : cols;
            float tile_max = math::neg_inf_f();
            for (int64_t j = 0; j < visible; ++j) tile_max = std::max(tile_max, srow[j]);
            const float factor = math::online_softmax_rescale(st[r], tile_max);
            if (factor != 1.0f) {
              float* a = acc + r * dh;
              for (int64_t c = 0; c < dh; ++c) a[c] *= factor;
            }
            float tile_sum = 0.f;
            for (int64_t j = 0; j < visible; ++j) {
              srow[j] = math::online_softmax_weight(st[r], srow[j]);
              tile_sum += srow[j];
            }
            std::fill(srow + visible, srow + cols, 0.f);
            st[r].l += tile_sum;
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(cols),
                      1.0f, sc, int(kBlockN), v + j0 * dh, int(dh), 1.0f, acc, int(dh));
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
