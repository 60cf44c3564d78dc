// LISA on the CPU (docs/methods.md section 2): attention over codeword histograms.
//   lisa_base  hard codes [b, h, N, B], codebooks [h, B, W, dh] (default W = 128)
//   lisa_mini  the same kernel under its own name, default W = 16 (the paper's profiling size)
//   lisa_soft  soft assignments [b, h, N, B, W]; histogram = prefix sum of the probabilities,
//              query code = argmax of the position's probabilities
//
// prepare (untimed, per head and codebook): Cq = C Wq, Ck = C Wk, Cv = C Wv (projections
// optional), the W x W logit table T = Cq Ck^T / sqrt(dh) and E = exp(T - rowmax T)
// (math/lisa.hpp explains why E is safe).
// run, causal: positions stream in order with one B x W running histogram per thread; rows
// are grouped in blocks of kRowBlock so the output is one (rows x BW) by (BW x dh) sgemm per
// block. When there are fewer sequences than threads a sequence is cut into chunks: pass 1
// counts each chunk's histogram, a prefix over chunks gives each chunk its starting
// histogram, pass 2 streams the chunks in parallel. No N x B x W or N x B x dh tensor exists.
// run, bidirectional: one histogram per sequence, so a position's output depends only on its
// codes: Y[b][c] = sum_w a[b, c, w] Cv[b][w] is built once (B sgemms of W x W by W x dh) and
// each position sums B gathered rows of Y.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "attnbench/cpu/linear_gemm.hpp"
#include "attnbench/cpu/lisa_simd.hpp"
#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/lisa.hpp"
#include "attnbench/phases.hpp"
#include "attnbench/reference.hpp"

namespace attnbench {
namespace {

// Rows per output product: (kRowBlock x BW) by (BW x dh). OpenBLAS (wide heads) packs Cv
// (BW x dh) on every call, so taller blocks spread that copy over more rows (at the paper
// point, W = 128: 73-81 GFLOP/s with 64 rows, 87-89 with 256); the in-house product (dh <=
// 128) ran the same with 64, 128 and 256 rows.
constexpr int64_t kRowBlock = 256;
// LISA-Soft reads B W probabilities per position, once: prefetched this many positions ahead.
constexpr int64_t kPrefetchRows = 8;

using math::LisaTables;  // the prepared tables' layout, shared with the CUDA kernel

// c[rows, n] = a[rows, k] b[k, n], all row-major and dense. For n <= kSmallProductCols the
// register-tiled AVX-512 product of the linear family (no packing; cblas_sgemm without
// AVX-512): at h = 4, dh = 64 OpenBLAS reached about 140 GFLOP/s on one core of the development
// machine (its packing and the zeroing of C included), this about 195. Wider outputs go to
// OpenBLAS, which blocks for the cache: the tiles read all of a once per 64 columns (at the
// paper point, dh = 1024, W = 128: 285 ms against OpenBLAS's 105).
constexpr int64_t kSmallProductCols = 128;
void product(int64_t rows, int64_t k, int64_t n, const float* a, const float* b, float* c) {
  if (n > kSmallProductCols) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(n), int(k), 1.0f, a,
                int(k), b, int(n), 0.0f, c, int(n));
    return;
  }
  cpu::lin::Product p;
  p.M = rows, p.N = n, p.K1 = k;
  p.A1 = {a, k, 1}, p.B1 = b, p.ldb1 = n;
  p.C = c, p.ldc = n;
  cpu::lin::run_product(p);
}

// Chunks per sequence in the causal form: enough that every thread has work.
int64_t chunks_per_sequence(const Problem& p) {
  const int64_t nt = cpu::max_threads(), S = p.sequences();
  if (S >= nt) return 1;
  return std::max<int64_t>(1, std::min((nt + S - 1) / S, p.seq_len));
}

int64_t lisa_bw(const Problem& p) { return p.int_param("codebooks") * p.int_param("codewords"); }

