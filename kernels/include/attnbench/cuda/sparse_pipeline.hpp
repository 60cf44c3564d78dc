// The CUDA algorithms of reformer_lsh, sinkhorn and lsan_twin (docs/methods.md section 4), written
// once for the GPU and for a CPU emulation, like linear_pipeline.hpp: per-item functors (AB_HD,
// one GPU thread each) and pipelines over a launcher (workspace.hpp). kernels/cuda/sparse.cu
// runs them on the GPU; tests/test_cuda_tiling.cpp runs them on the CPU against the CPU twins
// (kernels/cpu/sparse.cpp) and float64. Index maps and plans: tiling.hpp ("Sparse family").
// Every formula is math/sparse.hpp's or math/softmax.hpp's, the CPU twins' functions.
//   reformer_lsh  all rounds hashed (math::lsh_bucket) and counting-sorted at once, then per
//                 round the unit attention below over chunks of sorted slots, folded into the
//                 running log-sum-exp combination (math::reformer_fold), normalized at the end
//   sinkhorn      block means, the block logits once, five Sinkhorn row and column steps
//                 (math::sinkhorn_potential), the argmax block, then the unit attention over
//                 blocks (own block, then the sorted block)
//   lsan_twin     the flash block of vanilla_flash (launcher.flash), then the causal depthwise
//                 convolution of V added per output element (math::lsan_local_add_channel)
// The method parameters come in as the method's shape (descriptions.hpp), read nowhere else.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "attnbench/cuda/tiling.hpp"
#include "attnbench/cuda/workspace.hpp"
#include "attnbench/descriptions.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/math/softmax.hpp"
#include "attnbench/math/sparse.hpp"
#include "attnbench/sparse_random.hpp"

