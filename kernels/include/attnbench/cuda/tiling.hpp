// Launch shapes and index maps of every CUDA kernel (kernels/cuda/*.cu), as AB_HD functions.
//
// The CUDA kernels compute every index they touch through these functions, and
// tests/test_cuda_tiling.cpp enumerates the same blocks and threads on the CPU to prove that
// each output element (and each element of every intermediate buffer) is written exactly
// once, for awkward sizes: N = 1, N not a multiple of a tile, many heads, odd dh. No GPU is
// needed for that proof, which is the point: the CUDA code has to be right the first time it
// meets a device. Nothing here includes a CUDA header, so the host compiler builds it too.
//
// Conventions: a kernel whose work is a list of `items` uses a grid-stride loop,
//   block level:  for (item = blockIdx.x; item < items; item += gridDim.x)
//   thread level: for (item = blockIdx.x * blockDim.x + threadIdx.x; item < items;
//                       item += gridDim.x * blockDim.x)
// with gridDim.x = grid_blocks(...) below, so any problem size is covered with a grid that
// respects the hardware limit. The tests pass small caps to exercise the striding.
#pragma once

#include <cstdint>

#include "attnbench/math/hd.hpp"
#include "attnbench/math/sparse.hpp"

// Unrolling hint for the fixed-size micro-tile loops, in device compilation only (a host
// compiler, nvcc's host pass included, would warn about an unknown pragma).
#if defined(__CUDA_ARCH__)
#define AB_UNROLL _Pragma("unroll")
#else
#define AB_UNROLL
#endif