// Causal scratch: every chunk's starting histogram, then per thread the running histogram and
// one row block's weights.
struct CausalSlot {
  float* hist;  // BW
  float* a;     // kRowBlock x BW
};
CausalSlot carve_causal_slot(Carver& c, int64_t bw) {
  CausalSlot s{};
  s.hist = c.take<float>(bw);
  s.a = c.take<float>(kRowBlock * bw);
  return s;
}
struct CausalScratch {
  float* starts;  // [S, chunks, BW]
  Slots slots;
};
CausalScratch carve_causal(Carver& c, const Problem& p) {
  const int64_t bw = lisa_bw(p);
  CausalScratch s{};
  s.starts = c.take<float>(p.sequences() * chunks_per_sequence(p) * bw);
  s.slots = take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_causal_slot(t, bw); });
  return s;
}

// Bidirectional scratch, per thread: the histogram, the B W x W weight tables and Y.
struct BidirSlot {
  float* hist;  // BW
  float* a;     // BW x W
  float* y;     // BW x dh
};
BidirSlot carve_bidir_slot(Carver& c, const Problem& p) {
  const int64_t bw = lisa_bw(p);
  BidirSlot s{};
  s.hist = c.take<float>(bw);
  s.a = c.take<float>(bw * p.int_param("codewords"));
  s.y = c.take<float>(bw * p.head_dim);
  return s;
}
Slots carve_bidir(Carver& c, const Problem& p) {
  return take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_bidir_slot(t, p); });
}

class LisaCpu : public Kernel {
 public:
  LisaCpu(const char* name, int64_t default_w, bool soft)
      : soft_(soft), info_(lisa_info(name, default_w, soft, Backend::cpu)) {}
  const KernelInfo& info() const override { return info_; }

  void validate(const Problem& p) const override {
    validate_common(p);
    if (p.real_param("decay") > 0.0 && !p.causal)
      throw InvalidProblem(fmt::format("{}: decay has no bidirectional form", info_.name));
  }

  void validate_inputs(const Problem& p, const Inputs& in) const override {
    const int64_t n = p.sequences() * p.seq_len * p.int_param("codebooks");
    const int64_t W = p.int_param("codewords");
    if (!soft_) {
      for (int64_t x = 0; x < n; ++x)
        if (in.codes[x] < 0 || in.codes[x] >= W)
          throw InvalidProblem(fmt::format("{}: code {} at flat index {} is outside [0, W={})",
                                           info_.name, in.codes[x], x, W));
    } else {
      for (int64_t x = 0; x < n * W; ++x)
        if (!(in.probs[x] >= 0.0f) || !std::isfinite(in.probs[x]))
          throw InvalidProblem(fmt::format(
              "{}: probability {} at flat index {} is not a finite non-negative number",
              info_.name, in.probs[x], x));
    }
  }

  WorkspaceSize workspace(const Problem& p) const override {
    const size_t tables = layout_bytes([&](Carver& c) { math::lisa_carve_tables(c, p); });
    const size_t scratch = layout_bytes([&](Carver& c) {
      if (p.causal)
        carve_causal(c, p);
      else
        carve_bidir(c, p);
    });
    return {tables, scratch};
  }

