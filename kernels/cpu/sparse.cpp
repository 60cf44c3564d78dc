// Sparse and hashed attentions on the CPU (docs/methods.md section 4), family "sparse":
//   local_window  query i sees the band i-w < j <= i (causal) or |i-j| < w (bidirectional).
//                 Tiles of 64 queries, one sgemm over the keys their band spans, softmax
//                 over each row's band, one sgemm with V. O(N w dh) time, O(64 (64 + 2w))
//                 scratch per thread.
//   reformer_lsh  shared-QK LSH attention: keys = L2-normalized queries (k is not read),
//                 random-rotation buckets, stable sort by (bucket, position), chunks that see
//                 themselves and the previous chunk, n_hashes rounds combined by their
//                 log-sum-exp weights. Per round: hash all positions, counting-sort each
//                 sequence, then one task per (sequence, chunk): gather the chunk's and the
//                 previous chunk's keys, sgemm, masked softmax, sgemm, fold into the output.
//   sinkhorn      Sparse Sinkhorn attention: blocks, mean block queries and keys, a
//                 log-domain Sinkhorn soft permutation of key blocks, each query block sees
//                 its own block and its sorted (argmax) block.
//   lsan_twin     LSAN twin attention: vanilla attention (the global branch) plus a depthwise
//                 causal convolution of V (the local branch), summed. The global branch is
//                 local_window's band code with w = N (64 x N scores per thread, causal tiles
//                 stop at their diagonal); the convolution is the tile's epilogue.
// Softmax weights use math::exp_f (hd.hpp), a vectorizable exp (libm's expf is not).
// Suite choices beyond docs/methods.md are listed at each kernel and in math/sparse.hpp, where the
// per-element formulas shared with the CUDA versions (kernels/cuda/sparse.cu) live (band
// limits, key lists, LSH bucket, Reformer's logit and round fold, Sinkhorn steps, convolution
// row); the method parameters are read by descriptions.hpp's reformer_shape, sinkhorn_shape
// and lsan_shape only. Every kernel has a float64 reference_rows next to it;
// Reformer's buckets and Sinkhorn's sorted blocks are discrete choices that the reference
// makes with the same float32 code as the kernel (math/sparse.hpp explains why they match
// bit for bit), then evaluates the attention itself in float64.
//
// Run the tests (tests/test_kernels_cpu.cpp checks every kernel against its reference,
// tests/test_sparse.cpp the method properties):
//   cmake --build build
//   ./build/attnbench_tests "[sparse]","*local_window*","*reformer_lsh*","*sinkhorn*","*lsan*"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "attnbench/cpu_util.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/math/softmax.hpp"
#include "attnbench/math/sparse.hpp"
#include "attnbench/reference.hpp"
#include "attnbench/sparse_random.hpp"

namespace attnbench {
namespace {

constexpr int64_t kTileRows = 64;   // queries per task tile
constexpr int64_t kHashBatch = 64;  // positions per Reformer hashing task
constexpr float kNegInf = -std::numeric_limits<float>::infinity();


// In-place softmax of row[lo, hi) (entries may be -inf: weight 0); entries outside the range
// become 0. Returns the log of the normalizer, max + log(sum). [lo, hi) holds a finite entry.
// math::softmax_in_place is the CUDA kernels' row softmax too.
float softmax_range(float* row, int64_t lo, int64_t hi, int64_t width) {
  const float lse = math::softmax_in_place(row, lo, hi);
  std::fill(row, row + lo, 0.f);
  std::fill(row + hi, row + width, 0.f);
  return lse;
}

// float64 softmax attention of one query over `keys` (positions in its sequence) with logits
// logit(j) and values v (the sequence's, N x dh); writes o (dh), returns max + log(sum).
template <class Logit>
double reference_attend(const std::vector<int64_t>& keys, Logit&& logit, const float* v,
                        int64_t dh, double* o) {
  std::vector<double> s(keys.size());
  double m = -std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < keys.size(); ++t) m = std::max(m, s[t] = logit(keys[t]));
  double sum = 0;
  for (auto& x : s) sum += (x = std::exp(x - m));
  std::fill(o, o + dh, 0.0);
  for (size_t t = 0; t < keys.size(); ++t) {
    const double w = s[t] / sum;
    const float* vj = v + keys[t] * dh;
    for (int64_t c = 0; c < dh; ++c) o[c] += w * double(vj[c]);
  }
  return m + std::log(sum);
}

double dot_f64(const float* a, const float* b, int64_t n) {
  double acc = 0;
  for (int64_t c = 0; c < n; ++c) acc += double(a[c]) * double(b[c]);
  return acc;
}

// ---------------------------------------------------------------------------------------
// Band attention: query i sees keys [first(i), end(i)) with the local_window limits of
// math/sparse.hpp (window w >= N is vanilla). Shared by local_window and lsan_twin's global
// branch. A tile of kTileRows queries computes the scores against every key its rows' bands
// span (at most kTileRows + w - 1 causal, kTileRows + 2w - 2 bidirectional, and N), so the
// per-thread scratch is one kTileRows x span score block.

int64_t band_span_max(int64_t n, int64_t w, bool causal) {
  w = std::min(w, n);
  const int64_t rows = std::min(kTileRows, n);
  return std::min(n, causal ? rows + w - 1 : rows + 2 * (w - 1));
}

// Per thread one tile's score block.
float* carve_band_slot(Carver& c, const Problem& p, int64_t w) {
  return c.take<float>(kTileRows * band_span_max(p.seq_len, w, p.causal));
}
Slots carve_band(Carver& c, const Problem& p, int64_t w) {
  return take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_band_slot(t, p, w); });
}
size_t band_scratch_bytes(const Problem& p, int64_t w) {
  return layout_bytes([&](Carver& c) { carve_band(c, p, w); });
}