namespace attnbench::gpu {

// ---- the unit attention (reformer_lsh, sinkhorn) ---------------------------------------------
// A Layout extends SparseView with, for sequence s:
//   keys(s, cu)              the key list of unit cu (math::KeyRanges of key indices)
//   query_position(s, r)     the position of row r
//   key_position(s, idx)     the position of key index idx
//   key_value(s, j, c)       column c of the key at position j
//   logit(i, j, scaled_dot)  the masked logit of query i and key j
//   write(s, i, e, o, lse)   stores output element (i, e) of the unit attention

struct SparseView {
  int64_t n, dh, unit, max_keys;
  float scale;
  bool causal;
  const float* q;
  const float* v;
};

// kt [g, lu, d, u]: key u of the slab's unit lu, column d (0 past the unit's list).
template <class Layout>
struct SparseGatherKeys {
  Layout lay;
  SparseSlab slab;
  float* kt;
  AB_HD void operator()(int64_t item) const {
    const int64_t per_unit = lay.dh * lay.max_keys;
    const Item3 it = item3(item, slab.units, per_unit);  // (g, lu, d * max_keys + u)
    const int64_t s = slab.s0 + it.i0, d = it.i2 / lay.max_keys, u = it.i2 % lay.max_keys;
    const math::KeyRanges keys = lay.keys(s, slab.u0 + it.i1);
    kt[item] = u < keys.count() ? lay.key_value(s, lay.key_position(s, keys.at(u)), d) : 0.0f;
  }
};

// s [g, t, u]: the scaled, masked logit of slab row t and key u; -inf past the unit's list.
template <class Layout>
struct SparseScores {
  Layout lay;
  SparseSlab slab;
  const float* kt;
  float* scores;
  AB_HD void operator()(int64_t item) const {
    const Item3 it = sparse_row_item(item, slab, lay.max_keys);  // (g, t, u)
    const int64_t s = slab.s0 + it.i0, r = slab.r0 + it.i1;
    const math::KeyRanges keys = lay.keys(s, r / lay.unit);
    if (it.i2 >= keys.count()) {
      scores[item] = math::neg_inf_f();
      return;
    }
    const int64_t i = lay.query_position(s, r), j = lay.key_position(s, keys.at(it.i2));
    const float* qi = lay.q + (s * lay.n + i) * lay.dh;
    const int64_t lu = sparse_local_unit(slab, it.i1, lay.unit);
    const float* k = kt + (it.i0 * slab.units + lu) * lay.dh * lay.max_keys + it.i2;
    float acc = 0.0f;
    for (int64_t d = 0; d < lay.dh; ++d) acc += qi[d] * k[d * lay.max_keys];
    scores[item] = lay.logit(i, j, acc * lay.scale);
  }
};

// Row (g, t): softmax over the unit's keys in place; lse [g, t] its log-normalizer.
template <class Layout>
struct SparseSoftmax {
  Layout lay;
  SparseSlab slab;
  float* scores;
  float* lse;
  AB_HD void operator()(int64_t item) const {
    const int64_t s = slab.s0 + item / slab.rows, r = slab.r0 + item % slab.rows;
    lse[item] =
        math::softmax_in_place(scores + item * lay.max_keys, 0, lay.keys(s, r / lay.unit).count());
  }
};

// Output element (g, t, e) = sum_u p[g, t, u] v[key u][e], handed to the layout's write.
template <class Layout>
struct SparseOutput {
  Layout lay;
  SparseSlab slab;
  const float* scores;
  const float* lse;
  AB_HD void operator()(int64_t item) const {
    const Item3 it = sparse_row_item(item, slab, lay.dh);  // (g, t, e)
    const int64_t s = slab.s0 + it.i0, r = slab.r0 + it.i1, row = it.i0 * slab.rows + it.i1;
    const math::KeyRanges keys = lay.keys(s, r / lay.unit);
    const float* p = scores + row * lay.max_keys;
    const float* vs = lay.v + s * lay.n * lay.dh + it.i2;
    float o = 0.0f;
    for (int64_t u = 0; u < keys.count(); ++u)
      o += p[u] * vs[lay.key_position(s, keys.at(u)) * lay.dh];
    lay.write(s, lay.query_position(s, r), it.i2, o, lse[row]);
  }
};

// The unit attention's slab buffers.
struct SparseScratch {
  float* kt;      // [group * units * dh * max_keys]
  float* scores;  // [group * rows * max_keys]
  float* lse;     // [group * rows]
};
inline SparseScratch sparse_carve(Carver& c, const SparsePlan& plan, int64_t dh) {
  SparseScratch s{};
  s.kt = c.take<float>(plan.group * plan.units * dh * plan.max_keys);
  s.scores = c.take<float>(plan.group * plan.rows * plan.max_keys);
  s.lse = c.take<float>(plan.group * plan.rows);
  return s;
}

// One slab: gather, scores, softmax, output (four launches).
template <class L, class Layout>
void sparse_attend_slab(L& l, const Layout& lay, const SparseSlab& slab, const SparseScratch& sc) {
  l.each("sparse gather keys", sparse_key_items(slab, lay.dh, lay.max_keys),
         SparseGatherKeys<Layout>{lay, slab, sc.kt});
  l.each("sparse scores", sparse_row_items(slab, lay.max_keys),
         SparseScores<Layout>{lay, slab, sc.kt, sc.scores});
  l.each("sparse softmax", sparse_row_items(slab),
         SparseSoftmax<Layout>{lay, slab, sc.scores, sc.lse});
  l.each("sparse output", sparse_row_items(slab, lay.dh),
         SparseOutput<Layout>{lay, slab, sc.scores, sc.lse});
}

inline SparseView sparse_view(const Problem& p, const Inputs& in, int64_t unit, int64_t max_keys) {
  return {p.seq_len, p.head_dim, unit, max_keys, 1.0f / std::sqrt(float(p.head_dim)),
          p.causal,  in.q,       in.v};
}

// ---- reformer_lsh ------------------------------------------------------------------------------

// Units are chunks of one round's sorted slots; keys are L2-normalized queries (shared QK).
struct ReformerLayout : SparseView {
  math::ReformerDims d;
  const float* inv_norm;  // [S * N]
  const int32_t* order;   // this round's sorted positions [S, N]
  const float* run_max;   // [S * N]
  float* out;
  AB_HD math::KeyRanges keys(int64_t, int64_t cu) const {
    return math::reformer_chunk_keys(cu, d, n);
  }
  AB_HD int64_t query_position(int64_t s, int64_t r) const { return order[s * n + r]; }
  AB_HD int64_t key_position(int64_t s, int64_t slot) const { return order[s * n + slot]; }
  AB_HD float key_value(int64_t s, int64_t j, int64_t c) const {
    return q[(s * n + j) * dh + c] * inv_norm[s * n + j];
  }
  AB_HD float logit(int64_t i, int64_t j, float scaled_dot) const {
    return math::reformer_logit(i, j, scaled_dot, causal);
  }
  // out = out * keep + o * add (run_max is updated after the round's outputs, ReformerFoldState)
  AB_HD void write(int64_t s, int64_t i, int64_t e, float o, float lse) const {
    const int64_t x = s * n + i;
    float& dst = out[x * dh + e];
    dst = math::reformer_fold_value(dst, o, math::reformer_fold(run_max[x], lse));
  }
};

// Position x: 1 / ||q_x||, an empty running combination.
struct ReformerBegin {
  const float* q;
  int64_t dh;
  float* inv_norm;
  float* run_max;
  float* run_sum;
  AB_HD void operator()(int64_t x) const {
    inv_norm[x] = math::reformer_inv_norm(q + x * dh, dh);
    run_max[x] = math::neg_inf_f();
    run_sum[x] = 0.0f;
  }
};

// bucket [round, s, i] of every round at once (round r's rotation: rot + r * dh * half).
struct ReformerHash {
  const float* q;
  const float* rot;
  int64_t positions, dh, half;  // positions = S * N
  int32_t* bucket;
  AB_HD void operator()(int64_t item) const {
    const int64_t round = item / positions, x = item % positions;
    bucket[item] = math::lsh_bucket(q + x * dh, rot + round * dh * half, int(dh), int(half));
  }
};

// The counting sort of tiling.hpp, over `vs` = (round, sequence) lists of n positions.
struct SortHistogram {
  const int32_t* bucket;
  int64_t n, buckets;
  SortPlan sp;
  int32_t* counts;
  AB_HD void operator()(int64_t item) const {
    const int64_t vs = item / sp.chunks, c = item % sp.chunks;
    int32_t* row = counts + item * buckets;
    for (int64_t b = 0; b < buckets; ++b) row[b] = 0;
    for (int64_t i = c * sp.len; i < min_i64(n, (c + 1) * sp.len); ++i) ++row[bucket[vs * n + i]];
  }
};
struct SortOffsets {
  int64_t buckets;
  SortPlan sp;
  int32_t* counts;
  int32_t* total;
  AB_HD void operator()(int64_t item) const {
    const int64_t vs = item / buckets, b = item % buckets;
    int32_t run = 0;
    for (int64_t c = 0; c < sp.chunks; ++c) {
      int32_t* at = counts + (vs * sp.chunks + c) * buckets + b;
      const int32_t here = *at;
      *at = run;
      run += here;
    }
    total[item] = run;
  }
};
struct SortStarts {
  int64_t buckets;
  int32_t* total;
  AB_HD void operator()(int64_t vs) const {
    int32_t run = 0;
    for (int64_t b = 0; b < buckets; ++b) {
      const int32_t here = total[vs * buckets + b];
      total[vs * buckets + b] = run;
      run += here;
    }
  }
};
struct SortScatter {
  const int32_t* bucket;
  int64_t n, buckets;
  SortPlan sp;
  int32_t* counts;
  const int32_t* starts;
  int32_t* order;
  AB_HD void operator()(int64_t item) const {
    const int64_t vs = item / sp.chunks, c = item % sp.chunks;
    int32_t* row = counts + item * buckets;
    for (int64_t i = c * sp.len; i < min_i64(n, (c + 1) * sp.len); ++i) {
      const int32_t b = bucket[vs * n + i];
      order[vs * n + starts[vs * buckets + b] + row[b]++] = int32_t(i);
    }
  }
};

// Row (g, t) of a slab: the running weight sum and max past this round (after its outputs).
struct ReformerFoldState {
  ReformerLayout lay;
  SparseSlab slab;
  const float* lse;
  float* run_max;
  float* run_sum;
  AB_HD void operator()(int64_t item) const {
    const int64_t s = slab.s0 + item / slab.rows, r = slab.r0 + item % slab.rows;
    const int64_t x = s * lay.n + lay.query_position(s, r);
    const math::ReformerFold f = math::reformer_fold(run_max[x], lse[item]);
    run_sum[x] = math::reformer_fold_value(run_sum[x], 1.0f, f);
    run_max[x] = f.run_max;
  }
};

// Output element (x, e): the combination over the rounds.
struct ReformerFinish {
  int64_t dh;
  const float* run_sum;
  float* out;
  AB_HD void operator()(int64_t item) const {
    out[item] = math::reformer_finish(out[item], run_sum[item / dh]);
  }
};

struct ReformerPlan {
  math::ReformerDims d;
  SortPlan sort;
  SparsePlan attend;
};
// budget: the slab budget (tests pass small ones to reach many slabs and tiles).
inline ReformerPlan reformer_plan(const Problem& p, const ReformerShape& sh,
                                  int64_t budget = kSparseSlabFloats) {
  ReformerPlan r{};
  r.d = math::reformer_dims(p.seq_len, sh.bucket_size);
  r.sort = sort_plan(p.seq_len, r.d.buckets);
  r.attend = sparse_plan(p.sequences(), p.seq_len, r.d.chunk, r.d.max_keys, p.head_dim, budget);
  return r;
}

struct ReformerScratch {
  float* inv_norm;  // [S * N]
  float* run_max;   // [S * N]
  float* run_sum;   // [S * N]
  int32_t* bucket;  // [R * S * N]
  int32_t* order;   // [R * S * N]
  int32_t* counts;  // [R * S * sort chunks * buckets]
  int32_t* starts;  // [R * S * buckets]
  SparseScratch attend;
};
inline ReformerScratch reformer_carve(const Problem& p, const ReformerShape& sh,
                                      const ReformerPlan& plan, void* base,
                                      size_t* bytes = nullptr) {
  const int64_t SN = p.sequences() * p.seq_len, lists = sh.n_hashes * p.sequences();
  Carver c(base);
  ReformerScratch s{};
  s.inv_norm = c.take<float>(SN);
  s.run_max = c.take<float>(SN);
  s.run_sum = c.take<float>(SN);
  s.bucket = c.take<int32_t>(sh.n_hashes * SN);
  s.order = c.take<int32_t>(sh.n_hashes * SN);
  s.counts = c.take<int32_t>(lists * plan.sort.chunks * plan.d.buckets);
  s.starts = c.take<int32_t>(lists * plan.d.buckets);
  s.attend = sparse_carve(c, plan.attend, p.head_dim);
  if (bytes) *bytes = c.used();
  return s;
}

// Prepared: the rotations of every round [R, dh, buckets / 2], drawn on the host by the CPU
// twin's seeded generator (sparse_random.hpp) and uploaded; the float64 reference draws the same.
inline WorkspaceSize reformer_workspace(const Problem& p, const ReformerShape& sh,
                                        const ReformerPlan& plan) {
  WorkspaceSize ws;
  ws.prepared_bytes = align_bytes(size_t(sh.n_hashes * p.head_dim * plan.d.half) * sizeof(float));
  reformer_carve(p, sh, plan, nullptr, &ws.scratch_bytes);
  return ws;
}
template <class L>
void reformer_prepare(L& l, const Problem& p, const ReformerShape& sh, void* prepared) {
  const int64_t half = math::reformer_dims(p.seq_len, sh.bucket_size).half;
  std::vector<float> rot(size_t(sh.n_hashes * p.head_dim * half));
  sparse_random::reformer_rotations(sh.seed, sh.n_hashes, p.head_dim, half, rot.data());
  l.upload(prepared, rot.data(), rot.size() * sizeof(float));
}

// Stable counting sort of `lists` lists of n bucket ids (bucket [list, n]) by bucket:
// order [list, n] = the positions sorted by (bucket, position). counts: lists * sp.chunks *
// buckets ints, starts: lists * buckets ints of scratch.
template <class L>
void counting_sort_lists(L& l, int64_t lists, int64_t n, int64_t buckets, const SortPlan& sp,
                         const int32_t* bucket, int32_t* counts, int32_t* starts, int32_t* order) {
  l.each("sort histogram", lists * sp.chunks, SortHistogram{bucket, n, buckets, sp, counts});
  l.each("sort offsets", lists * buckets, SortOffsets{buckets, sp, counts, starts});
  l.each("sort starts", lists, SortStarts{buckets, starts});
  l.each("sort scatter", lists * sp.chunks,
         SortScatter{bucket, n, buckets, sp, counts, starts, order});
}

// Hash every round, then sort each (round, sequence) by (bucket, position).
template <class L>
void reformer_hash_and_sort(L& l, const Problem& p, const ReformerShape& sh,
                            const ReformerPlan& plan, const float* q, const float* rot,
                            const ReformerScratch& sc) {
  const int64_t SN = p.sequences() * p.seq_len;
  l.each("reformer hash", sh.n_hashes * SN,
         ReformerHash{q, rot, SN, p.head_dim, plan.d.half, sc.bucket});
  counting_sort_lists(l, sh.n_hashes * p.sequences(), p.seq_len, plan.d.buckets, plan.sort,
                      sc.bucket, sc.counts, sc.starts, sc.order);
}

template <class L>
void reformer_run(L& l, const Problem& p, const ReformerShape& sh, const ReformerPlan& plan,
                  const Inputs& in, const void* prepared, void* scratch, float* out) {
  const int64_t S = p.sequences(), N = p.seq_len, dh = p.head_dim;
  const ReformerScratch sc = reformer_carve(p, sh, plan, scratch);
  l.zero(out, S * N * dh);
  l.each("reformer begin", S * N, ReformerBegin{in.q, dh, sc.inv_norm, sc.run_max, sc.run_sum});
  reformer_hash_and_sort(l, p, sh, plan, in.q, static_cast<const float*>(prepared), sc);
  const SparseView view = sparse_view(p, in, plan.d.chunk, plan.d.max_keys);
  for (int64_t round = 0; round < sh.n_hashes; ++round) {
    const ReformerLayout lay{view, plan.d, sc.inv_norm, sc.order + round * S * N, sc.run_max, out};
    for (int64_t x = 0; x < sparse_slabs(plan.attend, S, N); ++x) {
      const SparseSlab slab = sparse_slab(plan.attend, S, N, x);
      if (slab.rows == 0) continue;  // a tile past the end of the last, partial chunk
      sparse_attend_slab(l, lay, slab, sc.attend);
      l.each("reformer fold state", sparse_row_items(slab),
             ReformerFoldState{lay, slab, sc.attend.lse, sc.run_max, sc.run_sum});
    }
  }
  l.each("reformer finish", S * N * dh, ReformerFinish{dh, sc.run_sum, out});
}

// ---- sinkhorn ----------------------------------------------------------------------------------

// Units are blocks of positions; keys are the block's own, then its sorted block's.
struct SinkhornLayout : SparseView {
  math::SinkhornDims d;
  const float* k;
  const int32_t* sorted;  // [S, blocks]
  float* out;
  AB_HD math::KeyRanges keys(int64_t s, int64_t a) const {
    return math::sinkhorn_block_keys(a, sorted[s * d.blocks + a], d, n);
  }
  AB_HD int64_t query_position(int64_t, int64_t r) const { return r; }
  AB_HD int64_t key_position(int64_t, int64_t j) const { return j; }
  AB_HD float key_value(int64_t s, int64_t j, int64_t c) const { return k[(s * n + j) * dh + c]; }
  AB_HD float logit(int64_t i, int64_t j, float scaled_dot) const {
    return math::causal_logit(i, j, scaled_dot, causal);
  }
  AB_HD void write(int64_t s, int64_t i, int64_t e, float o, float) const {
    out[(s * n + i) * dh + e] = o;
  }
};

// Item (g, b, c): qbar [g, b, c] (times the logit factor) and kbarT [g, c, b] of sequence s0 + g.
struct SinkhornMeans {
  const float* q;
  const float* k;
  int64_t n, dh, s0;
  math::SinkhornDims d;
  float* qbar;
  float* kbarT;
  AB_HD void operator()(int64_t item) const {
    const Item3 it = item3(item, d.blocks, dh);
    const int64_t rows = math::unit_size(it.i1, d.block, n);
    const int64_t at = ((s0 + it.i0) * n + it.i1 * d.block) * dh;
    qbar[item] =
        math::block_mean_scaled_column(q + at, rows, dh, math::sinkhorn_query_factor(dh), it.i2);
    kbarT[(it.i0 * dh + it.i2) * d.blocks + it.i1] =
        math::block_mean_scaled_column(k + at, rows, dh, 1.0f, it.i2);
  }
};
// Item (g, a, b): X [g, a, b] = XT [g, b, a] = qbar_a . kbar_b (the fmaf chain of
// math::dots_transposed, which the CPU twin runs for both the rows and the columns).
struct SinkhornLogits {
  int64_t nb, dh;
  const float* qbar;
  const float* kbarT;
  float* x;
  float* xt;
  AB_HD void operator()(int64_t item) const {
    const Item3 it = item3(item, nb, nb);
    const float val = math::dot_transposed_at(qbar + (it.i0 * nb + it.i1) * dh,
                                              kbarT + it.i0 * dh * nb, nb, dh, it.i2);
    x[item] = val;
    xt[(it.i0 * nb + it.i2) * nb + it.i1] = val;
  }
};
// Row step, item (g, a): u [g, a] from X row a and v. Column step (`column`), item (g, b):
// v [g, b] from XT row b and u.
struct SinkhornStep {
  int64_t nb;
  bool causal, column;
  const float* table;  // X (row step) or XT (column step)
  const float* other;  // v or u
  float* potential;    // u or v
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / nb, block = item % nb;
    const float* z = table + item * nb;
    const float* o = other + g * nb;
    potential[item] =
        column ? math::sinkhorn_potential(z, o, math::SinkhornColumnMask{block, causal}, nb)
               : math::sinkhorn_potential(z, o, math::SinkhornRowMask{block, causal}, nb);
  }
};
// Item (g, a): sorted [s0 + g, a].
struct SinkhornArgmax {
  int64_t nb, s0;
  bool causal;
  const float* x;
  const float* v;
  int32_t* sorted;
  AB_HD void operator()(int64_t item) const {
    const int64_t g = item / nb, a = item % nb;
    sorted[(s0 + g) * nb + a] =
        math::sinkhorn_argmax_block(x + item * nb, v + g * nb, a, nb, causal);
  }
};