  void prepare(const Problem& p, const Inputs& in, void* prepared,
               const ExecContext&) const override {
    const int64_t HB = p.heads * p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim;
    Carver carver(prepared);
    const LisaTables t = math::lisa_carve_tables(carver, p);
    const float scale = 1.0f / std::sqrt(float(dh));
    for (int64_t hb = 0; hb < HB; ++hb) {
      const float* c = in.codebooks + hb * W * dh;
      const float* cq = c;
      const float* ck = c;
      if (p.flag_param("projections")) {
        float* outs[3] = {t.cq + hb * W * dh, t.ck + hb * W * dh, t.cv + hb * W * dh};
        const float* mats[3] = {in.wq + hb * dh * dh, in.wk + hb * dh * dh,
                                in.wv + hb * dh * dh};
        for (int m = 0; m < 3; ++m)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(W), int(dh), int(dh),
                      1.0f, c, int(dh), mats[m], int(dh), 0.0f, outs[m], int(dh));
        cq = outs[0];
        ck = outs[1];
      }
      float* tt = t.t + hb * W * W;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(W), int(W), int(dh), scale, cq,
                  int(dh), ck, int(dh), 0.0f, tt, int(W));
      for (int64_t r = 0; r < W; ++r)
        math::lisa_exp_table_row(tt + r * W, W, t.e + (hb * W + r) * W);
    }
  }

  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    Carver carver(const_cast<void*>(prepared));
    const LisaTables t = math::lisa_carve_tables(carver, p);
    const float* cv = p.flag_param("projections") ? t.cv : in.codebooks;
    if (p.causal)
      run_causal(p, in, t, cv, scratch, out, ctx);
    else
      run_bidirectional(p, in, t, cv, scratch, out, ctx);
  }

  // causal: "histogram+weights" (chunk histograms, the running histogram and the weights of
  // every row) and "product" (the (rows x BW) by (BW x dh) sgemms); bidirectional: the
  // histogram and weights, the B small products building Y, and the per-row "gather".
  bool profiles_phases() const override { return true; }

  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), B = double(p.int_param("codebooks")),
                 W = double(p.int_param("codewords")), dh = double(p.head_dim);
    // causal: the (N x BW) by (BW x dh) product; bidirectional: B (W x W) by (W x dh)
    // products plus the B-row gather-sum per position.
    return p.causal ? S * 2 * N * B * W * dh : S * (2 * B * W * W * dh + N * B * dh);
  }

  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t H = p.heads, B = p.int_param("codebooks"), W = p.int_param("codewords"), dh = p.head_dim,
                  N = p.seq_len;
    const LisaTablesF64 tab = lisa_tables_f64(p, in);
    const double decay = p.real_param("decay");
    const double scale = 1.0 / std::sqrt(double(dh));
    std::vector<double> hist(W), logit(W);
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row, h = s % H;
      double* o = out + r * dh;
      std::fill(o, o + dh, 0.0);
      for (int64_t b = 0; b < B; ++b) {
        std::fill(hist.begin(), hist.end(), 0.0);
        const int64_t last = p.causal ? i : N - 1;
        for (int64_t j = 0; j <= last; ++j) {
          const double wgt = decay > 0 ? std::exp(-decay * double(i - j)) : 1.0;
          const int64_t pos = (s * N + j) * B + b;
          if (soft_)
            for (int64_t w = 0; w < W; ++w) hist[w] += wgt * in.probs[pos * W + w];
          else
            hist[in.codes[pos]] += wgt;
        }
        const int64_t self = (s * N + i) * B + b;
        const int64_t c = soft_ ? math::argmax_row(in.probs + self * W, int(W)) : in.codes[self];
        const double* cq = tab.cq.data() + ((h * B + b) * W + c) * dh;
        double mx = -INFINITY;
        for (int64_t w = 0; w < W; ++w) {
          const double* ck = tab.ck.data() + ((h * B + b) * W + w) * dh;
          double acc = 0;
          for (int64_t e = 0; e < dh; ++e) acc += cq[e] * ck[e];
          logit[w] = acc * scale;
          if (hist[w] > 0) mx = std::max(mx, logit[w]);
        }
        double z = 0;
        for (int64_t w = 0; w < W; ++w)
          z += hist[w] > 0 ? hist[w] * std::exp(logit[w] - mx) : 0.0;
        for (int64_t w = 0; w < W; ++w) {
          if (!(hist[w] > 0)) continue;
          const double a = hist[w] * std::exp(logit[w] - mx) / z;
          const double* cv = tab.cv.data() + ((h * B + b) * W + w) * dh;
          for (int64_t e = 0; e < dh; ++e) o[e] += a * cv[e];
        }
      }
    }
  }

 private:
  int64_t query_code(const Inputs& in, int64_t pos, int64_t W) const {
    return soft_ ? cpu::lisa::argmax(in.probs + pos * W, int(W)) : in.codes[pos];
  }

  // hist <- decay * hist + assignments of position (s, i), all codebooks (the B W
  // probabilities of a position are contiguous, as are the histograms).
  void step(const math::LisaDims& d, const Inputs& in, int64_t s, int64_t i, float decay,
            float* hist) const {
    const int64_t B = d.codebooks, BW = B * d.codewords, pos = (s * d.seq_len + i) * B;
    if (decay != 1.0f)
      for (int64_t x = 0; x < BW; ++x) hist[x] *= decay;
    if (soft_) {
      const float* pr = in.probs + pos * d.codewords;
      // the probabilities stream from memory once: ask for those kPrefetchRows ahead
      if (i + kPrefetchRows < d.seq_len)
        for (int64_t x = 0; x < BW; x += 16) __builtin_prefetch(pr + kPrefetchRows * BW + x);
      for (int64_t x = 0; x < BW; ++x) hist[x] += pr[x];
      return;
    }
    for (int64_t b = 0; b < B; ++b) hist[b * d.codewords + in.codes[pos + b]] += 1.0f;
  }

  void run_causal(const Problem& p, const Inputs& in, const LisaTables& t, const float* cv,
                  void* scratch, float* out, const ExecContext& ctx) const {
    const int64_t S = p.sequences(), N = p.seq_len, H = p.heads, B = p.int_param("codebooks"),
                  W = p.int_param("codewords"), BW = B * W, dh = p.head_dim;
    const int64_t chunks = chunks_per_sequence(p);
    const int64_t chunk_len = (N + chunks - 1) / chunks;
    const float decay = math::lisa_decay_factor(p.real_param("decay"));
    const math::LisaDims dims{N, B, W};
    const int nt = cpu::threads_for(ctx);
    Carver carver(scratch);
    const CausalScratch sc = carve_causal(carver, p);
    float* starts = sc.starts;

    std::optional<PhaseScope> pass1;
    if (chunks > 1) pass1.emplace(ctx.phases, "histogram+weights");
    if (chunks > 1) {
      // pass 1: each chunk's own (decayed) histogram, stored at the next chunk's start
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < chunks; ++c) {
          float* h = starts + (s * chunks + c) * BW;
          std::fill(h, h + BW, 0.f);
          if (c == chunks - 1) continue;  // the last chunk's total is never needed
          for (int64_t i = c * chunk_len; i < std::min(N, (c + 1) * chunk_len); ++i)
            step(dims, in, s, i, decay, h);
        }
      // prefix over chunks: start[c] = decay^len * start[c-1] + local[c-1]
      const float decay_chunk = math::lisa_decay_span(p.real_param("decay"), chunk_len);
      for (int64_t s = 0; s < S; ++s) {
        float* base = starts + s * chunks * BW;
        for (int64_t c = chunks - 1; c >= 1; --c)
          std::copy(base + (c - 1) * BW, base + c * BW, base + c * BW);  // shift locals up
        std::fill(base, base + BW, 0.f);
        for (int64_t c = 1; c < chunks; ++c)
          for (int64_t x = 0; x < BW; ++x)
            base[c * BW + x] += decay_chunk * base[(c - 1) * BW + x];
      }
    } else {
      std::fill(starts, starts + S * BW, 0.f);
    }
    pass1.reset();

    // pass 2: stream every chunk from its starting histogram