namespace attnbench::gpu {

// ---------------------------------------------------------------------------------------
// Generic work distribution

// Blocks launched for `items` block-level work items (at least 1, at most `cap`).
constexpr int64_t kMaxGridBlocks = int64_t(1) << 20;
AB_HD int64_t grid_blocks(int64_t items, int64_t cap = kMaxGridBlocks) {
  return items < 1 ? 1 : (items < cap ? items : cap);
}
// Blocks launched for `items` thread-level work items with `threads` threads per block.
AB_HD int64_t thread_grid_blocks(int64_t items, int threads, int64_t cap = kMaxGridBlocks) {
  return grid_blocks((items + threads - 1) / threads, cap);
}
AB_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
AB_HD int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
AB_HD int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------
// vanilla_materialized: row softmax over the b*h*N*N score matrix (docs/methods.md section 1)
//
// One block of kSoftmaxThreads threads per score row (block-level items = S * N rows);
// thread t handles columns t, t + kSoftmaxThreads, ... of the row. Causal: columns past the
// diagonal are written 0, so every element of the row is written exactly once.

constexpr int kSoftmaxThreads = 256;

struct SoftmaxRow {
  int64_t seq;
  int64_t row;
};
AB_HD int64_t softmax_items(int64_t sequences, int64_t n) { return sequences * n; }
AB_HD SoftmaxRow softmax_row_of_item(int64_t item, int64_t n) { return {item / n, item % n}; }
// Columns [0, visible) hold probabilities; [visible, n) are masked (written 0).
AB_HD int64_t softmax_visible(int64_t row, int64_t n, bool causal) {
  return causal ? row + 1 : n;
}

// ---------------------------------------------------------------------------------------
// vanilla_eager: elementwise passes over the b*h*N*N scores (thread-level items)
//
// scale: one item per score. mask: one item per element (i, j) of the N x N mask.
// masked_fill: one item per (mask element y, group of kEagerFillSeqs sequences); the thread
// walks its sequences s, score s*N*N + y. Neighbouring threads take neighbouring y, so both
// the scores and the broadcast mask are read coalesced, with one index division per group
// instead of one per score.

constexpr int64_t kEagerFillSeqs = 8;

struct EagerMaskCell {
  int64_t i;  // query
  int64_t j;  // key
};
AB_HD int64_t eager_mask_items(int64_t n) { return n * n; }
AB_HD EagerMaskCell eager_mask_cell(int64_t item, int64_t n) { return {item / n, item % n}; }

struct EagerFillItem {
  int64_t y;        // mask element, i * N + j
  int64_t s_begin;  // sequences [s_begin, s_end)
  int64_t s_end;
};
AB_HD int64_t eager_fill_items(int64_t sequences, int64_t n) {
  return ceil_div(sequences, kEagerFillSeqs) * n * n;
}
AB_HD EagerFillItem eager_fill_item(int64_t item, int64_t sequences, int64_t n) {
  const int64_t nn = n * n, g = item / nn;
  return {item - g * nn, g * kEagerFillSeqs, min_i64(sequences, (g + 1) * kEagerFillSeqs)};
}
AB_HD int64_t eager_fill_score(const EagerFillItem& it, int64_t s, int64_t n) {
  return s * n * n + it.y;
}

// ---------------------------------------------------------------------------------------
// vanilla_flash: fused tiled attention with an online softmax (docs/methods.md section 1)
//
// A block owns one (sequence, query tile) work item: bm query rows. It streams key tiles of
// bn keys; for each it forms the bm x bn score tile in shared memory (head dimension in
// chunks of dc columns), updates the online-softmax state of each row, and accumulates P V
// into a bm x dh accumulator in shared memory (V in chunks of dc columns). bm shrinks as dh
// grows so that the queries and the accumulator fit in shared memory.
//
// Threads: kFlashThreads as a ty x tx grid. Thread (y, x) owns the micro-tile of rows
// y + ty*a (a < rows_per_thread) and, for scores, key columns x + tx*b (b < cols_per_thread);
// for the accumulator/output, head columns c0 + x + tx*b of each chunk c0. The online softmax
// of the tile is done by one thread per query row (threads 0 .. bm-1), in the CPU twin's order.
// The phases themselves are in attnbench/cuda/flash_block.hpp.

constexpr int kFlashThreads = 256;
constexpr int kFlashWarps = kFlashThreads / 32;
constexpr int kFlashMicro = 4;           // largest micro-tile side per thread
constexpr int kFlashBlockN = 64;         // keys per tile
constexpr int kFlashMaxBlockM = 64;      // queries per tile (at most)
constexpr int64_t kFlashQAccFloats = 8192;  // bm * dh budget for queries / accumulator
constexpr int64_t kFlashMaxHeadDim = 8192;  // beyond this even bm = 1 does not fit

struct FlashConfig {
  int bm;     // query rows per block
  int bn;     // keys per tile
  int dc;     // head columns per chunk (K and V are staged dc columns at a time)
  int ty;     // thread grid rows
  int tx;     // thread grid columns (ty * tx = kFlashThreads)
  int ld_q;   // leading dimension (floats) of the query tile and the accumulator
  int ld_s;   // of the score tile
  int ld_kv;  // of the staged K / V chunk
  int64_t smem_bytes;
};

// Shared-memory layout in floats: Q [bm][ld_q], acc [bm][ld_q], KV [bn][ld_kv], S [bm][ld_s],
// then per row: running max, running sum, rescale factor.
AB_HD FlashConfig flash_config(int64_t dh) {
  FlashConfig c{};
  c.bn = kFlashBlockN;
  int bm = kFlashMaxBlockM;
  while (bm > 1 && int64_t(bm) * dh > kFlashQAccFloats) bm /= 2;
  c.bm = bm;
  c.ty = bm < 16 ? bm : 16;
  c.tx = kFlashThreads / c.ty;
  int64_t dc = int64_t(kFlashMicro) * c.tx;
  if (dc > 128) dc = 128;
  if (dc > dh) dc = dh;
  c.dc = int(dc);
  // Bank conflicts: a warp spans two thread rows when tx = 16, and a leading dimension of
  // 16 mod 32 puts the two query/accumulator rows in different banks. The K chunk is read
  // down a column (keys vary across the warp) and the score tile down a column by the
  // row-per-thread softmax, so their leading dimensions are odd.
  c.ld_q = int(ceil_div(dh, 32) * 32 + 16);
  c.ld_s = c.bn + 1;
  c.ld_kv = c.dc % 2 == 0 ? c.dc + 1 : c.dc;
  const int64_t floats = 2 * int64_t(c.bm) * c.ld_q + int64_t(c.bn) * c.ld_kv +
                         int64_t(c.bm) * c.ld_s + 3 * int64_t(c.bm);
  c.smem_bytes = floats * 4;
  return c;
}
AB_HD int flash_rows_per_thread(const FlashConfig& c) { return int(ceil_div(c.bm, c.ty)); }
AB_HD int flash_cols_per_thread(const FlashConfig& c) { return int(ceil_div(c.bn, c.tx)); }
AB_HD int flash_out_cols_per_thread(const FlashConfig& c) { return int(ceil_div(c.dc, c.tx)); }
AB_HD int64_t flash_query_tiles(int64_t n, const FlashConfig& c) { return ceil_div(n, c.bm); }
AB_HD int64_t flash_items(int64_t sequences, int64_t n, const FlashConfig& c) {
  return sequences * flash_query_tiles(n, c);
}

struct FlashWork {
  int64_t seq;
  int64_t q_tile;
  int64_t i0;    // first query row
  int64_t rows;  // query rows in this tile (bm, or fewer in the last tile)
};
// Work item -> (sequence, query tile). Within a sequence the last (causally heaviest) query
// tiles come first so the long blocks start early.
AB_HD FlashWork flash_work(int64_t item, int64_t n, const FlashConfig& c) {
  const int64_t tiles = flash_query_tiles(n, c);
  FlashWork w{};
  w.seq = item / tiles;
  w.q_tile = tiles - 1 - item % tiles;
  w.i0 = w.q_tile * c.bm;
  w.rows = min_i64(c.bm, n - w.i0);
  return w;
}
// The keys query i sees: [flash_first_key, flash_end_key). window <= 0: all keys (causal:
// j <= i), vanilla; window w > 0: the band of local_window (math/sparse.hpp: causal
// i - w < j <= i, bidirectional |i - j| < w).
AB_HD int64_t flash_first_key(int64_t i, int64_t window) {
  return window > 0 ? math::local_window_first_key(i, window) : 0;
}
AB_HD int64_t flash_end_key(int64_t i, int64_t n, bool causal, int64_t window) {
  if (window > 0) return math::local_window_end_key(i, window, n, causal);
  return causal ? i + 1 : n;
}
// Key tiles [begin, end) the block visits: those that hold a key some row of the tile sees
// (both limits grow with i, so the first row gives the lowest key and the last the highest).
// Causal tiles above the diagonal, and tiles outside the band, are skipped: fully masked.
struct FlashKeyTiles {
  int64_t begin, end;
};
AB_HD FlashKeyTiles flash_key_tiles(const FlashWork& w, int64_t n, bool causal, int64_t window,
                                    const FlashConfig& c) {
  const int64_t lo = flash_first_key(w.i0, window);
  const int64_t hi = min_i64(n, flash_end_key(w.i0 + w.rows - 1, n, causal, window));
  return {lo / c.bn, ceil_div(hi, c.bn)};
}
// Keys of key tile kt that exist (the rest of the staged tile is zero-filled and masked).
AB_HD int64_t flash_tile_keys(int64_t kt, int64_t n, const FlashConfig& c) {
  return min_i64(c.bn, n - kt * c.bn);
}
// Query i sees key j.
AB_HD bool flash_visible(int64_t i, int64_t j, int64_t n, bool causal, int64_t window) {
  return i < n && j < n && j >= flash_first_key(i, window) &&
         j < flash_end_key(i, n, causal, window);
}
// The same as an interval: query i sees exactly the keys [lo, hi) (empty for i >= n). The
// kernel masks a score tile with it (two limits per row instead of a test per element keeps
// the flash kernel within 128 registers); the tiling test proves it equals flash_visible.
struct FlashRowKeys {
  int64_t lo, hi;
};
AB_HD FlashRowKeys flash_row_keys(int64_t i, int64_t n, bool causal, int64_t window) {
  if (i >= n) return {0, 0};
  return {flash_first_key(i, window), min_i64(n, flash_end_key(i, n, causal, window))};
}
// Thread tid's micro-tile coordinates inside the block's tiles.
AB_HD int flash_row(const FlashConfig& c, int tid, int a) { return tid / c.tx + c.ty * a; }
AB_HD int flash_col(const FlashConfig& c, int tid, int b) { return tid % c.tx + c.tx * b; }
// The accumulator / output element thread tid owns at micro-index (a, b) of the head-column
// chunk starting at c0: row r (in the tile) and column col (in [0, dh)), or false. The PV
// update and the final write both use it, so ownership is the same in both. (int: the tile
// sizes are small and dh <= kFlashMaxHeadDim.)
AB_HD bool flash_out_element(const FlashConfig& c, int rows, int dh, int tid, int a, int c0,
                             int b, int& r, int& col) {
  r = flash_row(c, tid, a);
  const int cc = flash_col(c, tid, b);
  col = c0 + cc;
  return a < flash_rows_per_thread(c) && b < flash_out_cols_per_thread(c) && r < rows &&
         cc < c.dc && col < dh;
}
// The score element (row r, key column j of the tile) thread tid owns at (a, b), or false.
AB_HD bool flash_score_element(const FlashConfig& c, int tid, int a, int b, int& r, int& j) {
  r = flash_row(c, tid, a);
  j = flash_col(c, tid, b);
  return a < flash_rows_per_thread(c) && b < flash_cols_per_thread(c) && r < c.bm && j < c.bn;
}

// ---------------------------------------------------------------------------------------
// LISA (docs/methods.md section 2)
//
// Causal form, per slab of `group` sequences x `rows` positions (slabs of one sequence group
// run in position order and carry the running histogram `state` [group, BW] between them):
//   1. chunk totals  tot[g, c, bw]  = (decayed) sum of the assignments of chunk c (thread per
//                                     (g, c, bw); chunks of `chunk` positions)
//   2. chunk scan    tot[g, c, bw] <- histogram at the start of chunk c; state <- after the
//                                     slab (thread per (g, bw), serial over chunks)
//   3. prefix        hist[g, i, bw] = histogram at position i (thread per (g, c, bw), serial
//                                     over the chunk's positions)
//   4. weights       a[g, i, b, :]  = math::lisa_weights(E row, T row, hist[g, i, b, :])
//                                     (thread per (g, i, b))
//   5. output        out[g, rows, dh] = a[g] (rows x BW) * Cv[head] (BW x dh), one batched
//                                     cuBLAS sgemm over the group
// so scratch is O(slab * BW), independent of N. Bidirectional form, per group of sequences:
// chunk totals and scan over all N positions give the full histogram; the W x W weight
// table per codebook (thread per (g, b, c)); Y[g, b] = a[g, b] Cv[b] (batched sgemm); and a
// gather out[s, i, :] = sum_b Y[g, b, code(i, b), :] (thread per output element).

constexpr int64_t kLisaSlabFloats = int64_t(1) << 21;   // floats per slab buffer (8 MiB)
constexpr int64_t kLisaChunk = 32;                       // positions per causal scan chunk
constexpr int64_t kLisaMaxChunks = 64;                   // bidirectional: chunks per sequence
constexpr int64_t kLisaGroupFloats = int64_t(1) << 22;   // bidirectional group budget (16 MiB)
constexpr int kLisaThreads = 256;

struct LisaCausalPlan {
  int64_t group;   // sequences per slab
  int64_t rows;    // positions per slab
  int64_t chunk;   // positions per scan chunk
  int64_t chunks;  // chunks per full slab
};
AB_HD LisaCausalPlan lisa_causal_plan(int64_t sequences, int64_t n, int64_t bw) {
  LisaCausalPlan p{};
  const int64_t budget_rows = max_i64(1, kLisaSlabFloats / bw);
  p.rows = min_i64(n, budget_rows);
  p.group = min_i64(sequences, max_i64(1, budget_rows / p.rows));
  p.chunk = kLisaChunk;
  p.chunks = ceil_div(p.rows, p.chunk);
  return p;
}

// A slab (LISA and the linear family): sequences [s0, s0 + groups), positions
// [r0, r0 + rows), scanned in `chunks` chunks of `chunk` positions.
struct RowSlab {
  int64_t s0, groups, r0, rows, chunk, chunks;
};
using LisaSlab = RowSlab;
AB_HD int64_t row_slabs(int64_t group, int64_t rows, int64_t sequences, int64_t n) {
  return ceil_div(sequences, group) * ceil_div(n, rows);
}
// Slab `index`: sequence groups in order, and within a group the positions in order (the
// running state of a group is carried from one slab to the next).
AB_HD RowSlab row_slab(int64_t group, int64_t rows, int64_t chunk, int64_t sequences, int64_t n,
                       int64_t index) {
  const int64_t per_group = ceil_div(n, rows);
  RowSlab s{};
  s.s0 = (index / per_group) * group;
  s.groups = min_i64(group, sequences - s.s0);
  s.r0 = (index % per_group) * rows;
  s.rows = min_i64(rows, n - s.r0);
  s.chunk = chunk;
  s.chunks = ceil_div(s.rows, s.chunk);
  return s;
}
AB_HD int64_t lisa_causal_slabs(const LisaCausalPlan& p, int64_t sequences, int64_t n) {
  return row_slabs(p.group, p.rows, sequences, n);
}
AB_HD LisaSlab lisa_causal_slab(const LisaCausalPlan& p, int64_t sequences, int64_t n,
                                int64_t index) {
  return row_slab(p.group, p.rows, p.chunk, sequences, n, index);
}
// Positions [begin, end) of chunk c of a slab, relative to the slab's r0.
AB_HD int64_t lisa_chunk_begin(const LisaSlab& s, int64_t c) { return c * s.chunk; }
AB_HD int64_t lisa_chunk_end(const LisaSlab& s, int64_t c) {
  return min_i64(s.rows, (c + 1) * s.chunk);
}

// Thread-level items of the scan kernels: (g, c, bw) with bw fastest (coalesced over w).
struct LisaScanItem {
  int64_t g, c, bw;
};
AB_HD int64_t lisa_scan_items(const LisaSlab& s, int64_t bw) { return s.groups * s.chunks * bw; }
AB_HD LisaScanItem lisa_scan_item(int64_t item, const LisaSlab& s, int64_t bw) {
  return {item / (s.chunks * bw), (item / bw) % s.chunks, item % bw};
}
// Chunk-scan items: (g, bw).
AB_HD int64_t lisa_carry_items(const LisaSlab& s, int64_t bw) { return s.groups * bw; }

// Weight items of the causal form: (g, i, b) with b fastest.
struct LisaWeightItem {
  int64_t g, i, b;
};
AB_HD int64_t lisa_weight_items(const LisaSlab& s, int64_t B) { return s.groups * s.rows * B; }
AB_HD LisaWeightItem lisa_weight_item(int64_t item, const LisaSlab& s, int64_t B) {
  return {item / (s.rows * B), (item / B) % s.rows, item % B};
}

// Bidirectional form.
struct LisaBidirPlan {
  int64_t group;   // sequences per group
  int64_t chunk;   // positions per scan chunk
  int64_t chunks;  // chunks per sequence
};
AB_HD int64_t lisa_bidir_chunk(int64_t n) {
  return max_i64(kLisaChunk, ceil_div(n, kLisaMaxChunks));
}
// Floats of scratch one sequence of a group needs: state, chunk totals, weight table, Y.
AB_HD int64_t lisa_bidir_floats_per_sequence(int64_t n, int64_t B, int64_t W, int64_t dh) {
  const int64_t bw = B * W;
  return bw + ceil_div(n, lisa_bidir_chunk(n)) * bw + bw * W + bw * dh;
}
AB_HD LisaBidirPlan lisa_bidir_plan(int64_t sequences, int64_t n, int64_t B, int64_t W,
                                    int64_t dh) {
  LisaBidirPlan p{};
  p.chunk = lisa_bidir_chunk(n);
  p.chunks = ceil_div(n, p.chunk);
  const int64_t per = lisa_bidir_floats_per_sequence(n, B, W, dh);
  p.group = min_i64(sequences, max_i64(1, kLisaGroupFloats / per));
  return p;
}
AB_HD int64_t lisa_bidir_groups(const LisaBidirPlan& p, int64_t sequences) {
  return ceil_div(sequences, p.group);
}
// Group `index` as a slab over all positions.
AB_HD LisaSlab lisa_bidir_slab(const LisaBidirPlan& p, int64_t sequences, int64_t n,
                               int64_t index) {
  LisaSlab s{};
  s.s0 = index * p.group;
  s.groups = min_i64(p.group, sequences - s.s0);
  s.r0 = 0;
  s.rows = n;
  s.chunk = p.chunk;
  s.chunks = p.chunks;
  return s;
}
// Weight-table items (g, b, c): row c of codebook b's W x W weight table.
struct LisaTableItem {
  int64_t g, b, c;
};
AB_HD int64_t lisa_table_items(const LisaSlab& s, int64_t B, int64_t W) {
  return s.groups * B * W;
}
AB_HD LisaTableItem lisa_table_item(int64_t item, int64_t B, int64_t W) {
  return {item / (B * W), (item / W) % B, item % W};
}
// Gather items (g, i, col), col fastest.
struct LisaGatherItem {
  int64_t g, i, col;
};
AB_HD int64_t lisa_gather_items(const LisaSlab& s, int64_t dh) { return s.groups * s.rows * dh; }
AB_HD LisaGatherItem lisa_gather_item(int64_t item, const LisaSlab& s, int64_t dh) {
  return {item / (s.rows * dh), (item / dh) % s.rows, item % dh};
}

// The logit table's stable exponent E = exp(T - rowmax T): one thread per (head*B + b, row).
AB_HD int64_t lisa_table_rows(int64_t heads, int64_t B, int64_t W) { return heads * B * W; }

// ---------------------------------------------------------------------------------------
// Linear family (docs/methods.md section 3): linear_elu, linrec, performer
//
// The chunked parallel prefix over the state S = sum fk v^T (m x dh) and z = sum fk (m), per
// slab of `group` sequences x `rows` positions (slabs of a group in position order, the state
// carried between them), chunks of kLinChunk positions:
//   features      qf, kf [g, i, m]                 thread per (g, i)
//   chunk states  dS [g, c, m*dh + m] = Kf_c^T V_c  thread per (g, c, state element)
//   chunk scan    dS[g, c] <- state before chunk c  thread per (g, state element)
//   scores        A [g, i, jj] = qf_i . kf_{c0+jj} for c0 + jj <= i (causal; c0 = chunk start)
//   output        o_i = factor (qf_i S_c + sum_jj A[i, jj] v_jj)   thread per (g, i, e)
// Bidirectional: the states of all slabs summed first, then o_i = factor qf_i S.
// Hydra (heads = features) is a chunked scan over the width d = heads * dh, further below.

constexpr int64_t kLinChunk = 64;
constexpr int64_t kLinSlabFloats = int64_t(1) << 22;  // slab buffers, all together (16 MiB)

AB_HD int64_t linear_state_floats(int64_t m, int64_t dh) { return m * dh + m; }  // S, then z
// Slab floats per position: qf and kf (m each), the scores (kLinChunk), a chunk state shared
// by kLinChunk positions, the performer key maximum (1).
AB_HD int64_t linear_floats_per_row(int64_t m, int64_t dh) {
  return 2 * m + kLinChunk + ceil_div(linear_state_floats(m, dh), kLinChunk) + 1;
}
struct LinearPlan {
  int64_t group;   // sequences per slab
  int64_t rows;    // positions per slab (a multiple of kLinChunk unless it is all of N)
  int64_t chunk;   // kLinChunk
  int64_t chunks;  // chunks per full slab
};
// slab_floats: the budget (tests pass small ones to reach many slabs with small N).
// The slab of a chunked prefix: as many rows (whole chunks) as `slab_floats` holds at
// `floats_per_row` each, the whole sequence when it fits, and then as many of the `groups`
// sequences (batch elements, for hydra) side by side as the budget still holds.
AB_HD LinearPlan chunked_plan(int64_t groups, int64_t n, int64_t floats_per_row,
                              int64_t slab_floats) {
  LinearPlan p{};
  p.chunk = kLinChunk;
  const int64_t budget_rows =
      max_i64(kLinChunk, slab_floats / floats_per_row / kLinChunk * kLinChunk);
  p.rows = min_i64(n, budget_rows);
  p.group = min_i64(groups, max_i64(1, budget_rows / (ceil_div(p.rows, kLinChunk) * kLinChunk)));
  p.chunks = ceil_div(p.rows, p.chunk);
  return p;
}
AB_HD LinearPlan linear_plan(int64_t sequences, int64_t n, int64_t m, int64_t dh,
                             int64_t slab_floats = kLinSlabFloats) {
  return chunked_plan(sequences, n, linear_floats_per_row(m, dh), slab_floats);
}
AB_HD int64_t linear_slabs_per_group(const LinearPlan& p, int64_t n) { return ceil_div(n, p.rows); }
AB_HD int64_t linear_groups(const LinearPlan& p, int64_t sequences) {
  return ceil_div(sequences, p.group);
}
// Slab x of group gi (x in [0, linear_slabs_per_group)).
AB_HD RowSlab linear_slab(const LinearPlan& p, int64_t sequences, int64_t n, int64_t gi,
                          int64_t x) {
  return row_slab(p.group, p.rows, p.chunk, sequences, n, gi * linear_slabs_per_group(p, n) + x);
}

struct LinRowItem {
  int64_t g, i;
};
AB_HD int64_t linear_row_items(const RowSlab& s) { return s.groups * s.rows; }
AB_HD LinRowItem linear_row_item(int64_t item, const RowSlab& s) {
  return {item / s.rows, item % s.rows};
}
struct LinStateItem {
  int64_t g, c, x;  // x: state element, S[a][e] at a * dh + e, z[a] at m * dh + a
};
AB_HD int64_t linear_state_items(const RowSlab& s, int64_t state) {
  return s.groups * s.chunks * state;
}
AB_HD LinStateItem linear_state_item(int64_t item, const RowSlab& s, int64_t state) {
  return {item / (s.chunks * state), (item / state) % s.chunks, item % state};
}
AB_HD int64_t linear_carry_items(const RowSlab& s, int64_t state) { return s.groups * state; }
struct LinScoreItem {
  int64_t g, i, jj;  // query i of the slab, key c0 + jj of its chunk
};
AB_HD int64_t linear_score_items(const RowSlab& s) { return s.groups * s.rows * s.chunk; }
AB_HD LinScoreItem linear_score_item(int64_t item, const RowSlab& s) {
  return {item / (s.rows * s.chunk), (item / s.chunk) % s.rows, item % s.chunk};
}
struct LinOutItem {
  int64_t g, i, e;
};
AB_HD int64_t linear_out_items(const RowSlab& s, int64_t dh) { return s.groups * s.rows * dh; }
AB_HD LinOutItem linear_out_item(int64_t item, const RowSlab& s, int64_t dh) {
  return {item / (s.rows * dh), (item / dh) % s.rows, item % dh};
}

// Hydra: per batch element b a width-d accumulator (d = heads * dh), column col of position n
// at q/k/v/out index ((b * heads + col / dh) * N + n) * dh + col % dh. Slabs of `group` batch
// elements x `rows` positions; chunk totals, a scan over the chunks, then each chunk walks its
// positions from its start (causal), or all outputs read the total (bidirectional).
AB_HD int64_t hydra_floats_per_row(int64_t d) { return 2 + ceil_div(d, kLinChunk); }
AB_HD LinearPlan hydra_plan(int64_t batch, int64_t n, int64_t d,
                            int64_t slab_floats = kLinSlabFloats) {
  return chunked_plan(batch, n, hydra_floats_per_row(d), slab_floats);
}
AB_HD int64_t hydra_index(int64_t b, int64_t col, int64_t pos, int64_t heads, int64_t n,
                          int64_t dh) {
  return ((b * heads + col / dh) * n + pos) * dh + col % dh;
}
struct HydraColItem {
  int64_t g, c, col;  // chunk c of the slab, column col of the width
};
AB_HD int64_t hydra_col_items(const RowSlab& s, int64_t d) { return s.groups * s.chunks * d; }
AB_HD HydraColItem hydra_col_item(int64_t item, const RowSlab& s, int64_t d) {
  return {item / (s.chunks * d), (item / d) % s.chunks, item % d};
}
AB_HD int64_t hydra_out_items(const RowSlab& s, int64_t d) { return s.groups * s.rows * d; }

// Efficient attention (Shen et al.): the linear family's chunked prefix over S = sum e v^T
// (dh x dh) and z (dh), where e = exp(k - column max), so every partial state also carries its
// column maxima (dh). Per slab, chunks of kLinChunk positions:
//   chunk keys     M [g, c, a] = the chunk's column max, e [g, i, a] = exp(k - M)
//                                                      thread per (g, c, a) (chunk_col_item)
//   chunk states   dS [g, c, dh*dh + dh] = E_c^T V_c   thread per (g, c, state element)
//   max scan       M0 [g, c, a] = the max before chunk c, carried   thread per (g, a)
//   chunk scan     dS[g, c] <- state before chunk c at M0, carried   thread per (g, element)
// causal, then:
//   query softmax  sq [g, i, a]                         thread per (g, i)
//   row columns    running max R [g, i, a] and z at R from the chunk's start state and its
//                  keys up to i; coef = sq / z, start weight = coef exp(M0 - R)   (g, i, a)
//   scores         A [g, i, jj] = sum_a coef exp(k_{c0+jj} a - R)   for c0 + jj <= i
//   output         o_i = sum_jj A v_jj + sum_a start weight S0[a, :]   thread per (g, i, e)
// Bidirectional: every slab's states folded into the carry first, then coef = sq / z and
// o_i = sum_a coef S[a, :]. Each state is at its own max and only ever rescaled towards a
// larger one, every row at its exact running max: no exponent underflows what it must keep.
// Slab floats per position: sq/coef, e, R, start weight (dh each), the scores (kLinChunk), a
// chunk state and its two max rows shared by kLinChunk positions.
AB_HD int64_t efficient_floats_per_row(int64_t dh) {
  return 4 * dh + kLinChunk + ceil_div(linear_state_floats(dh, dh) + 2 * dh, kLinChunk);
}
AB_HD LinearPlan efficient_plan(int64_t sequences, int64_t n, int64_t dh,
                                int64_t slab_floats = kLinSlabFloats) {
  return chunked_plan(sequences, n, efficient_floats_per_row(dh), slab_floats);
}
// Column items of a slab's chunks, (g, c, a) with a fastest (hydra's map over a width dh).
AB_HD int64_t chunk_col_items(const RowSlab& s, int64_t width) {
  return hydra_col_items(s, width);
}
AB_HD HydraColItem chunk_col_item(int64_t item, const RowSlab& s, int64_t width) {
  return hydra_col_item(item, s, width);
}

// ---------------------------------------------------------------------------------------
// Sparse family (docs/methods.md section 4): reformer_lsh and sinkhorn
// (attnbench/cuda/sparse_pipeline.hpp has the functors; lsan_twin is the flash block plus a
// thread per output element, no map of its own)

// Three indices of a thread-level item, the last fastest: item = (i0 * n1 + i1) * n2 + i2.
struct Item3 {
  int64_t i0, i1, i2;
};
AB_HD Item3 item3(int64_t item, int64_t n1, int64_t n2) {
  return {item / (n1 * n2), (item / n2) % n1, item % n2};
}

// Attention of a unit of query rows (a Reformer chunk of sorted slots, a Sinkhorn block of
// positions) over the unit's key list (math::KeyRanges, at most max_keys keys), per slab of
// `groups` sequences x `rows` rows:
//   gather   kt [g, lu, d, u] = column d of key u of the slab's unit lu, 0 past the list;
//            transposed so that the score threads of one query read consecutive u
//                                                            thread per (g, lu, d, u)
//   scores   s [g, t, u] = the logit of row t and key u, -inf past the list   (g, t, u)
//   softmax  s [g, t, :] in place, lse [g, t]                thread per (g, t)
//   output   o [g, t, e] = sum_u s[g, t, u] v[key u][e]      thread per (g, t, e)
// A slab holds whole units, or, when one unit alone exceeds the budget, a tile of one unit's
// rows (the unit's key list is then gathered once per tile). Slabs of a group in row order;
// a tile past the end of the last, partial unit is empty (rows = 0) and is skipped.

constexpr int64_t kSparseSlabFloats = int64_t(1) << 22;  // a slab's buffers together (16 MiB)

struct SparsePlan {
  int64_t unit;      // rows per unit (chunk, block); unit <= N
  int64_t max_keys;  // keys per unit at most
  int64_t group;     // sequences per slab
  int64_t rows;      // rows per slab: whole units (or all N), or a tile of one unit
  int64_t units;     // units per slab at most (their key lists are gathered)
};
// Floats of one whole unit: its gathered keys, its rows' scores and log-normalizers.
AB_HD int64_t sparse_unit_floats(int64_t unit, int64_t max_keys, int64_t dh) {
  return dh * max_keys + unit * (max_keys + 1);
}
AB_HD SparsePlan sparse_plan(int64_t sequences, int64_t n, int64_t unit, int64_t max_keys,
                             int64_t dh, int64_t budget = kSparseSlabFloats) {
  SparsePlan p{unit, max_keys, 1, 0, 1};
  const int64_t per_unit = sparse_unit_floats(unit, max_keys, dh);
  const int64_t seq_units = ceil_div(n, unit);
  if (per_unit > budget) {  // tiles of one unit
    p.rows = min_i64(unit, max_i64(1, (budget - dh * max_keys) / (max_keys + 1)));
    return p;
  }
  p.units = min_i64(seq_units, budget / per_unit);
  p.rows = min_i64(n, p.units * unit);
  if (p.units == seq_units)  // whole sequences: as many side by side as the budget holds
    p.group = min_i64(sequences, max_i64(1, budget / (seq_units * per_unit)));
  return p;
}

struct SparseSlab {
  int64_t s0, groups;  // sequences [s0, s0 + groups)
  int64_t r0, rows;    // rows [r0, r0 + rows) of each
  int64_t u0, units;   // the units those rows belong to
};
// Rows a slab's enumeration steps over: whole units per slab, or one unit in tiles.
AB_HD int64_t sparse_span(const SparsePlan& p) { return max_i64(p.rows, p.unit); }
AB_HD int64_t sparse_slabs_per_group(const SparsePlan& p, int64_t n) {
  return ceil_div(n, sparse_span(p)) * ceil_div(sparse_span(p), p.rows);
}
AB_HD int64_t sparse_slabs(const SparsePlan& p, int64_t sequences, int64_t n) {
  return ceil_div(sequences, p.group) * sparse_slabs_per_group(p, n);
}
AB_HD SparseSlab sparse_slab(const SparsePlan& p, int64_t sequences, int64_t n, int64_t index) {
  const int64_t per_group = sparse_slabs_per_group(p, n), span = sparse_span(p);
  const int64_t tiles = ceil_div(span, p.rows), x = index % per_group;
  SparseSlab s{};
  s.s0 = (index / per_group) * p.group;
  s.groups = min_i64(p.group, sequences - s.s0);
  s.r0 = (x / tiles) * span + (x % tiles) * p.rows;
  s.rows = max_i64(0, min_i64(p.rows, min_i64(n, (x / tiles + 1) * span) - s.r0));
  s.u0 = s.r0 / p.unit;
  s.units = s.rows > 0 ? (s.r0 + s.rows - 1) / p.unit - s.u0 + 1 : 0;
  return s;
}
// Gather items (g, lu, d, u); score items (g, t, u); row items (g, t); output items (g, t, e).
AB_HD int64_t sparse_key_items(const SparseSlab& s, int64_t dh, int64_t max_keys) {
  return s.groups * s.units * dh * max_keys;
}
AB_HD int64_t sparse_row_items(const SparseSlab& s) { return s.groups * s.rows; }
// Items of (g, t, x) with x < width (width = max_keys for scores, dh for outputs).
AB_HD int64_t sparse_row_items(const SparseSlab& s, int64_t width) {
  return s.groups * s.rows * width;
}
AB_HD Item3 sparse_row_item(int64_t item, const SparseSlab& s, int64_t width) {
  return item3(item, s.rows, width);
}
// The slab-local unit of slab row t.
AB_HD int64_t sparse_local_unit(const SparseSlab& s, int64_t t, int64_t unit) {
  return (s.r0 + t) / unit - s.u0;
}

// Reformer's sort, per (round, sequence) "vs" (a stable counting sort by bucket, as the CPU
// twin's), in sort chunks of `len` positions:
//   histogram  counts [vs, c, b] = positions of chunk c in bucket b       thread per (vs, c)
//   offsets    counts [vs, c, b] <- positions in bucket b before chunk c;
//              total [vs, b] = positions in bucket b                      thread per (vs, b)
//   starts     total [vs, b] <- the first sorted slot of bucket b          thread per vs
//   scatter    order [vs, total[b] + counts[c, b]++] = i for chunk c's positions i in order
//                                                                         thread per (vs, c)
// No atomics: the order is deterministic and stable by position. A chunk is at least
// `buckets` positions long (and kSortMinChunk, and N / kSortMaxChunks), so the counters are
// O(N + buckets) per sequence and the serial walks O(N / kSortMaxChunks + buckets).
constexpr int64_t kSortMinChunk = 128;
constexpr int64_t kSortMaxChunks = 64;
struct SortPlan {
  int64_t len, chunks;
};
AB_HD SortPlan sort_plan(int64_t n, int64_t buckets) {
  const int64_t len = max_i64(max_i64(kSortMinChunk, buckets), ceil_div(n, kSortMaxChunks));
  return {len, ceil_div(n, len)};
}

// Sinkhorn's block sorting, per group of sequences (nb blocks each):
//   means    qbar [g, b, c] (scaled), kbarT [g, c, b]            thread per (g, b, c)
//   logits   X [g, a, b] and XT [g, b, a] = qbar_a . kbar_b       thread per (g, a, b)
//   5 x (row step u [g, a] from X row a and v; column step v [g, b] from XT row b and u)
//                                                               thread per (g, a) / (g, b)
//   argmax   sorted [s, a]                                        thread per (g, a)
// The logits are computed once (the CPU twin recomputes them in every step, in the same fmaf
// order, so both see the same bits): O(nb^2) floats per sequence of the group.
constexpr int64_t kSinkhornGroupFloats = int64_t(1) << 22;  // 16 MiB
AB_HD int64_t sinkhorn_sort_floats(int64_t nb, int64_t dh) {
  return 2 * nb * dh + 2 * nb * nb + 2 * nb;
}
AB_HD int64_t sinkhorn_sort_group(int64_t sequences, int64_t nb, int64_t dh,
                                  int64_t budget = kSinkhornGroupFloats) {
  return min_i64(sequences, max_i64(1, budget / sinkhorn_sort_floats(nb, dh)));
}

}  // namespace attnbench::gpu