struct SinkhornPlan {
  math::SinkhornDims d;
  int64_t sort_group;  // sequences per block-sorting group
  SparsePlan attend;
};
inline SinkhornPlan sinkhorn_plan(const Problem& p, const SinkhornShape& sh,
                                  int64_t budget = kSparseSlabFloats,
                                  int64_t sort_budget = kSinkhornGroupFloats) {
  SinkhornPlan r{};
  r.d = math::sinkhorn_dims(p.seq_len, sh.block);
  r.sort_group = sinkhorn_sort_group(p.sequences(), r.d.blocks, p.head_dim, sort_budget);
  r.attend = sparse_plan(p.sequences(), p.seq_len, r.d.block, r.d.max_keys, p.head_dim, budget);
  return r;
}

struct SinkhornScratch {
  float* qbar;      // [G, nb, dh]
  float* kbarT;     // [G, dh, nb]
  float* x;         // [G, nb, nb]
  float* xt;        // [G, nb, nb]
  float* u;         // [G, nb]
  float* v;         // [G, nb]
  int32_t* sorted;  // [S, nb]
  SparseScratch attend;
};
inline SinkhornScratch sinkhorn_carve(const Problem& p, const SinkhornPlan& plan, void* base,
                                      size_t* bytes = nullptr) {
  const int64_t G = plan.sort_group, nb = plan.d.blocks, dh = p.head_dim;
  Carver c(base);
  SinkhornScratch s{};
  s.qbar = c.take<float>(G * nb * dh);
  s.kbarT = c.take<float>(G * nb * dh);
  s.x = c.take<float>(G * nb * nb);
  s.xt = c.take<float>(G * nb * nb);
  s.u = c.take<float>(G * nb);
  s.v = c.take<float>(G * nb);
  s.sorted = c.take<int32_t>(p.sequences() * nb);
  s.attend = sparse_carve(c, plan.attend, dh);
  if (bytes) *bytes = c.used();
  return s;
}
inline WorkspaceSize sinkhorn_workspace(const Problem& p, const SinkhornPlan& plan) {
  WorkspaceSize ws;
  sinkhorn_carve(p, plan, nullptr, &ws.scratch_bytes);
  return ws;
}