#pragma omp parallel num_threads(nt)
    {
      Carver mine(sc.slots.at(omp_get_thread_num()));
      const auto [hist, a] = carve_causal_slot(mine, BW);
      PhaseLaps laps(ctx.phases, 1.0 / omp_get_num_threads());
#pragma omp for schedule(static) collapse(2)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t h = s % H;
          const float* start = starts + (s * chunks + c) * BW;
          std::copy(start, start + BW, hist);
          laps.lap("histogram+weights");
          const int64_t end = std::min(N, (c + 1) * chunk_len);
          for (int64_t i0 = c * chunk_len; i0 < end; i0 += kRowBlock) {
            const int64_t rows = std::min(kRowBlock, end - i0);
            for (int64_t r = 0; r < rows; ++r) {
              step(dims, in, s, i0 + r, decay, hist);
              const int64_t pos = (s * N + i0 + r) * B;
              cpu::lisa::row_weights(
                  t.e + h * B * W * W, t.t + h * B * W * W,
                  [&](int64_t b) { return query_code(in, pos + b, W); }, hist, B, W, a + r * BW);
            }
            laps.lap("histogram+weights");
            product(rows, BW, dh, a, cv + h * BW * dh, out + (s * N + i0) * dh);
            laps.lap("product", 2.0 * double(rows) * double(BW) * double(dh));
          }
        }
    }
  }

  void run_bidirectional(const Problem& p, const Inputs& in, const LisaTables& t,
                         const float* cv, void* scratch, float* out,
                         const ExecContext& ctx) const {
    const int64_t S = p.sequences(), N = p.seq_len, H = p.heads, B = p.int_param("codebooks"),
                  W = p.int_param("codewords"), BW = B * W, dh = p.head_dim;
    const math::LisaDims dims{N, B, W};
    const int nt = cpu::threads_for(ctx);
    Carver carver(scratch);
    const Slots slots = carve_bidir(carver, p);
    auto build_y = [&](int64_t s, float* hist, float* a, float* y, PhaseLaps& laps) {
      const int64_t h = s % H;
      std::fill(hist, hist + BW, 0.f);
      for (int64_t i = 0; i < N; ++i) step(dims, in, s, i, 1.0f, hist);
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t c = 0; c < W; ++c) {
          const int64_t row = ((h * B + b) * W + c) * W;
          cpu::lisa::weights(t.e + row, t.t + row, hist + b * W, int(W), a + (b * W + c) * W);
        }
        laps.lap("histogram+weights");
        product(W, W, dh, a + b * W * W, cv + (h * B + b) * W * dh, y + b * W * dh);
        laps.lap("product", 2.0 * double(W) * double(W) * double(dh));
      }
    };
    auto gather_row = [&](int64_t s, int64_t i, const float* y) {
      const int64_t pos = (s * N + i) * B;
      cpu::lisa::gather_rows(
          y, [&](int64_t b) { return query_code(in, pos + b, W); }, B, W, dh,
          out + (s * N + i) * dh);
    };
    auto slot_views = [&](int thread) {
      Carver c(slots.at(thread));
      return carve_bidir_slot(c, p);
    };
    if (S >= nt) {
#pragma omp parallel num_threads(nt)
      {
        auto [hist, a, y] = slot_views(omp_get_thread_num());
        PhaseLaps laps(ctx.phases, 1.0 / omp_get_num_threads());
#pragma omp for schedule(dynamic)
        for (int64_t s = 0; s < S; ++s) {
          build_y(s, hist, a, y, laps);
          for (int64_t i = 0; i < N; ++i) gather_row(s, i, y);
          laps.lap("gather");
        }
      }
    } else {
      auto [hist, a, y] = slot_views(0);
      PhaseLaps laps(ctx.phases, 1.0);
      for (int64_t s = 0; s < S; ++s) {
        build_y(s, hist, a, y, laps);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < N; ++i) gather_row(s, i, y);
        laps.lap("gather");
      }
    }
  }

  bool soft_;
  KernelInfo info_;
};

struct LisaBaseCpu : LisaCpu {
  LisaBaseCpu() : LisaCpu("lisa_base", 128, false) {}
};
struct LisaMiniCpu : LisaCpu {
  LisaMiniCpu() : LisaCpu("lisa_mini", 16, false) {}
};
struct LisaSoftCpu : LisaCpu {
  LisaSoftCpu() : LisaCpu("lisa_soft", 16, true) {}
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(LisaBaseCpu);
ATTNBENCH_REGISTER_KERNEL(LisaMiniCpu);
ATTNBENCH_REGISTER_KERNEL(LisaSoftCpu);

}  // namespace attnbench