// epilogue(s, i0, rows) runs after a tile's output rows are written (same thread).
template <class Epilogue>
void band_attention(const Problem& p, int64_t w, const Inputs& in, void* scratch, float* out,
                    const ExecContext& ctx, Epilogue&& epilogue) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  w = std::min(w, N);
  const bool causal = p.causal;
  const int64_t tiles = (N + kTileRows - 1) / kTileRows;
  Carver carver(scratch);
  const Slots slots = carve_band(carver, p, w);
  const float scale = 1.0f / std::sqrt(float(dh));
  const int nt = cpu::threads_for(ctx);
#pragma omp parallel num_threads(nt)
  {
    Carver mine(slots.at(omp_get_thread_num()));
    float* sc = carve_band_slot(mine, p, w);
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < S * tiles; ++item) {
      const int64_t s = item / tiles, i0 = (item % tiles) * kTileRows;
      const int64_t rows = std::min(kTileRows, N - i0);
      const int64_t lo = math::local_window_first_key(i0, w);
      const int64_t hi = math::local_window_end_key(i0 + rows - 1, w, N, causal);
      const int64_t span = hi - lo;
      const float* q = in.q + (s * N + i0) * dh;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(span), int(dh),
                  scale, q, int(dh), in.k + (s * N + lo) * dh, int(dh), 0.0f, sc, int(span));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        softmax_range(sc + r * span, math::local_window_first_key(i, w) - lo,
                      math::local_window_end_key(i, w, N, causal) - lo, span);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(span),
                  1.0f, sc, int(span), in.v + (s * N + lo) * dh, int(dh), 0.0f,
                  out + (s * N + i0) * dh, int(dh));
      epilogue(s, i0, rows);
    }
  }
}

// ---------------------------------------------------------------------------------------
// local_window

class LocalWindowCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = local_window_info(Backend::cpu);
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, band_scratch_bytes(p, p.int_param("window"))};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    band_attention(p, p.int_param("window"), in, scratch, out, ctx, [](int64_t, int64_t, int64_t) {});
  }
  double flops(const Problem& p) const override {
    return 4.0 * double(p.sequences()) * double(p.head_dim) *
           math::local_window_pairs(p.seq_len, p.int_param("window"), p.causal);
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim, w = std::min(p.int_param("window"), N);
    const double scale = 1.0 / std::sqrt(double(dh));
    std::vector<int64_t> keys;
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row;
      keys.clear();
      for (int64_t j = 0; j < N; ++j) {
        const bool in_band = p.causal ? (i - w < j && j <= i) : std::abs(i - j) < w;
        if (in_band) keys.push_back(j);
      }
      const float* q = in.q + s * N * dh;
      const float* k = in.k + s * N * dh;
      reference_attend(
          keys, [&](int64_t j) { return scale * dot_f64(q + i * dh, k + j * dh, dh); },
          in.v + s * N * dh, dh, out + r * dh);
    }
  }
};

// ---------------------------------------------------------------------------------------
// reformer_lsh
//
// Suite choices (the paper leaves them open; docs/methods.md section 4):
// - buckets nb = math::reformer_num_buckets (smallest even count >= N / bucket_size, >= 2);
//   chunk size min(bucket_size, N), the last chunk partial; chunk 0 also sees the last
//   chunk (Reformer's look-one-back wraps); with one chunk a chunk sees itself once.
// - one rotation per hash round, shared by every batch and head (sparse_random.hpp), drawn
//   in prepare (untimed, like Performer's features); hashing uses the raw query (the argmax
//   is invariant to the positive scale of normalization).
// - queries are the raw q, keys q / max(||q||, 1e-12); scale 1/sqrt(dh); the self logit is
//   the literal -5e4 (math::kReformerSelfLogit); causal masks j > i by original position.
// - a pair met in several rounds counts in each (no duplicate correction, Reformer's default);
//   round r's output o_r with log-normalizer lse_r enters with weight
//   exp(lse_r) / sum_r' exp(lse_r').