// The sorted block of every block of sequences [s0, s0 + groups).
template <class L>
void sinkhorn_sort_blocks(L& l, const Problem& p, const SinkhornPlan& plan, const Inputs& in,
                          int64_t s0, int64_t groups, const SinkhornScratch& sc) {
  const int64_t nb = plan.d.blocks, dh = p.head_dim;
  l.each("sinkhorn block means", groups * nb * dh,
         SinkhornMeans{in.q, in.k, p.seq_len, dh, s0, plan.d, sc.qbar, sc.kbarT});
  l.each("sinkhorn block logits", groups * nb * nb,
         SinkhornLogits{nb, dh, sc.qbar, sc.kbarT, sc.x, sc.xt});
  l.zero(sc.u, groups * nb);
  l.zero(sc.v, groups * nb);
  for (int it = 0; it < math::kSinkhornIterations; ++it) {
    l.each("sinkhorn row step", groups * nb, SinkhornStep{nb, p.causal, false, sc.x, sc.v, sc.u});
    l.each("sinkhorn column step", groups * nb,
           SinkhornStep{nb, p.causal, true, sc.xt, sc.u, sc.v});
  }
  l.each("sinkhorn argmax", groups * nb, SinkhornArgmax{nb, s0, p.causal, sc.x, sc.v, sc.sorted});
}

template <class L>
void sinkhorn_run(L& l, const Problem& p, const SinkhornPlan& plan, const Inputs& in, void* scratch,
                  float* out) {
  const int64_t S = p.sequences(), N = p.seq_len;
  const SinkhornScratch sc = sinkhorn_carve(p, plan, scratch);
  for (int64_t s0 = 0; s0 < S; s0 += plan.sort_group)
    sinkhorn_sort_blocks(l, p, plan, in, s0, min_i64(plan.sort_group, S - s0), sc);
  const SinkhornLayout lay{sparse_view(p, in, plan.d.block, plan.d.max_keys), plan.d, in.k,
                           sc.sorted, out};
  for (int64_t x = 0; x < sparse_slabs(plan.attend, S, N); ++x) {
    const SparseSlab slab = sparse_slab(plan.attend, S, N, x);
    if (slab.rows > 0) sparse_attend_slab(l, lay, slab, sc.attend);
  }
}

// ---- lsan_twin ---------------------------------------------------------------------------------

// Output element (s, i, c) += the local branch, conv [head, L, dh] over V (causal zero padding).
struct LsanLocalAdd {
  const float* conv;
  const float* v;
  int64_t heads, n, dh, taps;
  float* out;
  AB_HD void operator()(int64_t item) const {
    const Item3 it = item3(item, n, dh);  // (s, i, c)
    out[item] = math::lsan_local_add_channel(conv + (it.i0 % heads) * taps * dh, v + it.i0 * n * dh,
                                             it.i1, taps, dh, it.i2, out[item]);
  }
};

// The global branch is vanilla attention: the launcher runs the flash block (flash_block.hpp).
template <class L>
void lsan_twin_run(L& l, const Problem& p, const LsanShape& sh, const Inputs& in, float* out) {
  l.flash("lsan global branch", p, in, out);
  l.each("lsan local branch", p.sequences() * p.seq_len * p.head_dim,
         LsanLocalAdd{in.conv, in.v, p.heads, p.seq_len, p.head_dim, sh.conv_width, out});
}

}  // namespace attnbench::gpu