struct ReformerDims : math::ReformerDims {
  int64_t tile;  // query rows per sgemm tile
  explicit ReformerDims(const Problem& p)
      : math::ReformerDims(math::reformer_dims(p.seq_len, reformer_shape(p).bucket_size)),
        tile(std::min(kTileRows, chunk)) {}
};

// Per-thread buffers of one (sequence, chunk) task.
struct ThreadScratch {
  int64_t* counts;  // counting-sort counters (nb + 1)
  float* kbuf;      // gathered normalized keys (max_keys x dh)
  float* vbuf;      // gathered values (max_keys x dh)
  int32_t* kpos;    // their positions (max_keys)
  float* qbuf;      // gathered queries (tile x dh)
  float* sc;        // scores (tile x max_keys)
  float* obuf;      // the round's output rows (tile x dh)
  float* lse;       // their log-normalizers (tile)
};

// The steps of Reformer's run over shared per-position arrays (indexed s * N + i).
struct RunState {
  const Problem& p;
  const ReformerDims& d;
  const Inputs& in;
  const float* rot;  // prepared rotations [n_hashes, dh, nb/2]
  float* out;
  float* inv_norm = nullptr;  // 1 / max(||q_x||, eps)
  int32_t* bucket = nullptr;  // bucket of each position in the current round
  int32_t* sorted = nullptr;  // per sequence: positions sorted by (bucket, position)
  float* run_max = nullptr;   // running max of the rounds' log-normalizers
  float* run_sum = nullptr;   // running sum of the rounds' weights

  // positions [x0, x1): key norms, and an empty running combination
  void begin(int64_t x0, int64_t x1) const {
    const int64_t dh = p.head_dim;
    for (int64_t x = x0; x < x1; ++x) {
      inv_norm[x] = math::reformer_inv_norm(in.q + x * dh, dh);
      std::fill(out + x * dh, out + (x + 1) * dh, 0.f);
      run_max[x] = kNegInf;
      run_sum[x] = 0.f;
    }
  }
  void hash(int64_t round, int64_t x0, int64_t x1) const {
    const int64_t dh = p.head_dim;
    math::lsh_buckets(in.q + x0 * dh, x1 - x0, dh, rot + round * dh * d.half, int(dh),
                      int(d.half), bucket + x0);
  }
  // Chunk c of sequence s in the current round's order: attention to itself and the
  // previous chunk, folded into the running log-sum-exp-weighted output.
  void attend_chunk(int64_t s, int64_t c, const ThreadScratch& ts) const {
    const int64_t N = p.seq_len, dh = p.head_dim;
    const float scale = 1.0f / std::sqrt(float(dh));
    const int32_t* order = sorted + s * N;
    // the chunk's own positions are its queries and its first keys
    const math::KeyRanges keys = math::reformer_chunk_keys(c, d, N);
    const int64_t n_own = keys.n_first, nk = keys.count();
    for (int64_t t = 0; t < nk; ++t) {
      const int64_t j = order[keys.at(t)];
      ts.kpos[t] = int32_t(j);
      const float* qj = in.q + (s * N + j) * dh;
      const float* vj = in.v + (s * N + j) * dh;
      const float nj = inv_norm[s * N + j];
      for (int64_t e = 0; e < dh; ++e) ts.kbuf[t * dh + e] = qj[e] * nj;
      std::copy(vj, vj + dh, ts.vbuf + t * dh);
    }
    for (int64_t t0 = 0; t0 < n_own; t0 += d.tile) {
      const int64_t rows = std::min(d.tile, n_own - t0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* qi = in.q + (s * N + ts.kpos[t0 + r]) * dh;
        std::copy(qi, qi + dh, ts.qbuf + r * dh);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(nk), int(dh), scale,
                  ts.qbuf, int(dh), ts.kbuf, int(dh), 0.0f, ts.sc, int(nk));
      for (int64_t r = 0; r < rows; ++r) {
        const int32_t i = ts.kpos[t0 + r];
        float* row = ts.sc + r * nk;
        for (int64_t t = 0; t < nk; ++t)
          row[t] = math::reformer_logit(i, ts.kpos[t], row[t], p.causal);
        ts.lse[r] = softmax_range(row, 0, nk, nk);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(nk), 1.0f,
                  ts.sc, int(nk), ts.vbuf, int(dh), 0.0f, ts.obuf, int(dh));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t x = s * N + ts.kpos[t0 + r];
        const math::ReformerFold fold = math::reformer_fold(run_max[x], ts.lse[r]);
        float* o = out + x * dh;
        const float* orow = ts.obuf + r * dh;
        for (int64_t e = 0; e < dh; ++e) o[e] = math::reformer_fold_value(o[e], orow[e], fold);
        run_sum[x] = math::reformer_fold_value(run_sum[x], 1.0f, fold);
        run_max[x] = fold.run_max;
      }
    }
  }
  void finish(int64_t x0, int64_t x1) const {
    const int64_t dh = p.head_dim;
    for (int64_t x = x0; x < x1; ++x)
      for (int64_t e = 0; e < dh; ++e)
        out[x * dh + e] = math::reformer_finish(out[x * dh + e], run_sum[x]);
  }
};

class ReformerCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = reformer_info(Backend::cpu);
    return i;
  }
  void validate(const Problem& p) const override {
    validate_common(p);
    if (p.seq_len > (int64_t(1) << 31) - 1)
      throw InvalidProblem(fmt::format("{}: seq_len must be < 2^31", info().name));
  }

  static ThreadScratch carve_thread(Carver& c, const Problem& p, const ReformerDims& d) {
    const int64_t dh = p.head_dim;
    ThreadScratch t{};
    t.counts = c.take<int64_t>(d.buckets + 1);
    t.kbuf = c.take<float>(d.max_keys * dh);
    t.vbuf = c.take<float>(d.max_keys * dh);
    t.kpos = c.take<int32_t>(d.max_keys);
    t.qbuf = c.take<float>(d.tile * dh);
    t.sc = c.take<float>(d.tile * d.max_keys);
    t.obuf = c.take<float>(d.tile * dh);
    t.lse = c.take<float>(d.tile);
    return t;
  }
  // The per-position arrays of the run state (in st), then one ThreadScratch per thread.
  static Slots carve_scratch(Carver& c, const Problem& p, const ReformerDims& d, RunState& st) {
    const int64_t SN = p.sequences() * p.seq_len;
    st.inv_norm = c.take<float>(SN);
    st.bucket = c.take<int32_t>(SN);
    st.sorted = c.take<int32_t>(SN);
    st.run_max = c.take<float>(SN);
    st.run_sum = c.take<float>(SN);
    return take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_thread(t, p, d); });
  }
  // prepared: the rotations [n_hashes, dh, nb/2]
  static float* carve_rotations(Carver& c, const Problem& p, const ReformerDims& d) {
    return c.take<float>(reformer_shape(p).n_hashes * p.head_dim * d.half);
  }
  WorkspaceSize workspace(const Problem& p) const override {
    const ReformerDims d(p);
    const Inputs none{};
    RunState sizing{p, d, none, nullptr, nullptr};
    return {layout_bytes([&](Carver& c) { carve_rotations(c, p, d); }),
            layout_bytes([&](Carver& c) { carve_scratch(c, p, d, sizing); })};
  }
  void prepare(const Problem& p, const Inputs&, void* prepared,
               const ExecContext&) const override {
    const ReformerShape sh = reformer_shape(p);
    const ReformerDims d(p);
    Carver carver(prepared);
    sparse_random::reformer_rotations(sh.seed, sh.n_hashes, p.head_dim, d.half,
                                      carve_rotations(carver, p, d));
  }

  // Two schedules of the same steps. With at least as many sequences as threads, a task is
  // a whole sequence, all rounds in order (no barrier, and one sequence's q, v and output
  // stay in cache). With fewer, each round runs as three parallel phases over all positions
  // and chunks (hash, sort, attend), separated by barriers.
  void run(const Problem& p, const Inputs& in, const void* prepared, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const ReformerDims d(p);
    const int64_t S = p.sequences(), N = p.seq_len, R = reformer_shape(p).n_hashes;
    RunState st{p, d, in, static_cast<const float*>(prepared), out};
    Carver carver(scratch);
    const Slots slots = carve_scratch(carver, p, d, st);
    const int nt = cpu::threads_for(ctx);
#pragma omp parallel num_threads(nt)
    {
      Carver mine(slots.at(omp_get_thread_num()));
      const ThreadScratch ts = carve_thread(mine, p, d);
      if (S >= nt) {
#pragma omp for schedule(dynamic)
        for (int64_t s = 0; s < S; ++s) {
          st.begin(s * N, (s + 1) * N);
          for (int64_t round = 0; round < R; ++round) {
            st.hash(round, s * N, (s + 1) * N);
            counting_sort(st.bucket + s * N, N, d.buckets, ts.counts, st.sorted + s * N);
            for (int64_t c = 0; c < d.chunks; ++c) st.attend_chunk(s, c, ts);
          }
          st.finish(s * N, (s + 1) * N);
        }
      } else {
#pragma omp for schedule(static)
        for (int64_t x = 0; x < S * N; ++x) st.begin(x, x + 1);
        for (int64_t round = 0; round < R; ++round) {
#pragma omp for schedule(static)
          for (int64_t x0 = 0; x0 < S * N; x0 += kHashBatch)
            st.hash(round, x0, std::min(S * N, x0 + kHashBatch));
#pragma omp for schedule(static)
          for (int64_t s = 0; s < S; ++s)
            counting_sort(st.bucket + s * N, N, d.buckets, ts.counts, st.sorted + s * N);
#pragma omp for schedule(dynamic)
          for (int64_t item = 0; item < S * d.chunks; ++item)
            st.attend_chunk(item / d.chunks, item % d.chunks, ts);
        }
#pragma omp for schedule(static)
        for (int64_t x = 0; x < S * N; ++x) st.finish(x, x + 1);
      }
    }
  }

  double flops(const Problem& p) const override {
    const ReformerDims d(p);
    const double N = double(p.seq_len), dh = double(p.head_dim);
    // per round: hashing (N x dh by dh x nb/2) and, per chunk, scores and weighted values
    double pairs = 0;
    for (int64_t c = 0; c < d.chunks; ++c) {
      const math::KeyRanges keys = math::reformer_chunk_keys(c, d, p.seq_len);
      pairs += double(keys.n_first) * double(keys.count());
    }
    return double(p.sequences()) * double(reformer_shape(p).n_hashes) *
           (2.0 * N * dh * double(d.half) + 4.0 * dh * pairs);
  }

  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const ReformerDims d(p);
    const ReformerShape sh = reformer_shape(p);
    const int64_t N = p.seq_len, dh = p.head_dim, R = sh.n_hashes;
    const double scale = 1.0 / std::sqrt(double(dh));
    std::vector<float> rot(size_t(R * dh * d.half));
    sparse_random::reformer_rotations(sh.seed, R, dh, d.half, rot.data());
    // per sequence, per round: the sorted order and each position's rank in it, computed
    // with the kernel's own float32 hash
    std::vector<int32_t> bucket(N), order(R * N), rank(R * N);
    std::vector<int64_t> counts(d.buckets + 1);
    std::vector<double> kn(N * dh), o_round(R * dh), lse(R);
    int64_t cached = -1;
    std::vector<int64_t> keys;
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row;
      const float* q = in.q + s * N * dh;
      if (s != cached) {
        cached = s;
        for (int64_t round = 0; round < R; ++round) {
          math::lsh_buckets(q, N, dh, rot.data() + round * dh * d.half, int(dh), int(d.half),
                            bucket.data());
          counting_sort(bucket.data(), N, d.buckets, counts.data(), order.data() + round * N);
          for (int64_t t = 0; t < N; ++t) rank[round * N + order[round * N + t]] = int32_t(t);
        }
        for (int64_t j = 0; j < N; ++j) {
          const double norm =
              std::max(std::sqrt(dot_f64(q + j * dh, q + j * dh, dh)), math::kReformerNormEps);
          for (int64_t c = 0; c < dh; ++c) kn[j * dh + c] = double(q[j * dh + c]) / norm;
        }
      }
      for (int64_t round = 0; round < R; ++round) {
        const int32_t* ord = order.data() + round * N;
        const math::KeyRanges chunk_keys =
            math::reformer_chunk_keys(rank[round * N + i] / d.chunk, d, N);
        keys.clear();
        for (int64_t u = 0; u < chunk_keys.count(); ++u) {
          const int64_t j = ord[chunk_keys.at(u)];
          if (!(p.causal && j > i)) keys.push_back(j);
        }
        lse[round] = reference_attend(
            keys,
            [&](int64_t j) {
              if (j == i) return double(math::kReformerSelfLogit);
              double a = 0;
              for (int64_t e = 0; e < dh; ++e) a += double(q[i * dh + e]) * kn[j * dh + e];
              return a * scale;
            },
            in.v + s * N * dh, dh, o_round.data() + round * dh);
      }
      const double m = *std::max_element(lse.begin(), lse.end());
      double z = 0;
      for (int64_t round = 0; round < R; ++round) z += std::exp(lse[round] - m);
      double* o = out + r * dh;
      std::fill(o, o + dh, 0.0);
      for (int64_t round = 0; round < R; ++round) {
        const double w = std::exp(lse[round] - m) / z;
        for (int64_t e = 0; e < dh; ++e) o[e] += w * o_round[round * dh + e];
      }
    }
  }

 private:
  // Stable counting sort of positions 0..n-1 by bucket id: order[] = positions sorted by
  // (bucket, position). counts: nb + 1 entries of scratch.
  static void counting_sort(const int32_t* bucket, int64_t n, int64_t nb, int64_t* counts,
                            int32_t* order) {
    std::fill(counts, counts + nb + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++counts[bucket[i] + 1];
    for (int64_t b = 0; b < nb; ++b) counts[b + 1] += counts[b];
    for (int64_t i = 0; i < n; ++i) order[counts[bucket[i]]++] = int32_t(i);
  }
};

// ---------------------------------------------------------------------------------------
// sinkhorn
//
// Suite choices: block size min(block, N), the last block partial; block logits
// qbar_a . kbar_b / (sqrt(dh) * 0.75) from the mean queries and keys of each block; five
// log-domain Sinkhorn iterations (row then column normalization, no Gumbel noise, so the
// method is deterministic); the sorted block of a query block is the argmax of its soft
// permutation row (a hard choice: the keys are the block's own keys, never a mixture, so the
// cost stays O(N block dh) and no N/block x N/block tensor is stored). Causal: the
// permutation is restricted to past blocks b < a (block 0 has none and sees only itself),
// triangular mask inside the own block. A query block whose sorted block is itself (possible
// bidirectionally) sees its block once. See math::sinkhorn_sorted_blocks.

struct SinkhornDims : math::SinkhornDims {
  int64_t tile;  // query rows per sgemm tile
  explicit SinkhornDims(const Problem& p)
      : math::SinkhornDims(math::sinkhorn_dims(p.seq_len, sinkhorn_shape(p).block)),
        tile(std::min(kTileRows, block)) {}
  int64_t size_of(int64_t b, int64_t n) const { return math::unit_size(b, block, n); }
};

// The sorted block of every block of one sequence, from float32 q and k (kernel and
// reference call this same function). qbar etc.: blocks x dh; u, v, row: blocks floats;
// allowed: blocks bytes.
void sinkhorn_means(const Problem& p, const SinkhornDims& d, const float* q, const float* k,
                    int64_t b, float* qbar, float* kbar, float* qbarT, float* kbarT) {
  const int64_t dh = p.head_dim, n = d.size_of(b, p.seq_len), nb = d.blocks;
  math::block_mean_scaled(q + b * d.block * dh, n, dh, math::sinkhorn_query_factor(dh),
                          qbar + b * dh);
  math::block_mean_scaled(k + b * d.block * dh, n, dh, 1.0f, kbar + b * dh);
  for (int64_t c = 0; c < dh; ++c) {
    qbarT[c * nb + b] = qbar[b * dh + c];
    kbarT[c * nb + b] = kbar[b * dh + c];
  }
}

class SinkhornCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = sinkhorn_info(Backend::cpu);
    return i;
  }
  // Shared: block means of q and k and their transposes [S, blocks, dh], the sorted block of
  // each block; per thread the Sinkhorn vectors and one tile's scores.
  struct Scratch {
    float* qbar;
    float* kbar;
    float* qbarT;
    float* kbarT;
    int32_t* sorted;
    Slots slots;
  };
  struct ThreadSlot {
    float* u;
    float* v;
    float* row;
    unsigned char* allowed;
    float* sc;
  };
  static ThreadSlot carve_thread(Carver& c, const SinkhornDims& d) {
    ThreadSlot t{};
    t.u = c.take<float>(d.blocks);
    t.v = c.take<float>(d.blocks);
    t.row = c.take<float>(d.blocks);
    t.allowed = c.take<unsigned char>(d.blocks);
    t.sc = c.take<float>(d.tile * d.max_keys);
    return t;
  }
  static Scratch carve_scratch(Carver& c, const Problem& p, const SinkhornDims& d) {
    const int64_t SB = p.sequences() * d.blocks, dh = p.head_dim;
    Scratch s{};
    s.qbar = c.take<float>(SB * dh);
    s.kbar = c.take<float>(SB * dh);
    s.qbarT = c.take<float>(SB * dh);
    s.kbarT = c.take<float>(SB * dh);
    s.sorted = c.take<int32_t>(SB);
    s.slots = take_slots(c, cpu::max_threads(), [&](Carver& t) { carve_thread(t, d); });
    return s;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    const SinkhornDims d(p);
    return {0, layout_bytes([&](Carver& c) { carve_scratch(c, p, d); })};
  }

  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const SinkhornDims d(p);
    const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim, nb = d.blocks;
    const bool causal = p.causal;
    const float scale = 1.0f / std::sqrt(float(dh));
    Carver carver(scratch);
    const Scratch scr = carve_scratch(carver, p, d);
    float* const qbar = scr.qbar;
    float* const kbar = scr.kbar;
    float* const qbarT = scr.qbarT;
    float* const kbarT = scr.kbarT;
    int32_t* const sorted = scr.sorted;
    const int64_t tiles_per_block = (d.block + d.tile - 1) / d.tile;
    const int nt = cpu::threads_for(ctx);
#pragma omp parallel num_threads(nt)
    {
      Carver mine(scr.slots.at(omp_get_thread_num()));
      const auto [u, v, row, allowed, sc] = carve_thread(mine, d);
#pragma omp for schedule(static)
      for (int64_t x = 0; x < S * nb; ++x) {
        const int64_t s = x / nb, off = s * nb * dh;
        sinkhorn_means(p, d, in.q + s * N * dh, in.k + s * N * dh, x % nb, qbar + off,
                       kbar + off, qbarT + off, kbarT + off);
      }
#pragma omp for schedule(dynamic)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t off = s * nb * dh;
        math::sinkhorn_sorted_blocks(qbar + off, kbar + off, qbarT + off, kbarT + off, nb, dh,
                                     causal, u, v, row, allowed, sorted + s * nb);
      }
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < S * nb * tiles_per_block; ++item) {
        const int64_t s = item / (nb * tiles_per_block);
        const int64_t a = (item / tiles_per_block) % nb;
        const int64_t t0 = (item % tiles_per_block) * d.tile;
        const math::KeyRanges keys = math::sinkhorn_block_keys(a, sorted[s * nb + a], d, N);
        const int64_t n_a = keys.n_first, n_sb = keys.n_second, sb0 = keys.second;
        if (t0 >= n_a) continue;  // past the end of the last, partial block
        const int64_t rows = std::min(d.tile, n_a - t0);
        // own block keys the tile can see (causal: up to its last row), then the sorted block
        const int64_t n_own = causal ? t0 + rows : n_a;
        const int64_t nk = n_own + n_sb;
        const float* q = in.q + (s * N + a * d.block + t0) * dh;
        const float* k_own = in.k + (s * N + a * d.block) * dh;
        const float* v_own = in.v + (s * N + a * d.block) * dh;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n_own), int(dh),
                    scale, q, int(dh), k_own, int(dh), 0.0f, sc, int(nk));
        if (n_sb)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n_sb), int(dh),
                      scale, q, int(dh), in.k + (s * N + sb0) * dh, int(dh), 0.0f,
                      sc + n_own, int(nk));
        for (int64_t r = 0; r < rows; ++r) {
          float* srow = sc + r * nk;
          if (causal)
            std::fill(srow + t0 + r + 1, srow + n_own, kNegInf);  // own keys after the query
          softmax_range(srow, 0, nk, nk);
        }
        float* o = out + (s * N + a * d.block + t0) * dh;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(n_own),
                    1.0f, sc, int(nk), v_own, int(dh), 0.0f, o, int(dh));
        if (n_sb)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dh), int(n_sb),
                      1.0f, sc + n_own, int(nk), in.v + (s * N + sb0) * dh, int(dh),
                      1.0f, o, int(dh));
      }
    }
  }

  double flops(const Problem& p) const override {
    const SinkhornDims d(p);
    const int64_t N = p.seq_len;
    const double dh = double(p.head_dim), nb = double(d.blocks);
    // attention: own block (triangle when causal) plus a full sorted block for every block
    // that has one (an upper estimate: the sorted block is data-dependent and may be the
    // partial last block, or, bidirectionally, the block itself)
    double pairs = 0;
    for (int64_t b = 0; b < d.blocks; ++b) {
      const double n = double(d.size_of(b, N));
      pairs += p.causal ? n * (n + 1) / 2 : n * n;
      if (d.blocks > 1 && !(p.causal && b == 0)) pairs += n * double(d.block);
    }
    const double sort = 2.0 * double(N) * dh                    // block means
                        + 2.0 * nb * nb * dh                    // block logits
                        + 6.0 * math::kSinkhornIterations * nb * nb;  // normalization steps
    return double(p.sequences()) * (4.0 * dh * pairs + sort);
  }

  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const SinkhornDims d(p);
    const int64_t N = p.seq_len, dh = p.head_dim, nb = d.blocks;
    const double scale = 1.0 / std::sqrt(double(dh));
    std::vector<float> qbar(nb * dh), kbar(nb * dh), qbarT(nb * dh), kbarT(nb * dh);
    std::vector<float> u(nb), v(nb), row(nb);
    std::vector<unsigned char> allowed(nb);
    std::vector<int32_t> sorted(nb);
    int64_t cached = -1;
    std::vector<int64_t> keys;
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row;
      const float* q = in.q + s * N * dh;
      const float* k = in.k + s * N * dh;
      if (s != cached) {  // the block choice, in float32 through the kernel's own code
        cached = s;
        for (int64_t b = 0; b < nb; ++b)
          sinkhorn_means(p, d, q, k, b, qbar.data(), kbar.data(), qbarT.data(), kbarT.data());
        math::sinkhorn_sorted_blocks(qbar.data(), kbar.data(), qbarT.data(), kbarT.data(), nb,
                                     dh, p.causal, u.data(), v.data(), row.data(),
                                     allowed.data(), sorted.data());
      }
      const int64_t a = i / d.block;
      const math::KeyRanges block_keys = math::sinkhorn_block_keys(a, sorted[a], d, N);
      if (p.causal && block_keys.n_second > 0 && sorted[a] >= a)
        throw InvalidProblem("sinkhorn reference: causal sorted block is not in the past");
      keys.clear();
      for (int64_t u = 0; u < block_keys.count(); ++u) {
        const int64_t j = block_keys.at(u);
        if (!(p.causal && j > i)) keys.push_back(j);
      }
      reference_attend(
          keys, [&](int64_t j) { return scale * dot_f64(q + i * dh, k + j * dh, dh); },
          in.v + s * N * dh, dh, out + r * dh);
    }
  }
};

// ---------------------------------------------------------------------------------------
// lsan_twin
//
// Suite choices: the local branch convolves V (the value path of the head; LSAN convolves
// the item representations its attention reads), depthwise, width L, tap t multiplies
// position i - t, zero padding before position 0 (causal padding, docs/methods.md section 4.4);
// the global branch is vanilla softmax attention with scale 1/sqrt(dh), causal or
// bidirectional per the problem; the output is their plain sum, o = global + local (LSAN's
// twin outputs are added before its feed-forward). The bidirectional form keeps the same
// causal-padded convolution.

class LsanTwinCpu final : public Kernel {
 public:
  const KernelInfo& info() const override {
    static const KernelInfo i = lsan_twin_info(Backend::cpu);
    return i;
  }
  WorkspaceSize workspace(const Problem& p) const override {
    return {0, band_scratch_bytes(p, p.seq_len)};
  }
  void run(const Problem& p, const Inputs& in, const void*, void* scratch, float* out,
           const ExecContext& ctx) const override {
    const int64_t N = p.seq_len, dh = p.head_dim, L = lsan_shape(p).conv_width;
    band_attention(p, N, in, scratch, out, ctx, [&](int64_t s, int64_t i0, int64_t rows) {
      const float* conv = in.conv + (s % p.heads) * L * dh;
      const float* v = in.v + s * N * dh;
      for (int64_t i = i0; i < i0 + rows; ++i)
        math::lsan_local_add_row(conv, v, i, L, dh, out + (s * N + i) * dh);
    });
  }
  double flops(const Problem& p) const override {
    const double S = double(p.sequences()), N = double(p.seq_len), dh = double(p.head_dim);
    const double attention = 4.0 * S * N * N * dh;
    return (p.causal ? attention / 2 : attention) +
           2.0 * S * N * double(lsan_shape(p).conv_width) * dh;
  }
  void reference_rows(const Problem& p, const Inputs& in, std::span<const RowId> rows,
                      double* out) const override {
    const int64_t N = p.seq_len, dh = p.head_dim, L = lsan_shape(p).conv_width;
    vanilla_reference_rows(p, in.q, in.k, in.v, 1.0 / std::sqrt(double(dh)), rows, out);
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t s = rows[r].seq, i = rows[r].row;
      const float* conv = in.conv + (s % p.heads) * L * dh;
      for (int64_t t = 0; t < L && t <= i; ++t)
        for (int64_t c = 0; c < dh; ++c)
          out[r * dh + c] += double(conv[t * dh + c]) * double(in.v[(s * N + i - t) * dh + c]);
    }
  }
};

}  // namespace

ATTNBENCH_REGISTER_KERNEL(LocalWindowCpu);
ATTNBENCH_REGISTER_KERNEL(ReformerCpu);
ATTNBENCH_REGISTER_KERNEL(SinkhornCpu);
ATTNBENCH_REGISTER_KERNEL(LsanTwinCpu);

}  // namespace attnbench
