// CPU proofs of the CUDA kernels (kernels/cuda/*.cu), none of which needs a GPU:
// 1. index maps (attnbench/cuda/tiling.hpp): each test walks the blocks, threads and loop
//    indices exactly as the kernel does, through the same AB_HD functions, and counts how often
//    every element is written. Exactly once, for awkward sizes (N = 1, N not a multiple of a
//    tile, many heads, odd dh, grids smaller than the work so the grid-stride loops wrap).
// 2. the algorithms: the CUDA pipelines (vanilla_pipeline.hpp, lisa_pipeline.hpp,
//    linear_pipeline.hpp, sparse_pipeline.hpp) and the
//    flash thread block (flash_block.hpp) run on the CPU through a host launcher that executes
//    the same functors and emulates cuBLAS's column-major products with the very GemmShapes
//    the kernels pass to cuBLAS; the results must match the CPU twins and float64. Items and
//    threads run forwards and backwards, which must give bitwise the same output; scratch and
//    shared memory start as NaN, so reading anything never written shows.
// 3. the CUDA kernels' registry entries against their CPU twins, and the backend without a
//    device.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "attnbench/build_info.hpp"
#include "attnbench/cuda/flash_block.hpp"
#include "attnbench/cuda/gemm.hpp"
#include "attnbench/cuda/linear_pipeline.hpp"
#include "attnbench/cuda/lisa_pipeline.hpp"
#include "attnbench/cuda/row_softmax.hpp"
#include "attnbench/cuda/sparse_pipeline.hpp"
#include "attnbench/cuda/tiling.hpp"
#include "attnbench/cuda/vanilla_pipeline.hpp"
#include "attnbench/kernel.hpp"
#include "attnbench/math/lisa.hpp"
#include "attnbench/math/sparse.hpp"
#include "backend.hpp"
#include "device_data.hpp"
#include "kernel_testing.hpp"
#include "precision_reference.hpp"

namespace attnbench::gpu {
namespace {

// Every count must be exactly 1; reports the first offender.
void require_exactly_once(const std::vector<int>& counts, const std::string& what) {
  for (size_t x = 0; x < counts.size(); ++x)
    if (counts[x] != 1) {
      INFO(what << ": element " << x << " written " << counts[x] << " times");
      REQUIRE(counts[x] == 1);
    }
}

// Thread-level grid-stride loop of a launch of thread_grid_blocks(items, threads, cap) blocks.
template <class F>
void for_each_thread_item(int64_t items, int threads, int64_t cap, F&& f) {
  const int64_t blocks = thread_grid_blocks(items, threads, cap);
  for (int64_t b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t)
      for (int64_t item = b * threads + t; item < items; item += blocks * threads) f(item);
}

const int64_t kCaps[] = {kMaxGridBlocks, 3};
constexpr int kItemThreadsForTests = 256;  // kernels/cuda/common.cuh, kItemThreads

}  // namespace

TEST_CASE("grid sizes: at least one block, never above the cap", "[cuda][tiling]") {
  CHECK(grid_blocks(0) == 1);
  CHECK(grid_blocks(1) == 1);
  CHECK(grid_blocks(5, 3) == 3);
  CHECK(grid_blocks(int64_t(1) << 40) == kMaxGridBlocks);
  CHECK(kMaxGridBlocks <= 2147483647);
  CHECK(thread_grid_blocks(257, 256) == 2);
  CHECK(thread_grid_blocks(256, 256) == 1);
}

TEST_CASE("vanilla_materialized row softmax writes every score exactly once", "[cuda][tiling]") {
  for (int64_t S : {1, 3, 12})
    for (int64_t n : {1, 7, 255, 256, 257, 333})
      for (bool causal : {true, false})
        for (int64_t cap : kCaps) {
          INFO("S=" << S << " N=" << n << " causal=" << causal << " cap=" << cap);
          std::vector<int> counts(size_t(S * n * n), 0);
          const int64_t items = softmax_items(S, n), blocks = grid_blocks(items, cap);
          for (int64_t b = 0; b < blocks; ++b)
            for (int64_t item = b; item < items; item += blocks) {
              const SoftmaxRow r = softmax_row_of_item(item, n);
              REQUIRE(r.seq < S);
              const int64_t visible = softmax_visible(r.row, n, causal);
              REQUIRE(visible >= 1);  // every row has a key: the sum is never 0
              REQUIRE(visible <= n);
              for (int t = 0; t < kSoftmaxThreads; ++t)
                for (int64_t j = t; j < n; j += kSoftmaxThreads)
                  ++counts[size_t((r.seq * n + r.row) * n + j)];
            }
          require_exactly_once(counts, "scores");
        }
}

TEST_CASE("vanilla_eager's elementwise passes write every element exactly once",
          "[cuda][tiling]") {
  for (int64_t S : {1, 7, 8, 9, 17})  // sequence groups of kEagerFillSeqs: whole and partial
    for (int64_t n : {1, 7, 64, 333})
      for (int64_t cap : kCaps) {
        INFO("S=" << S << " N=" << n << " cap=" << cap);
        std::vector<int> mask(size_t(n * n), 0), filled(size_t(S * n * n), 0);
        for_each_thread_item(eager_mask_items(n), kItemThreadsForTests, cap, [&](int64_t item) {
          const EagerMaskCell c = eager_mask_cell(item, n);
          REQUIRE(c.i < n);
          REQUIRE(c.j < n);
          REQUIRE(c.i * n + c.j == item);  // the functor writes mask[item]: cell (i, j)
          ++mask[size_t(item)];
        });
        require_exactly_once(mask, "mask");
        for_each_thread_item(eager_fill_items(S, n), kItemThreadsForTests, cap, [&](int64_t item) {
          const EagerFillItem it = eager_fill_item(item, S, n);
          REQUIRE(it.y < n * n);
          REQUIRE(it.s_begin < it.s_end);
          REQUIRE(it.s_end - it.s_begin <= kEagerFillSeqs);
          for (int64_t s = it.s_begin; s < it.s_end; ++s) {
            const int64_t x = eager_fill_score(it, s, n);
            REQUIRE(x % (n * n) == it.y);  // the score reads its own mask element
            ++filled[size_t(x)];
          }
        });
        require_exactly_once(filled, "masked_fill");
      }
}

TEST_CASE("vanilla_flash configurations fit the hardware and the micro-tiles",
          "[cuda][tiling]") {
  for (int64_t dh : {1, 2, 7, 8, 16, 33, 64, 100, 128, 129, 256, 1000, 1024, 4096, 8191, 8192}) {
    INFO("dh=" << dh);
    const FlashConfig c = flash_config(dh);
    CHECK(c.ty * c.tx == kFlashThreads);
    CHECK(c.bm >= 1);
    CHECK(c.bn % c.bm == 0);
    CHECK((c.bm == 1 || int64_t(c.bm) * dh <= kFlashQAccFloats));
    CHECK(flash_rows_per_thread(c) <= kFlashMicro);
    CHECK(flash_cols_per_thread(c) <= kFlashMicro);
    CHECK(flash_out_cols_per_thread(c) <= kFlashMicro);
    CHECK(c.dc >= 1);
    CHECK(c.dc <= dh);
    CHECK(c.ld_q >= dh);
    CHECK(c.ld_kv >= c.dc);
    CHECK(c.ld_s >= c.bn);
    CHECK(c.bn % 32 == 0);  // the softmax warp covers a row in whole passes of 32 lanes
    // sm_80 allows 163 KiB of dynamic shared memory per block (opt-in), sm_90 227 KiB
    CHECK(c.smem_bytes <= 163 * 1024);
  }
  CHECK(flash_config(64).bm == 64);
  CHECK(flash_config(64).smem_bytes <= 100 * 1024);  // two blocks per SM on sm_80 and sm_90
}

TEST_CASE("vanilla_flash: every output element once, score and softmax maps exact",
          "[cuda][tiling]") {
  for (int64_t dh : {1, 8, 33, 64, 200, 1000}) {
    const FlashConfig c = flash_config(dh);
    // score tile: (tid, a, b) -> (r, j) covers [0, bm) x [0, bn) once
    std::vector<int> score(size_t(c.bm * c.bn), 0);
    for (int tid = 0; tid < kFlashThreads; ++tid)
      for (int a = 0; a < kFlashMicro; ++a)
        for (int b = 0; b < kFlashMicro; ++b) {
          int r, j;
          if (flash_score_element(c, tid, a, b, r, j)) ++score[size_t(r * c.bn + j)];
        }
    require_exactly_once(score, "score tile dh=" + std::to_string(dh));
    // softmax: warp w takes rows w, w + warps, ...; lane takes keys lane, lane + 32, ...
    std::vector<int> soft(size_t(c.bm * c.bn), 0);
    for (int warp = 0; warp < kFlashWarps; ++warp)
      for (int r = warp; r < c.bm; r += kFlashWarps)
        for (int lane = 0; lane < 32; ++lane)
          for (int j = lane; j < c.bn; j += 32) ++soft[size_t(r * c.bn + j)];
    require_exactly_once(soft, "softmax rows dh=" + std::to_string(dh));
  }
  for (int64_t S : {1, 5})
    for (int64_t n : {1, 7, 63, 64, 65, 130, 333})
      for (int64_t dh : {1, 8, 33, 64, 200, 1000})
        for (int64_t cap : kCaps) {
          const FlashConfig c = flash_config(dh);
          INFO("S=" << S << " N=" << n << " dh=" << dh << " cap=" << cap << " bm=" << c.bm);
          std::vector<int> counts(size_t(S * n * dh), 0);
          const int64_t items = flash_items(S, n, c), blocks = grid_blocks(items, cap);
          for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t item = blk; item < items; item += blocks) {
              const FlashWork w = flash_work(item, n, c);
              REQUIRE(w.seq < S);
              REQUIRE(w.rows >= 1);
              REQUIRE(w.rows <= c.bm);
              for (int tid = 0; tid < kFlashThreads; ++tid)
                for (int c0 = 0; c0 < int(dh); c0 += c.dc)
                  for (int a = 0; a < kFlashMicro; ++a)
                    for (int b = 0; b < kFlashMicro; ++b) {
                      int r, col;
                      if (flash_out_element(c, int(w.rows), int(dh), tid, a, c0, b, r, col))
                        ++counts[size_t((w.seq * n + w.i0 + r) * dh + col)];
                    }
            }
          require_exactly_once(counts, "output");
        }
}

TEST_CASE("flash skips a key tile only when it is fully masked (causal, band)",
          "[cuda][tiling]") {
  for (int64_t n : {1, 2, 7, 63, 64, 65, 127, 128, 129, 333, 1000})
    for (int64_t dh : {8, 64, 1000, 8192})
      for (bool causal : {true, false})
        for (int64_t window : {0, 1, 2, 5, 64, 65, 200, 5000}) {  // 0: vanilla
          const FlashConfig c = flash_config(dh);
          INFO("N=" << n << " dh=" << dh << " causal=" << causal << " window=" << window
                    << " bm=" << c.bm);
          const int64_t all_tiles = ceil_div(n, c.bn);
          for (int64_t item = 0; item < flash_items(1, n, c); ++item) {
            const FlashWork w = flash_work(item, n, c);
            const FlashKeyTiles visited = flash_key_tiles(w, n, causal, window, c);
            REQUIRE(visited.begin >= 0);
            REQUIRE(visited.begin < visited.end);
            REQUIRE(visited.end <= all_tiles);
            if (!causal && window == 0) REQUIRE((visited.begin == 0 && visited.end == all_tiles));
            // the per-row key interval is exactly the visibility predicate
            int64_t mismatches = 0, empty_rows = 0;
            for (int64_t r = 0; r < c.bm; ++r) {
              const int64_t i = w.i0 + r;
              const FlashRowKeys keys = flash_row_keys(i, n, causal, window);
              for (int64_t j = 0; j < n; ++j)
                mismatches += (j >= keys.lo && j < keys.hi) != flash_visible(i, j, n, causal, window);
              empty_rows += i < n && !flash_visible(i, i, n, causal, window);
            }
            REQUIRE(mismatches == 0);
            REQUIRE(empty_rows == 0);  // every query sees itself: no row sums to 0
            for (int64_t kt = 0; kt < all_tiles; ++kt) {
              const int64_t keys = flash_tile_keys(kt, n, c);
              REQUIRE(keys >= 1);
              bool any_visible = false;
              for (int64_t r = 0; r < w.rows; ++r)
                for (int64_t j = 0; j < keys; ++j)
                  any_visible = any_visible ||
                                flash_visible(w.i0 + r, kt * c.bn + j, n, causal, window);
              INFO("query tile " << w.q_tile << " key tile " << kt << " visited ["
                                 << visited.begin << ", " << visited.end << ")");
              // visited tiles hold at least one visible key; skipped ones none at all
              REQUIRE(any_visible == (kt >= visited.begin && kt < visited.end));
            }
          }
        }
}

TEST_CASE("online softmax merge equals streaming the whole row", "[cuda][math]") {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.f, 4.f);
  for (int n : {1, 2, 5, 33, 256, 1000}) {
    std::vector<float> x(static_cast<size_t>(n), 0.0f);
    for (float& v : x) v = nd(gen);
    if (n > 3) x[2] = -INFINITY;  // masked entries merge as zero weight
    math::OnlineSoftmaxRow seq = math::online_softmax_init();
    for (float v : x) online_softmax_push(seq, v);
    double mx = -INFINITY, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (float v : x) sum += std::exp(double(v) - mx);
    CHECK(seq.m == float(mx));
    CHECK(std::abs(seq.l - sum) <= 1e-5 * sum);
    // the row softmax's split: thread t takes t, t + T, ...; then a tree / ordered merge
    for (int parts : {1, 3, 32, 256}) {
      std::vector<math::OnlineSoftmaxRow> st(size_t(parts), math::online_softmax_init());
      for (int j = 0; j < n; ++j) online_softmax_push(st[size_t(j % parts)], x[size_t(j)]);
      math::OnlineSoftmaxRow all = math::online_softmax_init();  // includes empty parts
      for (const auto& s : st) all = online_softmax_merge(all, s);
      INFO("n=" << n << " parts=" << parts);
      CHECK(all.m == seq.m);
      CHECK(std::abs(all.l - seq.l) <= 1e-5f * seq.l);
      // the xor butterfly of a warp: pairs at distance 16, 8, ... merge into lane 0
      if (parts == 32) {
        std::vector<math::OnlineSoftmaxRow> lanes = st;
        for (int o = 16; o > 0; o >>= 1) {
          std::vector<math::OnlineSoftmaxRow> next = lanes;
          for (int l = 0; l < 32; ++l) next[size_t(l)] = online_softmax_merge(lanes[size_t(l)], lanes[size_t(l ^ o)]);
          lanes = next;
        }
        CHECK(lanes[0].m == seq.m);
        CHECK(std::abs(lanes[0].l - seq.l) <= 1e-5f * seq.l);
      }
    }
  }
  // two empty states merge to an empty state, never NaN
  const auto e = online_softmax_merge(math::online_softmax_init(), math::online_softmax_init());
  CHECK(e.m == -INFINITY);
  CHECK(e.l == 0.0f);
}

TEST_CASE("LISA causal slabs: every position once, in order, within the scratch bounds",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, n, bw;
  };
  const Case cases[] = {{1, 1, 1},     {3, 7, 16},       {2, 5000, 1024}, {7, 300, 1 << 20},
                        {100, 3, 128}, {6, 33, 8 * 128}, {5, 4097, 512},  {1, 70, 3}};
  for (const Case& k : cases)
    for (int64_t cap : kCaps) {
      const LisaCausalPlan plan = lisa_causal_plan(k.S, k.n, k.bw);
      INFO("S=" << k.S << " N=" << k.n << " BW=" << k.bw << " group=" << plan.group
                << " rows=" << plan.rows << " cap=" << cap);
      // scratch O(slab * BW), independent of N
      REQUIRE(plan.group * plan.rows <= std::max<int64_t>(1, kLisaSlabFloats / k.bw));
      std::vector<int> positions(size_t(k.S * k.n), 0);
      int64_t expect_r0 = 0, group_s0 = -1;
      const int64_t slabs = lisa_causal_slabs(plan, k.S, k.n);
      for (int64_t x = 0; x < slabs; ++x) {
        const LisaSlab s = lisa_causal_slab(plan, k.S, k.n, x);
        REQUIRE(s.groups >= 1);
        REQUIRE(s.groups <= plan.group);
        REQUIRE(s.rows >= 1);
        REQUIRE(s.rows <= plan.rows);
        REQUIRE(s.chunks <= plan.chunks);
        // slabs of a group run in position order from 0: the carried histogram is right
        if (s.s0 != group_s0) {
          REQUIRE(s.r0 == 0);
          group_s0 = s.s0;
        } else {
          REQUIRE(s.r0 == expect_r0);
        }
        expect_r0 = s.r0 + s.rows;
        for (int64_t g = 0; g < s.groups; ++g)
          for (int64_t i = 0; i < s.rows; ++i) ++positions[size_t((s.s0 + g) * k.n + s.r0 + i)];
        // chunks tile [0, rows)
        int64_t next = 0;
        for (int64_t c = 0; c < s.chunks; ++c) {
          REQUIRE(lisa_chunk_begin(s, c) == next);
          REQUIRE(lisa_chunk_end(s, c) > next);
          next = lisa_chunk_end(s, c);
        }
        REQUIRE(next == s.rows);
        if (k.bw > 4096) continue;  // the element-level walks below need a small BW
        // chunk totals / prefix histograms: thread (g, c, bw) writes tot[g, c, bw] and
        // hist[g, i, bw] for the positions i of its chunk
        std::vector<int> tot(size_t(s.groups * s.chunks * k.bw), 0);
        std::vector<int> hist(size_t(s.groups * s.rows * k.bw), 0);
        for_each_thread_item(lisa_scan_items(s, k.bw), kLisaThreads, cap, [&](int64_t item) {
          const LisaScanItem it = lisa_scan_item(item, s, k.bw);
          const int64_t at = (it.g * s.chunks + it.c) * k.bw + it.bw;
          REQUIRE(at < plan.group * plan.chunks * k.bw);
          ++tot[size_t(at)];
          for (int64_t i = lisa_chunk_begin(s, it.c); i < lisa_chunk_end(s, it.c); ++i) {
            const int64_t h = (it.g * s.rows + i) * k.bw + it.bw;
            REQUIRE(h < plan.group * plan.rows * k.bw);
            ++hist[size_t(h)];
          }
        });
        require_exactly_once(tot, "chunk totals");
        require_exactly_once(hist, "prefix histograms");
        std::vector<int> carry(size_t(s.groups * k.bw), 0);
        for_each_thread_item(lisa_carry_items(s, k.bw), kLisaThreads, cap,
                             [&](int64_t item) { ++carry[size_t(item)]; });
        require_exactly_once(carry, "carried state");
        // weights: thread (g, i, b) writes row [g, i, b, 0..W) (B = 8 codebooks here)
        if (k.bw % 8 == 0) {
          const int64_t B = 8, W = k.bw / 8;
          std::vector<int> wts(size_t(s.groups * s.rows * k.bw), 0);
          for_each_thread_item(lisa_weight_items(s, B), kLisaThreads, cap, [&](int64_t item) {
            const LisaWeightItem it = lisa_weight_item(item, s, B);
            for (int64_t w = 0; w < W; ++w) ++wts[size_t((it.g * s.rows + it.i) * k.bw + it.b * W + w)];
          });
          require_exactly_once(wts, "weights");
        }
      }
      require_exactly_once(positions, "output positions");
    }
}

TEST_CASE("LISA bidirectional groups: histogram, tables and gather exactly once",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, n, B, W, dh;
  };
  const Case cases[] = {{1, 1, 1, 1, 1},   {3, 7, 2, 5, 33},    {32, 64, 8, 128, 64},
                        {5, 4000, 8, 16, 8}, {40, 3, 8, 128, 128}, {2, 1000, 3, 7, 17}};
  for (const Case& k : cases)
    for (int64_t cap : kCaps) {
      const int64_t bw = k.B * k.W;
      const LisaBidirPlan plan = lisa_bidir_plan(k.S, k.n, k.B, k.W, k.dh);
      INFO("S=" << k.S << " N=" << k.n << " B=" << k.B << " W=" << k.W << " dh=" << k.dh
                << " group=" << plan.group << " cap=" << cap);
      REQUIRE(plan.chunks <= kLisaMaxChunks);
      std::vector<int> out(size_t(k.S * k.n * k.dh), 0);
      for (int64_t x = 0; x < lisa_bidir_groups(plan, k.S); ++x) {
        const LisaSlab s = lisa_bidir_slab(plan, k.S, k.n, x);
        REQUIRE(s.groups >= 1);
        REQUIRE(s.groups <= plan.group);
        REQUIRE(s.rows == k.n);
        REQUIRE(s.chunks == plan.chunks);
        REQUIRE(lisa_chunk_end(s, s.chunks - 1) == k.n);
        std::vector<int> tot(size_t(s.groups * s.chunks * bw), 0);
        for_each_thread_item(lisa_scan_items(s, bw), kLisaThreads, cap,
                             [&](int64_t item) {
                               const LisaScanItem it = lisa_scan_item(item, s, bw);
                               ++tot[size_t((it.g * s.chunks + it.c) * bw + it.bw)];
                             });
        require_exactly_once(tot, "chunk totals");
        std::vector<int> table(size_t(s.groups * bw * k.W), 0);
        for_each_thread_item(lisa_table_items(s, k.B, k.W), kLisaThreads, cap, [&](int64_t item) {
          const LisaTableItem it = lisa_table_item(item, k.B, k.W);
          for (int64_t w = 0; w < k.W; ++w)
            ++table[size_t(((it.g * k.B + it.b) * k.W + it.c) * k.W + w)];
        });
        require_exactly_once(table, "weight tables");
        for_each_thread_item(lisa_gather_items(s, k.dh), kLisaThreads, cap, [&](int64_t item) {
          const LisaGatherItem it = lisa_gather_item(item, s, k.dh);
          ++out[size_t(((s.s0 + it.g) * k.n + it.i) * k.dh + it.col)];
        });
      }
      require_exactly_once(out, "output");
    }
}

TEST_CASE("decay over a chunk equals the per-position factor applied chunk-length times",
          "[cuda][math]") {
  CHECK(math::lisa_decay_span(0.0, 100) == 1.0f);
  for (double lambda : {0.01, 0.1, 1.0})
    for (int64_t len : {1, 7, 32}) {
      float f = 1.0f;
      for (int64_t i = 0; i < len; ++i) f *= math::lisa_decay_factor(lambda);
      CHECK(std::abs(math::lisa_decay_span(lambda, len) - f) <= 1e-5f * f + 1e-30f);
    }
}

TEST_CASE("every cuda kernel matches its cpu twin's description", "[cuda][registry]") {
  int cuda_kernels = 0;
  for (const Kernel* k : Registry::instance().kernels()) {
    if (k->info().backend != Backend::cuda) continue;
    ++cuda_kernels;
    const KernelInfo& g = k->info();
    INFO(g.name);
    const Kernel* twin = Registry::instance().find(g.name, Backend::cpu);
    REQUIRE(twin != nullptr);
    const KernelInfo& c = twin->info();
    CHECK(g.family == c.family);
    CHECK(g.has_causal == c.has_causal);
    CHECK(g.has_bidirectional == c.has_bidirectional);
    CHECK(g.inputs == c.inputs);
    CHECK(g.is_vanilla == c.is_vanilla);
    REQUIRE(g.params.size() == c.params.size());
    for (size_t x = 0; x < g.params.size(); ++x) {
      CHECK(g.params[x].name == c.params[x].name);
      CHECK(g.params[x].default_value == c.params[x].default_value);
    }
    // host-side queries work without a device, and the FLOP count is the twin's
    for (bool causal : {true, false}) {
      if (causal ? !g.has_causal : !g.has_bidirectional) continue;
      Problem p = with_defaults(*k, Problem{});
      p.batch = 2;
      p.heads = 3;
      p.seq_len = 333;
      p.head_dim = 33;
      p.causal = causal;
      CHECK_NOTHROW(k->validate(p));
      CHECK(k->flops(p) == twin->flops(p));
      const WorkspaceSize ws = k->workspace(p);
      CHECK(ws.total() == k->workspace(p).total());
      // the workspace does not grow with N beyond O(N) (O(N^2) only for the materialized scores)
      if (g.name != "vanilla_materialized" && g.name != "vanilla_eager") {
        Problem big = p;
        big.seq_len = 64 * p.seq_len;
        CHECK(double(k->workspace(big).total()) <= 64.0 * double(std::max<size_t>(ws.total(), 1)) + 64e6);
      }
    }
  }
  if (build_info::cuda_backend) CHECK(cuda_kernels >= 5);
}

TEST_CASE("without a CUDA device the cuda backend refuses cleanly", "[cuda][backend]") {
  std::string why;
  if (cuda_available(&why)) {
    SUCCEED("a CUDA device is present; tests/gpu covers the backend");
    return;
  }
  CHECK_FALSE(why.empty());
  CHECK_THROWS_AS(make_cuda_runner(), InvalidProblem);
  CHECK_FALSE(gpu_info().has_value());
}

// ---------------------------------------------------------------------------------------
// 2. the CUDA algorithms on the CPU

namespace {

// Element i of a buffer stored as e.
const void* elem_at(const void* base, Elem e, int64_t i) {
  return static_cast<const char*>(base) + i * int64_t(elem_bytes(e));
}
void* elem_at(void* base, Elem e, int64_t i) {
  return static_cast<char*>(base) + i * int64_t(elem_bytes(e));
}

// A typed product (gemm.hpp) as specified: each operand through gemm_operand (its storage,
// TF32 rounding for tf32), float32 accumulation in k order, C through gemm_store.
void gemm_typed_emulated(const GemmShape& g, const void* a, const void* b, void* c) {
  REQUIRE(g.beta == 0.0f);
  for (int64_t j = 0; j < g.n; ++j)
    for (int64_t i = 0; i < g.m; ++i) {
      float acc = 0.0f;
      for (int64_t l = 0; l < g.k; ++l) {
        const float av = gemm_operand(g, g.a, a, g.trans_a ? l + i * g.lda : i + l * g.lda);
        const float bv = gemm_operand(g, g.b, b, g.trans_b ? j + l * g.ldb : l + j * g.ldb);
        acc += av * bv;
      }
      gemm_store(g, c, i + j * g.ldc, acc);
    }
}

// cuBLAS sgemm semantics (column-major, op(A) op(B)), one batch item; double accumulation.
// Typed products go to gemm_typed_emulated.
void gemm_emulated(const GemmShape& g, const void* a_any, const void* b_any, void* c_any) {
  if (!g.plain_fp32()) return gemm_typed_emulated(g, a_any, b_any, c_any);
  const auto* a = static_cast<const float*>(a_any);
  const auto* b = static_cast<const float*>(b_any);
  auto* c = static_cast<float*>(c_any);
  for (int64_t j = 0; j < g.n; ++j)
    for (int64_t i = 0; i < g.m; ++i) {
      double acc = 0;
      for (int64_t l = 0; l < g.k; ++l) {
        const float av = g.trans_a ? a[l + i * g.lda] : a[i + l * g.lda];
        const float bv = g.trans_b ? b[j + l * g.ldb] : b[l + j * g.ldb];
        acc += double(av) * double(bv);
      }
      float& out = c[i + j * g.ldc];
      // beta == 0: cuBLAS does not read C (it may hold NaN)
      out = g.beta == 0.0f ? float(g.alpha * acc) : float(g.alpha * acc) + g.beta * out;
    }
}

// flash_block's executor on the CPU: every thread of the block in turn, registers per thread.
struct FlashHostExec {
  bool reverse = false;
  std::vector<FlashRegs> regs = std::vector<FlashRegs>(kFlashThreads);
  template <class F>
  void each_thread(F&& f) {
    for (int t0 = 0; t0 < kFlashThreads; ++t0) {
      const int t = reverse ? kFlashThreads - 1 - t0 : t0;
      f(t, regs[size_t(t)]);
    }
  }
  void sync() {}
};

// Every flash_block work item of p (window 0: vanilla; > 0: local_window's band), shared
// memory starting as NaN so that reading a never-written float shows.
void flash_on_host(const Problem& p, const Inputs& in, float* out, int64_t window, bool reverse) {
  const FlashConfig cfg = flash_config(p.head_dim);
  const FlashArgs a{in.q,     in.k,   in.v, out, p.sequences(), p.seq_len, p.head_dim,
                    p.causal, window, 1.0f / std::sqrt(float(p.head_dim)), cfg};
  std::vector<float> smem(size_t(cfg.smem_bytes / 4), std::nanf(""));
  const FlashSmem sm = flash_smem(cfg, smem.data());
  CHECK(sm.factor + cfg.bm <= smem.data() + smem.size());
  FlashHostExec ex;
  ex.reverse = reverse;
  for (int64_t item = 0; item < flash_items(p.sequences(), p.seq_len, cfg); ++item)
    flash_block(ex, a, flash_work(item, p.seq_len, cfg), sm);
}

// The launcher of workspace.hpp on the CPU.
struct HostLauncher {
  bool reverse = false;  // run items (and block threads) backwards
  template <class F>
  void each(const char*, int64_t items, const F& f) {
    if (reverse)
      for (int64_t x = items - 1; x >= 0; --x) f(x);
    else
      for (int64_t x = 0; x < items; ++x) f(x);
  }
  void zero(float* p, int64_t count) { std::fill(p, p + count, 0.0f); }
  void upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  bool ignore_tf32 = false;  // a deliberately wrong launcher, for the tests that must catch it
  void gemm_strided(const char*, const GemmShape& shape, const void* a, const void* b, void* c) {
    GemmShape g = shape;
    if (ignore_tf32) g.tf32 = false;
    for (int64_t t = 0; t < g.batch; ++t)
      gemm_emulated(g, elem_at(a, g.a, t * g.stride_a), elem_at(b, g.b, t * g.stride_b),
                    elem_at(c, g.c, t * g.stride_c));
  }
  void gemm_batched(const char*, const GemmShape& g, const float* const* a,
                    const float* const* b, float* const* c) {
    for (int64_t t = 0; t < g.batch; ++t) gemm_emulated(g, a[t], b[t], c[t]);
  }
  // The flash kernel of lsan_twin's global branch (vanilla attention).
  void flash(const char*, const Problem& p, const Inputs& in, float* out) {
    flash_on_host(p, in, out, 0, reverse);
  }
  // row_softmax_kernel: per-thread states, the warp butterfly, thread 0 over the warps.
  void row_softmax(const float* in, void* out, int64_t sequences, int64_t n, bool causal,
                   Elem out_elem) {
    constexpr int T = kSoftmaxThreads;
    for (int64_t item = 0; item < softmax_items(sequences, n); ++item) {
      const SoftmaxRow r = softmax_row_of_item(item, n);
      const float* row = in + (r.seq * n + r.row) * n;
      void* row_out = elem_at(out, out_elem, (r.seq * n + r.row) * n);
      const int64_t visible = softmax_visible(r.row, n, causal);
      std::vector<math::OnlineSoftmaxRow> st(T);
      for (int t = 0; t < T; ++t) st[size_t(t)] = row_softmax_thread_state(row, visible, t, T);
      for (int o = 16; o > 0; o >>= 1) {
        std::vector<math::OnlineSoftmaxRow> next(T);
        for (int t = 0; t < T; ++t) next[size_t(t)] = online_softmax_merge(st[size_t(t)], st[size_t(t ^ o)]);
        st = next;
      }
      math::OnlineSoftmaxRow all = math::online_softmax_init();
      for (int w = 0; w < T / 32; ++w) all = online_softmax_merge(all, st[size_t(w * 32)]);
      for (int t0 = 0; t0 < T; ++t0) {
        const int t = reverse ? T - 1 - t0 : t0;
        row_softmax_thread_write(row, row_out, out_elem, n, visible, all, t, T);
      }
    }
  }
};


// A workspace buffer that starts as NaN, with guard bytes on both sides.
struct GuardedBuffer {
  static constexpr size_t kGuard = 256;
  std::vector<float> v;
  explicit GuardedBuffer(size_t bytes) : v((bytes + 3) / 4 + 2 * kGuard, std::nanf("")) {
    for (size_t x = 0; x < kGuard; ++x) v[x] = v[v.size() - 1 - x] = 12345.0f;
  }
  void* data() { return v.data() + kGuard; }
  bool intact() const {
    for (size_t x = 0; x < kGuard; ++x)
      if (v[x] != 12345.0f || v[v.size() - 1 - x] != 12345.0f) return false;
    return true;
  }
};

const Kernel& cpu_kernel(const std::string& name) {
  return Registry::instance().get(name, Backend::cpu);
}

// Relative L2 errors of an emulated output against the CPU twin and against float64.
struct EmulatedErrors {
  double cpu = 0, ref = 0;
  void keep_worst(const EmulatedErrors& e) {
    cpu = std::max(cpu, e.cpu);
    ref = std::max(ref, e.ref);
  }
};

// Runs `emulate(launcher_reverse, prepared, scratch, out)` forwards and backwards and checks
// the output against the CPU twin and float64; returns both errors.
// `tweak` (optional) edits the seeded inputs first.
template <class Emulate>
EmulatedErrors check_emulated(const std::string& name, const Problem& p, const WorkspaceSize& ws,
                    Emulate&& emulate, double& worst,
                    const std::function<void(HostInputs&)>& tweak = {}) {
  const Kernel& twin = cpu_kernel(name);
  HostInputs in = make_inputs(p, twin.info().inputs, p.seed);
  if (tweak) tweak(in);
  twin.validate(p);
  std::vector<float> outs[2];
  for (int pass = 0; pass < 2; ++pass) {
    GuardedBuffer prepared(ws.prepared_bytes), scratch(ws.scratch_bytes);
    std::vector<float> out(output_elems(p));
    poison(out.data(), out.size());
    emulate(pass == 1, in.view(), prepared.data(), scratch.data(), out.data());
    CHECK(prepared.intact());
    CHECK(scratch.intact());
    size_t bad = 0;
    for (float x : out) bad += !std::isfinite(x);
    CHECK(bad == 0);  // written, and from nothing that was never written (NaN-filled memory)
    outs[pass] = std::move(out);
  }
  CHECK(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * sizeof(float)) == 0);
  const testing::RunResult cpu = testing::run_guarded(twin, p, in);
  double num = 0, den = 0;
  for (size_t x = 0; x < cpu.out.size(); ++x) {
    num += (double(outs[0][x]) - cpu.out[x]) * (double(outs[0][x]) - cpu.out[x]);
    den += double(cpu.out[x]) * cpu.out[x];
  }
  const double err_cpu = std::sqrt(num / std::max(den, 1e-300));
  const int64_t rows_total = p.sequences() * p.seq_len;
  const auto rows = sample_rows(p, rows_total <= 1024 ? 1024 : 48, rows_total <= 1024 ? p.sequences() : 3);
  const double err_ref = testing::reference_error(twin, p, in, outs[0], rows);
  INFO("rel-L2 vs cpu twin " << err_cpu << ", vs float64 " << err_ref);
  CHECK(err_cpu < 1e-5);
  CHECK(err_ref < 1e-5);
  worst = std::max({worst, err_cpu, err_ref});
  return {err_cpu, err_ref};
}

Problem shaped(const std::string& name, int64_t b, int64_t h, int64_t n, int64_t dh, bool causal,
               uint64_t seed) {
  Problem p = testing::problem_for(cpu_kernel(name), b, h, n, dh, causal);
  p.seed = seed;
  return p;
}

}  // namespace

TEST_CASE("the cuBLAS shapes compute the row-major products the kernels intend", "[cuda][gemm]") {
  std::mt19937 gen(3);
  std::normal_distribution<float> nd;
  auto randv = [&](int64_t n) {
    std::vector<float> v(size_t(n), 0.0f);
    for (float& x : v) x = nd(gen);
    return v;
  };
  const int64_t S = 3, N = 7, dh = 5, W = 4;
  HostLauncher l;
  // scores: S[s][i][j] = scale sum_d Q[s][i][d] K[s][j][d]
  {
    const auto q = randv(S * N * dh), k = randv(S * N * dh);
    std::vector<float> sc(size_t(S * N * N));
    l.gemm_strided("", vanilla_scores_gemm(S, N, dh, 0.5f), k.data(), q.data(), sc.data());
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double want = 0;
          for (int64_t d = 0; d < dh; ++d)
            want += double(q[size_t((s * N + i) * dh + d)]) * k[size_t((s * N + j) * dh + d)];
          CHECK(sc[size_t((s * N + i) * N + j)] == Approx(0.5 * want).margin(1e-5));
        }
    // P V: O[s][i][c] = sum_j P[s][i][j] V[s][j][c]
    const auto v = randv(S * N * dh);
    std::vector<float> o(size_t(S * N * dh));
    l.gemm_strided("", vanilla_pv_gemm(S, N, dh), v.data(), sc.data(), o.data());
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t c = 0; c < dh; ++c) {
          double want = 0;
          for (int64_t j = 0; j < N; ++j)
            want += double(sc[size_t((s * N + i) * N + j)]) * v[size_t((s * N + j) * dh + c)];
          CHECK(o[size_t((s * N + i) * dh + c)] == Approx(want).margin(1e-5));
        }
  }
  // LISA projection: Cx[hb][w][e] = sum_d C[hb][w][d] Wx[hb][d][e]
  {
    const auto c = randv(S * W * dh), wx = randv(S * dh * dh);
    std::vector<float> cx(size_t(S * W * dh));
    l.gemm_strided("", lisa_projection_gemm(S, W, dh), wx.data(), c.data(), cx.data());
    for (int64_t hb = 0; hb < S; ++hb)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t e = 0; e < dh; ++e) {
          double want = 0;
          for (int64_t d = 0; d < dh; ++d)
            want += double(c[size_t((hb * W + w) * dh + d)]) * wx[size_t((hb * dh + d) * dh + e)];
          CHECK(cx[size_t((hb * W + w) * dh + e)] == Approx(want).margin(1e-5));
        }
  }
}

TEST_CASE("vanilla_materialized's CUDA pipeline, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 900;
  for (bool causal : {true, false})
    for (int64_t n : {1, 7, 64, 333})
      for (int64_t dh : {1, 8, 33}) {
        const Problem p = shaped("vanilla_materialized", 2, 3, n, dh, causal, ++seed);
        INFO(describe(p));
        check_emulated("vanilla_materialized", p, vanilla_materialized_workspace(p),
                       [&](bool rev, const Inputs& in, void*, void* scratch, float* out) {
                         HostLauncher l;
                         l.reverse = rev;
                         vanilla_materialized_run(l, p, in, scratch, out);
                       },
                       worst);
      }
  std::printf("emulated cuda vanilla_materialized: worst rel-L2 %.3e\n", worst);
}

TEST_CASE("vanilla_eager's CUDA pipeline, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 930;
  struct Shape {
    int64_t b, h, n, dh;
  };
  // S = 18: two whole masked_fill groups of 8 sequences and a partial one
  const Shape shapes[] = {{2, 3, 1, 8},  {2, 3, 7, 1},  {2, 3, 64, 33},
                          {1, 2, 333, 8}, {3, 6, 20, 16}, {1, 1, 130, 64}};
  for (bool causal : {true, false})
    for (const Shape& sh : shapes) {
      const Problem p = shaped("vanilla_eager", sh.b, sh.h, sh.n, sh.dh, causal, ++seed);
      INFO(describe(p));
      check_emulated("vanilla_eager", p, vanilla_eager_workspace(p),
                     [&](bool rev, const Inputs& in, void*, void* scratch, float* out) {
                       HostLauncher l;
                       l.reverse = rev;
                       vanilla_eager_run(l, p, in, scratch, out);
                     },
                     worst);
    }
  std::printf("emulated cuda vanilla_eager: worst rel-L2 %.3e\n", worst);
}

// ---------------------------------------------------------------------------------------
// 2b. the precision axis on the CPU: typed products, 16-bit storage, vanilla at tf32/bf16/fp16

namespace {

const Precision kLowPrecisions[] = {Precision::tf32, Precision::bf16, Precision::fp16};
using testing::PrecisionRef;
using testing::rel_l2;
using testing::vanilla_at_precision;

// The pipeline's result at a precision: the output as float32 and its probability operand.
struct EmulatedRun {
  std::vector<float> out, probs;
};

// Runs vanilla_materialized (or vanilla_eager) on the CPU as the GPU would: q, k, v uploaded in
// the precision's storage (device_data.hpp), scratch NaN-filled and guarded, a poisoned output.
EmulatedRun run_vanilla_emulated(const std::string& name, const Problem& p, const HostInputs& in,
                                 bool reverse, bool ignore_tf32 = false) {
  const size_t qkv = size_t(p.qkv_elems());
  const auto q = to_storage(in.q, qkv, p.precision), k = to_storage(in.k, qkv, p.precision),
             v = to_storage(in.v, qkv, p.precision);
  Inputs view;
  view.q = reinterpret_cast<const float*>(q.data());
  view.k = reinterpret_cast<const float*>(k.data());
  view.v = reinterpret_cast<const float*>(v.data());
  const bool eager = name == "vanilla_eager";
  GuardedBuffer scratch(eager ? vanilla_eager_workspace(p).scratch_bytes
                              : vanilla_materialized_workspace(p).scratch_bytes);
  std::vector<unsigned char> out = poisoned_storage(output_elems(p), p.precision);
  HostLauncher l;
  l.reverse = reverse;
  l.ignore_tf32 = ignore_tf32;
  if (eager)
    vanilla_eager_run(l, p, view, scratch.data(), reinterpret_cast<float*>(out.data()));
  else
    vanilla_materialized_run(l, p, view, scratch.data(), reinterpret_cast<float*>(out.data()));
  CHECK(scratch.intact());
  EmulatedRun r{from_storage(out.data(), output_elems(p), p.precision), {}};
  if (!eager) {  // the probabilities as the P V product reads them
    const MaterializedBuffers b = materialized_buffers(p, scratch.data());
    const Elem e = storage_elem(p.precision);
    r.probs.resize(size_t(p.sequences() * p.seq_len * p.seq_len));
    for (size_t x = 0; x < r.probs.size(); ++x) r.probs[x] = load_elem(e, b.probs, int64_t(x));
  }
  return r;
}

// Agreement between the emulated pipeline and the independent computation: a fifth of the
// precision's unit roundoff. They differ only where a float32 difference of the two softmaxes
// (online with the shared exp vs two-pass with std::exp, ~1e-7) moves a value across a
// rounding boundary (measured: at most 0.05 u); a missing rounding of the probabilities moves
// the output by ~0.4 u (measured: at least 0.4 u), so the check sees it.
double agreement_tolerance(Precision p) { return 0.2 * unit_roundoff(p); }

}  // namespace

TEST_CASE("typed products round their operands as the precision stores them", "[cuda][gemm]") {
  std::mt19937 gen(11);
  std::normal_distribution<float> nd;
  const int64_t S = 2, N = 9, dh = 7;
  std::vector<float> q(size_t(S * N * dh)), k(q.size());
  for (float& x : q) x = nd(gen);
  for (float& x : k) x = nd(gen);
  for (Precision pr : kLowPrecisions) {
    INFO(precision_name(pr));
    // 16-bit operands hold rounded values (as the harness's inputs are); TF32 operands are
    // arbitrary floats, which the product itself must round
    std::vector<float> qr = q, kr = k;
    if (pr != Precision::tf32)
      for (auto* t : {&qr, &kr})
        for (float& x : *t) x = round_to(pr, x);
    const auto qs = to_storage(qr, qr.size(), pr), ks = to_storage(kr, kr.size(), pr);
    const GemmShape g = typed_gemm(vanilla_scores_gemm(S, N, dh, 0.5f), pr, storage_elem(pr));
    std::vector<unsigned char> c(size_t(S * N * N) * storage_bytes(pr));
    HostLauncher l;
    l.gemm_strided("", g, ks.data(), qs.data(), c.data());
    const std::vector<float> got = from_storage(c.data(), size_t(S * N * N), pr);
    l.ignore_tf32 = true;  // the mistake: TF32 products fed unrounded operands
    l.gemm_strided("", g, ks.data(), qs.data(), c.data());
    const std::vector<float> wrong = from_storage(c.data(), size_t(S * N * N), pr);
    size_t differ = 0, wrong_differ = 0;
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) {
          float acc = 0.0f;
          for (int64_t d = 0; d < dh; ++d)
            acc += round_to(pr, qr[size_t((s * N + i) * dh + d)]) *
                   round_to(pr, kr[size_t((s * N + j) * dh + d)]);
          const float want = storage_bytes(pr) == 2 ? round_to(pr, 0.5f * acc) : 0.5f * acc;
          const size_t x = size_t((s * N + i) * N + j);
          differ += got[x] != want;
          wrong_differ += wrong[x] != want;
        }
    CHECK(differ == 0);  // bit for bit: same rounding, same order, float accumulation
    if (pr == Precision::tf32) CHECK(wrong_differ > size_t(S * N * N) / 2);
  }
}

TEST_CASE("16-bit storage round-trips rounded values and keeps the poison visible",
          "[cuda][precision]") {
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  for (Precision pr : kAllPrecisions) {
    INFO(precision_name(pr));
    std::vector<float> v(1000);
    for (float& x : v) x = round_to(pr, 100.0f * nd(gen));
    const auto bytes = to_storage(v, v.size(), pr);
    CHECK(bytes.size() == v.size() * storage_bytes(pr));
    CHECK(from_storage(bytes.data(), v.size(), pr) == v);  // exact: the values were rounded
    const auto poisoned = poisoned_storage(3, pr);
    for (float x : from_storage(poisoned.data(), 3, pr)) CHECK(is_poison(x));
    // a NaN the arithmetic produces is not mistaken for an unwritten element
    const auto nan = to_storage({std::nanf("")}, 1, pr);
    const float back = from_storage(nan.data(), 1, pr)[0];
    CHECK(std::isnan(back));
    CHECK_FALSE(is_poison(back));
  }
}

namespace {

struct PrecisionErrors {
  double ref = 0, agree = 0, unrounded = 0, probs_mismatch = 0;
};

// One point at a low precision: the emulated pipeline forwards and backwards (bitwise equal,
// every element written and finite), against float64 within correctness_tolerance, against the
// independent computation within agreement_tolerance, and that computation without rounding
// the probabilities must disagree by more (so the agreement check can see a missing rounding).
PrecisionErrors check_precision_point(const std::string& name, const Problem& p) {
  INFO(name << " " << describe(p));
  const HostInputs in = make_inputs(p, kInputQKV, p.seed);
  const EmulatedRun fwd = run_vanilla_emulated(name, p, in, false);
  const EmulatedRun bwd = run_vanilla_emulated(name, p, in, true);
  CHECK(std::memcmp(fwd.out.data(), bwd.out.data(), fwd.out.size() * sizeof(float)) == 0);
  size_t bad = 0;
  for (float x : fwd.out) bad += is_poison(x) || !std::isfinite(x);
  CHECK(bad == 0);
  const PrecisionRef want = vanilla_at_precision(p, in, true);
  const PrecisionRef unrounded = vanilla_at_precision(p, in, false);
  PrecisionErrors e;
  const auto rows = sample_rows(p, 1024, p.sequences());
  e.ref = testing::reference_error(cpu_kernel(name), p, in, fwd.out, rows);
  e.agree = rel_l2(fwd.out, want.out);
  e.unrounded = rel_l2(unrounded.out, want.out);
  const double tol = agreement_tolerance(p.precision);
  INFO("vs float64 " << e.ref << ", vs independent " << e.agree << ", unrounded probabilities "
                     << e.unrounded << ", agreement tolerance " << tol);
  CHECK(e.ref < correctness_tolerance(p.precision, p.seq_len));
  CHECK(e.agree < tol);
  if (p.seq_len > 1) CHECK(e.unrounded > tol);  // N = 1: every probability is 1, exact
  if (!fwd.probs.empty()) {  // the second product's operand: round_to of the float softmax
    size_t mismatch = 0;
    for (size_t x = 0; x < want.probs.size(); ++x) {
      const float operand = round_to(p.precision, fwd.probs[x]);  // TF32: inside the product
      if (operand == want.probs[x]) continue;
      ++mismatch;  // a float32 difference crossed a rounding boundary: one step at most
      // (fp16's subnormal spacing, 2^-24, bounds the step of the tiniest probabilities)
      CHECK(std::fabs(operand - want.probs[x]) <=
            2.0 * unit_roundoff(p.precision) * want.probs[x] + 6e-8);
    }
    e.probs_mismatch = double(mismatch) / double(want.probs.size());
    CHECK(e.probs_mismatch < 0.01);
  }
  return e;
}

std::vector<Problem> precision_problems(const std::string& name, Precision pr, uint64_t seed) {
  struct Shape {
    int64_t b, h, n, dh;
  };
  const Shape shapes[] = {{2, 3, 1, 8}, {2, 3, 7, 8}, {1, 2, 64, 33}, {2, 1, 333, 16}, {1, 1, 130, 64}};
  std::vector<Problem> v;
  for (bool causal : {true, false})
    for (const Shape& sh : shapes) {
      Problem p = shaped(name, sh.b, sh.h, sh.n, sh.dh, causal, ++seed);
      p.precision = pr;
      v.push_back(p);
    }
  return v;
}

}  // namespace

TEST_CASE("vanilla_materialized at tf32, bf16 and fp16, run on the CPU, matches an independent "
          "computation and float64 within the precision's tolerance", "[cuda][emulated][precision]") {
  // the CUDA kernel (in a CUDA build) declares the precision it is checked at
  const Kernel* cuda = Registry::instance().find("vanilla_materialized", Backend::cuda);
  for (Precision pr : kLowPrecisions) {
    PrecisionErrors worst;
    for (const Problem& p : precision_problems("vanilla_materialized", pr, 1200)) {
      if (cuda) CHECK_NOTHROW(cuda->validate(p));
      const PrecisionErrors e = check_precision_point("vanilla_materialized", p);
      worst.ref = std::max(worst.ref, e.ref);
      worst.agree = std::max(worst.agree, e.agree);
      worst.probs_mismatch = std::max(worst.probs_mismatch, e.probs_mismatch);
      worst.unrounded = worst.unrounded == 0 ? e.unrounded : std::min(worst.unrounded, e.unrounded);
    }
    std::printf("emulated cuda vanilla_materialized %s: worst rel-L2 vs float64 %.3e (tolerance "
                "from %.3e), vs independent %.3e, unrounded P at least %.3e, P mismatches %.2e\n",
                precision_name(pr), worst.ref, correctness_tolerance(pr, 1), worst.agree,
                worst.unrounded, worst.probs_mismatch);
  }
}

TEST_CASE("vanilla_eager at tf32, run on the CPU, matches an independent computation and float64",
          "[cuda][emulated][precision]") {
  PrecisionErrors worst;
  for (const Problem& p : precision_problems("vanilla_eager", Precision::tf32, 1300)) {
    const PrecisionErrors e = check_precision_point("vanilla_eager", p);
    worst.ref = std::max(worst.ref, e.ref);
    worst.agree = std::max(worst.agree, e.agree);
  }
  std::printf("emulated cuda vanilla_eager tf32: worst rel-L2 vs float64 %.3e, vs independent %.3e\n",
              worst.ref, worst.agree);
}

TEST_CASE("a TF32 pipeline whose products skip the operand rounding is caught",
          "[cuda][emulated][precision]") {
  Problem p = shaped("vanilla_materialized", 1, 2, 130, 64, true, 1400);
  p.precision = Precision::tf32;
  const HostInputs in = make_inputs(p, kInputQKV, p.seed);
  const EmulatedRun wrong = run_vanilla_emulated("vanilla_materialized", p, in, false, true);
  const PrecisionRef want = vanilla_at_precision(p, in, true);
  // q, k, v are already TF32 values: only the probabilities show the missing rounding
  CHECK(rel_l2(wrong.out, want.out) > agreement_tolerance(p.precision));
}

// The flash block of vanilla_flash (window 0) and local_window (window = min(w, N)).
void check_flash_emulated(const std::string& name, const Problem& p, double& worst) {
  const int64_t window = name == "local_window" ? std::min(p.int_param("window"), p.seq_len) : 0;
  check_emulated(name, p, WorkspaceSize{},
                 [&](bool rev, const Inputs& in, void*, void*, float* out) {
                   flash_on_host(p, in, out, window, rev);
                 },
                 worst);
}

TEST_CASE("vanilla_flash's CUDA thread block, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 950;
  struct Shape {
    int64_t b, h, n, dh;
  };
  const Shape shapes[] = {{2, 3, 1, 8},   {2, 3, 7, 33},  {1, 2, 64, 64}, {1, 2, 130, 16},
                          {1, 1, 333, 64}, {1, 1, 70, 200}, {1, 1, 65, 1000}, {3, 1, 9, 1}};
  for (bool causal : {true, false})
    for (const Shape& sh : shapes) {
      const Problem p = shaped("vanilla_flash", sh.b, sh.h, sh.n, sh.dh, causal, ++seed);
      INFO(describe(p));
      check_flash_emulated("vanilla_flash", p, worst);
    }
  std::printf("emulated cuda vanilla_flash: worst rel-L2 %.3e\n", worst);
}

TEST_CASE("local_window's CUDA thread block, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 970;
  for (bool causal : {true, false})
    for (int64_t n : {1, 7, 130, 333})
      for (int64_t window : {1, 3, 64, 100, 1000}) {
        Problem p = shaped("local_window", 2, 2, n, n == 333 ? 33 : 16, causal, ++seed);
        p.set_param("window", window);
        INFO(describe(p, {"window"}));
        check_flash_emulated("local_window", p, worst);
      }
  std::printf("emulated cuda local_window: worst rel-L2 %.3e\n", worst);
}

TEST_CASE("LISA's CUDA pipelines, run on the CPU, match the CPU twins", "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 990;
  for (const char* name : {"lisa_base", "lisa_mini", "lisa_soft"})
    for (bool causal : {true, false}) {
      std::vector<Problem> problems;
      for (int64_t n : {1, 7, 333})
        for (int64_t dh : {8, 33}) problems.push_back(shaped(name, 2, 3, n, dh, causal, ++seed));
      Problem proj = shaped(name, 2, 2, 100, 16, causal, ++seed);
      proj.set_param("projections", true);
      problems.push_back(proj);
      if (causal) {
        Problem decay = shaped(name, 1, 2, 400, 8, causal, ++seed);
        decay.set_param("decay", 0.1);
        problems.push_back(decay);
        // several slabs per sequence (B*W = 4096: 512 rows per slab), the histogram carried
        Problem slabs = shaped(name, 1, 2, 1100, 8, causal, ++seed);
        slabs.set_param("codewords", 512);
        slabs.set_param("decay", 0.01);
        problems.push_back(slabs);
      } else {
        // several groups of sequences, crossing batch elements
        Problem groups = shaped(name, 4, 8, 64, 8, causal, ++seed);
        groups.set_param("codewords", 128);
        problems.push_back(groups);
      }
      const bool soft = std::string(name) == "lisa_soft";
      for (const Problem& p : problems) {
        INFO(name << " " << describe(p, {"codebooks", "codewords", "projections", "decay"}));
        if (p.causal && p.seq_len == 1100) {
          const LisaCausalPlan plan = lisa_causal_plan(p.sequences(), p.seq_len, p.int_param("codebooks") * p.int_param("codewords"));
          REQUIRE(lisa_causal_slabs(plan, p.sequences(), p.seq_len) >= 6);
        }
        if (!p.causal && p.batch == 4) {
          const LisaBidirPlan plan = lisa_bidir_plan(p.sequences(), p.seq_len, p.int_param("codebooks"),
                                                     p.int_param("codewords"), p.head_dim);
          REQUIRE(lisa_bidir_groups(plan, p.sequences()) >= 2);
        }
        check_emulated(name, p, lisa_workspace(p),
                       [&](bool rev, const Inputs& in, void* prepared, void* scratch, float* out) {
                         HostLauncher l;
                         l.reverse = rev;
                         lisa_prepare(l, p, in, prepared);
                         lisa_run(l, p, in, soft, prepared, scratch, out);
                       },
                       worst);
      }
    }
  std::printf("emulated cuda lisa_*: worst rel-L2 %.3e\n", worst);
}

TEST_CASE("LISA's CUDA scratch does not grow with N", "[cuda][tiling]") {
  Problem p = with_defaults(Registry::instance().get("lisa_base", Backend::cpu), Problem{});
  p.set_param("codebooks", 8);
  p.set_param("codewords", 128);
  p.head_dim = 64;
  for (bool causal : {true, false}) {
    p.causal = causal;
    p.seq_len = 100000;
    const size_t small = lisa_workspace(p).scratch_bytes;
    p.seq_len = 1000000;
    const size_t large = lisa_workspace(p).scratch_bytes;
    INFO("causal=" << causal << " scratch at N=1e5: " << small << ", at N=1e6: " << large);
    if (causal)
      CHECK(large == small);
    else
      CHECK(large <= small + 64 * 1024 * 4);  // only the chunk totals (<= 64 chunks) change
    CHECK(large < (size_t(64) << 20));
  }
}

TEST_CASE("linear family and hydra slabs: every element once, within the scratch bounds",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, n, m, dh, slab_floats;
  };
  const Case cases[] = {{1, 1, 8, 8, kLinSlabFloats},   {6, 7, 8, 8, kLinSlabFloats},
                        {2, 333, 16, 16, 20000},        {3, 1000, 33, 17, 50000},
                        {5, 130, 4, 3, 3000},           {40, 65, 8, 8, 40000},
                        {1, 70000, 64, 64, kLinSlabFloats}};
  for (const Case& k : cases)
    for (bool causal : {true, false}) {
      const LinearPlan plan = linear_plan(k.S, k.n, k.m, k.dh, k.slab_floats);
      const int64_t state = linear_state_floats(k.m, k.dh);
      INFO("S=" << k.S << " N=" << k.n << " m=" << k.m << " dh=" << k.dh << " budget "
                << k.slab_floats << ": group " << plan.group << " rows " << plan.rows);
      REQUIRE(plan.rows >= 1);
      REQUIRE((plan.rows == k.n || plan.rows % kLinChunk == 0));
      std::vector<int> positions(size_t(k.S * k.n), 0);
      const bool small = k.S * k.n <= 5000;
      for (int64_t gi = 0; gi < linear_groups(plan, k.S); ++gi) {
        int64_t next_r0 = 0;
        for (int64_t x = 0; x < linear_slabs_per_group(plan, k.n); ++x) {
          const RowSlab s = linear_slab(plan, k.S, k.n, gi, x);
          REQUIRE(s.s0 == gi * plan.group);
          REQUIRE(s.r0 == next_r0);  // in position order: the carried state is right
          next_r0 = s.r0 + s.rows;
          REQUIRE(s.groups <= plan.group);
          REQUIRE(s.rows <= plan.rows);
          REQUIRE(s.chunks <= plan.chunks);
          for (int64_t g = 0; g < s.groups; ++g)
            for (int64_t i = 0; i < s.rows; ++i) ++positions[size_t((s.s0 + g) * k.n + s.r0 + i)];
          if (!small) continue;
          std::vector<int> rows(size_t(s.groups * s.rows), 0), states(size_t(s.groups * s.chunks * state), 0),
              scores(size_t(s.groups * s.rows * s.chunk), 0), outs(size_t(s.groups * s.rows * k.dh), 0);
          for_each_thread_item(linear_row_items(s), kItemThreadsForTests, 3, [&](int64_t item) {
            const LinRowItem it = linear_row_item(item, s);
            REQUIRE(item == it.g * s.rows + it.i);
            ++rows[size_t(item)];
          });
          for_each_thread_item(linear_state_items(s, state), kItemThreadsForTests, 3, [&](int64_t item) {
            const LinStateItem it = linear_state_item(item, s, state);
            REQUIRE(item == (it.g * s.chunks + it.c) * state + it.x);
            REQUIRE(lisa_chunk_begin(s, it.c) < lisa_chunk_end(s, it.c));
            ++states[size_t(item)];
          });
          // causal scores: (g, i, jj) covers the keys c0 .. i of i's chunk once each
          std::vector<int> pairs(size_t(s.groups * s.rows * s.rows), 0);
          for_each_thread_item(linear_score_items(s), kItemThreadsForTests, 3, [&](int64_t item) {
            const LinScoreItem it = linear_score_item(item, s);
            ++scores[size_t(item)];
            const int64_t j = (it.i / s.chunk) * s.chunk + it.jj;
            if (j <= it.i) ++pairs[size_t((it.g * s.rows + it.i) * s.rows + j)];
          });
          for (int64_t g = 0; g < s.groups; ++g)
            for (int64_t i = 0; i < s.rows; ++i)
              for (int64_t j = 0; j < s.rows; ++j) {
                const bool same_chunk_past = j <= i && j / s.chunk == i / s.chunk;
                REQUIRE(pairs[size_t((g * s.rows + i) * s.rows + j)] == (same_chunk_past ? 1 : 0));
              }
          for_each_thread_item(linear_out_items(s, k.dh), kItemThreadsForTests, 3, [&](int64_t item) {
            const LinOutItem it = linear_out_item(item, s, k.dh);
            REQUIRE(item == (it.g * s.rows + it.i) * k.dh + it.e);
            ++outs[size_t(item)];
          });
          require_exactly_once(rows, "feature rows");
          require_exactly_once(states, "chunk states");
          require_exactly_once(scores, "chunk scores");
          require_exactly_once(outs, "outputs");
        }
        REQUIRE(next_r0 == k.n);
      }
      require_exactly_once(positions, "positions");
      // hydra: columns of the width
      const int64_t d = k.m * k.dh;  // as heads * dh
      const LinearPlan hp = hydra_plan(k.S, k.n, d, k.slab_floats);
      if (!small) continue;
      std::vector<int> cols(size_t(k.S * k.n * d), 0);
      for (int64_t gi = 0; gi < linear_groups(hp, k.S); ++gi)
        for (int64_t x = 0; x < linear_slabs_per_group(hp, k.n); ++x) {
          const RowSlab s = linear_slab(hp, k.S, k.n, gi, x);
          std::vector<int> tot(size_t(s.groups * s.chunks * d), 0);
          for_each_thread_item(hydra_col_items(s, d), kItemThreadsForTests, 3, [&](int64_t item) {
            const HydraColItem it = hydra_col_item(item, s, d);
            REQUIRE(item == (it.g * s.chunks + it.c) * d + it.col);
            ++tot[size_t(item)];
            if (causal)  // the causal output walks the chunk's positions
              for (int64_t i = lisa_chunk_begin(s, it.c); i < lisa_chunk_end(s, it.c); ++i)
                ++cols[size_t(((s.s0 + it.g) * k.n + s.r0 + i) * d + it.col)];
          });
          require_exactly_once(tot, "hydra chunk totals");
          if (!causal)
            for_each_thread_item(hydra_out_items(s, d), kItemThreadsForTests, 3, [&](int64_t item) {
              const LinOutItem it = linear_out_item(item, s, d);
              ++cols[size_t(((s.s0 + it.g) * k.n + s.r0 + it.i) * d + it.e)];
            });
        }
      require_exactly_once(cols, "hydra outputs");
    }
  // the hydra index map is the [batch, heads, N, dh] layout
  CHECK(hydra_index(1, 5, 2, 3, 4, 4) == ((1 * 3 + 1) * 4 + 2) * 4 + 1);
}

TEST_CASE("the linear family's CUDA pipelines, run on the CPU, match the CPU twins",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 1500;
  struct Form {
    const char* name;
    LinearMap map;
  };
  for (const Form& f : {Form{"linear_elu", LinearMap::elu_plus_one}, Form{"linrec", LinearMap::linrec},
                        Form{"performer", LinearMap::performer}})
    for (bool causal : {true, false}) {
      std::vector<std::pair<Problem, int64_t>> problems;  // problem, slab budget
      for (int64_t n : {1, 7, 65, 333})
        for (int64_t dh : {8, 33}) problems.push_back({shaped(f.name, 2, 3, n, dh, causal, ++seed), kLinSlabFloats});
      problems.push_back({shaped(f.name, 3, 2, 700, 16, causal, ++seed), 30000});  // slabs, groups
      problems.push_back({shaped(f.name, 40, 1, 70, 8, causal, ++seed), 20000});   // groups
      if (f.map == LinearMap::performer) {
        Problem wide = shaped(f.name, 1, 2, 200, 16, causal, ++seed);
        wide.set_param("features", 100);
        problems.push_back({wide, 30000});
      }
      for (const auto& [p, budget] : problems) {
        const LinearPlan plan = linear_plan(p.sequences(), p.seq_len, linear_feature_count(f.map, p),
                                            p.head_dim, budget);
        INFO(f.name << " " << describe(p, {"features"}) << " slab budget " << budget << ": group "
                    << plan.group << " rows " << plan.rows);
        check_emulated(f.name, p, linear_workspace(f.map, p, plan),
                       [&](bool rev, const Inputs& in, void* prepared, void* scratch, float* out) {
                         HostLauncher l;
                         l.reverse = rev;
                         if (f.map == LinearMap::performer) performer_prepare(l, p, prepared);
                         linear_run(l, p, in, linear_spec(f.map, p, static_cast<const float*>(prepared)),
                                    plan, scratch, out);
                       },
                       worst);
      }
    }
  std::printf("emulated cuda linear_elu/linrec/performer: worst rel-L2 %.3e\n", worst);
}

TEST_CASE("hydra's CUDA pipeline, run on the CPU, matches the CPU twin", "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 1700;
  for (bool causal : {true, false}) {
    std::vector<std::pair<Problem, int64_t>> problems;
    for (int64_t n : {1, 7, 65, 333})
      for (int64_t dh : {8, 33}) problems.push_back({shaped("hydra", 2, 3, n, dh, causal, ++seed), kLinSlabFloats});
    problems.push_back({shaped("hydra", 3, 4, 700, 8, causal, ++seed), 6000});  // slabs, groups
    problems.push_back({shaped("hydra", 9, 1, 64, 5, causal, ++seed), 600});
    for (const auto& [p, budget] : problems) {
      const LinearPlan plan = hydra_plan(p.batch, p.seq_len, p.heads * p.head_dim, budget);
      INFO(describe(p) << " slab budget " << budget << ": group " << plan.group << " rows "
                       << plan.rows);
      check_emulated("hydra", p, hydra_workspace(p, plan),
                     [&](bool rev, const Inputs& in, void*, void* scratch, float* out) {
                       HostLauncher l;
                       l.reverse = rev;
                       hydra_run(l, p, in, plan, scratch, out);
                     },
                     worst);
    }
  }
  std::printf("emulated cuda hydra: worst rel-L2 %.3e\n", worst);
}

// Keys of a wide spread, as efficient_attention's running column max meets them: column 0
// ramps linearly with position to ~200 (the max moves at almost every row), the last column
// falls to ~-150 (every later key far below the max), and a few positions jump ~100 above the
// rest in every third column (chunks whose max sits far above the prefix's, and rows before
// the jump far below the chunk's max).
namespace {
void efficient_spread_keys(const Problem& p, HostInputs& in) {
  const int64_t N = p.seq_len, dh = p.head_dim;
  for (int64_t s = 0; s < p.sequences(); ++s)
    for (int64_t i = 0; i < N; ++i) {
      float* k = in.k.data() + (s * N + i) * dh;
      const float t = N > 1 ? float(i) / float(N - 1) : 0.0f;
      k[0] += 200.0f * t;
      if (dh > 1) k[dh - 1] -= 150.0f * t;
      if (i % 97 == 10 || i % 64 == 40)
        for (int64_t c = 1; c + 1 < dh; c += 3) k[c] += 100.0f + float(c);
    }
}
}  // namespace

TEST_CASE("efficient_attention slabs: chunk columns once, scratch independent of N",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, n, dh, slab_floats;
  };
  const Case cases[] = {{1, 1, 8, kLinSlabFloats}, {6, 7, 5, kLinSlabFloats},
                        {2, 333, 16, 20000},       {3, 1000, 33, 50000},
                        {40, 65, 8, 40000},        {1, 70000, 64, kLinSlabFloats}};
  for (const Case& k : cases) {
    const LinearPlan plan = efficient_plan(k.S, k.n, k.dh, k.slab_floats);
    INFO("S=" << k.S << " N=" << k.n << " dh=" << k.dh << " budget " << k.slab_floats
              << ": group " << plan.group << " rows " << plan.rows);
    REQUIRE(plan.rows >= 1);
    REQUIRE((plan.rows == k.n || plan.rows % kLinChunk == 0));
    REQUIRE(plan.chunks == ceil_div(plan.rows, kLinChunk));
    // the slab's buffers stay within the budget (one chunk of rows at least)
    CHECK(plan.group * ceil_div(plan.rows, kLinChunk) * kLinChunk * efficient_floats_per_row(k.dh) <=
          std::max(k.slab_floats, kLinChunk * efficient_floats_per_row(k.dh)));
    if (k.S * k.n > 5000) continue;
    for (int64_t gi = 0; gi < linear_groups(plan, k.S); ++gi)
      for (int64_t x = 0; x < linear_slabs_per_group(plan, k.n); ++x) {
        const RowSlab s = linear_slab(plan, k.S, k.n, gi, x);
        // chunk keys: (g, c, a) once each, and through its chunk's positions every e[g, i, a]
        std::vector<int> cols(size_t(s.groups * s.chunks * k.dh), 0), ek(size_t(s.groups * s.rows * k.dh), 0);
        for_each_thread_item(chunk_col_items(s, k.dh), kItemThreadsForTests, 3, [&](int64_t item) {
          const HydraColItem it = chunk_col_item(item, s, k.dh);
          REQUIRE(item == (it.g * s.chunks + it.c) * k.dh + it.col);
          ++cols[size_t(item)];
          for (int64_t i = lisa_chunk_begin(s, it.c); i < lisa_chunk_end(s, it.c); ++i)
            ++ek[size_t((it.g * s.rows + i) * k.dh + it.col)];
        });
        require_exactly_once(cols, "chunk maxima");
        require_exactly_once(ek, "exponentiated keys");
      }
  }
  Problem p;
  p.batch = 2;
  p.heads = 4;
  p.head_dim = 64;
  for (bool causal : {true, false}) {
    p.causal = causal;
    p.seq_len = 100000;
    const size_t small = efficient_workspace(p, efficient_default_plan(p)).scratch_bytes;
    p.seq_len = 1000000;
    const size_t large = efficient_workspace(p, efficient_default_plan(p)).scratch_bytes;
    INFO("causal=" << causal << " scratch at N=1e5: " << small << ", at N=1e6: " << large);
    CHECK(large == small);
    CHECK(large < (size_t(64) << 20));
  }
}

TEST_CASE("efficient_attention's CUDA pipeline, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  uint64_t seed = 1600;
  struct Case {
    Problem p;
    int64_t budget;
    bool spread;  // efficient_spread_keys
    float key_scale;
  };
  for (bool causal : {true, false}) {
    std::vector<Case> cases;
    for (int64_t n : {1, 7, 65, 333})
      for (int64_t dh : {3, 8, 33})
        cases.push_back({shaped("efficient_attention", 2, 3, n, dh, causal, ++seed), kLinSlabFloats, false, 1.0f});
    for (int64_t n : {7, 65, 333})
      cases.push_back({shaped("efficient_attention", 2, 3, n, 8, causal, ++seed), kLinSlabFloats, true, 1.0f});
    cases.push_back({shaped("efficient_attention", 1, 2, 700, 5, causal, ++seed), 5000, true, 1.0f});   // slabs
    cases.push_back({shaped("efficient_attention", 3, 2, 200, 16, causal, ++seed), 30000, true, 1.0f}); // slabs, groups
    cases.push_back({shaped("efficient_attention", 40, 1, 70, 8, causal, ++seed), 20000, false, 1.0f}); // groups
    cases.push_back({shaped("efficient_attention", 2, 2, 200, 16, causal, ++seed), kLinSlabFloats, false, 30.0f});
    for (const Case& c : cases) {
      const Problem& p = c.p;
      const LinearPlan plan = efficient_plan(p.sequences(), p.seq_len, p.head_dim, c.budget);
      INFO(describe(p) << " slab budget " << c.budget << ": group " << plan.group << " rows "
                       << plan.rows << (c.spread ? ", spread keys" : "") << ", key scale "
                       << c.key_scale);
      if (c.budget == 5000) REQUIRE(linear_slabs_per_group(plan, p.seq_len) >= 4);
      if (c.budget == 30000) REQUIRE(linear_groups(plan, p.sequences()) >= 2);
      check_emulated("efficient_attention", p, efficient_workspace(p, plan),
                     [&](bool rev, const Inputs& in, void*, void* scratch, float* out) {
                       HostLauncher l;
                       l.reverse = rev;
                       efficient_run(l, p, in, plan, scratch, out);
                     },
                     worst,
                     [&](HostInputs& in) {
                       for (float& x : in.k) x *= c.key_scale;
                       if (c.spread) efficient_spread_keys(p, in);
                     });
    }
  }
  std::printf("emulated cuda efficient_attention: worst rel-L2 %.3e\n", worst);
}

// ---------------------------------------------------------------------------------------
// The sparse family (sparse_pipeline.hpp): reformer_lsh, sinkhorn, lsan_twin

namespace {

// The budget the plan promises: its buffers within `budget`, or one unit's keys and one row.
int64_t sparse_plan_floats(const SparsePlan& p, int64_t dh) {
  return p.group * (p.units * dh * p.max_keys + p.rows * (p.max_keys + 1));
}

// A slab's gather, score, row and output items, walked as the grid-stride kernels walk them.
void check_sparse_slab_items(const SparseSlab& slab, const SparsePlan& plan, int64_t dh,
                             int64_t cap) {
  const int64_t mk = plan.max_keys;
  std::vector<int> kt(size_t(slab.groups * slab.units * dh * mk), 0);
  for_each_thread_item(
      sparse_key_items(slab, dh, mk), kItemThreadsForTests, cap, [&](int64_t item) {
        const Item3 it = item3(item, slab.units, dh * mk);  // SparseGatherKeys's map
        REQUIRE(it.i0 < slab.groups);
        REQUIRE(it.i1 < slab.units);
        ++kt[size_t(item)];
      });
  require_exactly_once(kt, "gathered keys");
  std::vector<int> scores(size_t(slab.groups * slab.rows * mk), 0);
  for_each_thread_item(sparse_row_items(slab, mk), kItemThreadsForTests, cap, [&](int64_t item) {
    const Item3 it = sparse_row_item(item, slab, mk);
    const int64_t lu = sparse_local_unit(slab, it.i1, plan.unit);
    REQUIRE(lu >= 0);
    REQUIRE(lu < slab.units);  // the score reads only its slab's gathered keys
    ++scores[size_t(item)];
  });
  require_exactly_once(scores, "scores");
  std::vector<int> rows(size_t(slab.groups * slab.rows), 0),
      outs(size_t(slab.groups * slab.rows * dh), 0);
  for_each_thread_item(sparse_row_items(slab), kItemThreadsForTests, cap,
                       [&](int64_t item) { ++rows[size_t(item)]; });
  for_each_thread_item(sparse_row_items(slab, dh), kItemThreadsForTests, cap, [&](int64_t item) {
    const Item3 it = sparse_row_item(item, slab, dh);
    ++outs[size_t((it.i0 * slab.rows + it.i1) * dh + it.i2)];
  });
  require_exactly_once(rows, "softmax rows");
  require_exactly_once(outs, "outputs");
}

}  // namespace

TEST_CASE("sparse unit-attention slabs: every row once, every buffer element once, in budget",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, n, unit, max_keys, dh, budget;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 8, kSparseSlabFloats},        // N = 1
      {6, 7, 7, 7, 33, kSparseSlabFloats},       // one unit per sequence, all in one slab
      {6, 333, 64, 128, 33, kSparseSlabFloats},  // the last unit ragged
      {3, 333, 64, 128, 8, 40000},               // several units per slab, several slabs
      {2, 333, 13, 26, 5, 3000},                 // a few units per slab
      {2, 200, 64, 128, 16, 5000},               // one unit exceeds the budget: tiles
      {3, 130, 64, 128, 8, 100},                 // below one row: tiles of one row
      {40, 65, 64, 128, 8, kSparseSlabFloats},   // many sequences, several groups
      {2, 1000, 1, 1, 3, kSparseSlabFloats},     // units of one row
      {1, 70000, 64, 128, 64, kSparseSlabFloats},
  };
  for (const Case& k : cases)
    for (int64_t cap : kCaps) {
      const SparsePlan plan = sparse_plan(k.S, k.n, k.unit, k.max_keys, k.dh, k.budget);
      INFO("S=" << k.S << " N=" << k.n << " unit=" << k.unit << " keys=" << k.max_keys
                << " dh=" << k.dh << " budget=" << k.budget << ": group " << plan.group << " rows "
                << plan.rows << " units " << plan.units << " cap " << cap);
      REQUIRE(plan.group >= 1);
      REQUIRE(plan.rows >= 1);
      REQUIRE(plan.units >= 1);
      CHECK(sparse_plan_floats(plan, k.dh) <=
            std::max(k.budget, k.dh * k.max_keys + k.max_keys + 1));
      const bool tiled = plan.rows < plan.unit;
      if (tiled) CHECK(plan.units == 1);
      std::vector<int> rows(size_t(k.S * k.n), 0);
      const bool walk_items = k.S * k.n <= 5000;
      int64_t empty = 0;
      for (int64_t x = 0; x < sparse_slabs(plan, k.S, k.n); ++x) {
        const SparseSlab slab = sparse_slab(plan, k.S, k.n, x);
        REQUIRE(slab.groups >= 1);
        REQUIRE(slab.groups <= plan.group);
        REQUIRE(slab.rows <= plan.rows);
        REQUIRE(slab.units <= plan.units);
        if (slab.rows == 0) {  // only a tile past the end of the last, partial unit
          REQUIRE(tiled);
          REQUIRE(slab.r0 >= (ceil_div(k.n, k.unit) - 1) * k.unit);
          ++empty;
          continue;
        }
        if (!tiled) REQUIRE(slab.r0 % k.unit == 0);  // whole units
        for (int64_t g = 0; g < slab.groups; ++g)
          for (int64_t t = 0; t < slab.rows; ++t) ++rows[size_t((slab.s0 + g) * k.n + slab.r0 + t)];
        if (walk_items) check_sparse_slab_items(slab, plan, k.dh, cap);
      }
      require_exactly_once(rows, "rows");
      if (!tiled) CHECK(empty == 0);
    }
}

TEST_CASE("counting sort plan: chunks tile N, counters O(N + buckets)", "[cuda][tiling]") {
  for (int64_t n : std::vector<int64_t>{1, 7, 128, 333, 5000, 70000, int64_t(1) << 20})
    for (int64_t buckets : {2, 6, 64, 1000, 70000}) {
      const SortPlan sp = sort_plan(n, buckets);
      INFO("N=" << n << " buckets=" << buckets << ": len " << sp.len << " chunks " << sp.chunks);
      CHECK(sp.chunks >= 1);
      CHECK(sp.chunks <= kSortMaxChunks);
      CHECK(sp.len >= buckets);
      CHECK((sp.chunks - 1) * sp.len < n);  // no empty chunk
      CHECK(sp.chunks * sp.len >= n);
      CHECK(sp.chunks * buckets <= n + buckets);
    }
}

TEST_CASE("sinkhorn block sorting: every table entry once per group, every block's choice once",
          "[cuda][tiling]") {
  struct Case {
    int64_t S, nb, dh, budget;
  };
  const Case cases[] = {{1, 1, 8, kSinkhornGroupFloats},
                        {6, 6, 33, kSinkhornGroupFloats},
                        {7, 5, 3, 200},
                        {3, 40, 8, 1000},
                        {2, 129, 64, kSinkhornGroupFloats}};
  for (const Case& k : cases)
    for (int64_t cap : kCaps) {
      const int64_t G = sinkhorn_sort_group(k.S, k.nb, k.dh, k.budget), nb = k.nb, dh = k.dh;
      INFO("S=" << k.S << " blocks=" << nb << " dh=" << dh << " budget " << k.budget << ": group "
                << G << " cap " << cap);
      REQUIRE(G >= 1);
      CHECK((G == 1 || G * sinkhorn_sort_floats(nb, dh) <= k.budget));
      std::vector<int> sorted(size_t(k.S * nb), 0);
      for (int64_t s0 = 0; s0 < k.S; s0 += G) {
        const int64_t groups = std::min(G, k.S - s0);
        std::vector<int> qbar(size_t(G * nb * dh), 0), kbarT(qbar.size(), 0);
        for_each_thread_item(groups * nb * dh, kItemThreadsForTests, cap, [&](int64_t item) {
          const Item3 it = item3(item, nb, dh);  // SinkhornMeans
          ++qbar[size_t(item)];
          ++kbarT[size_t((it.i0 * dh + it.i2) * nb + it.i1)];
        });
        std::vector<int> x(size_t(G * nb * nb), 0), xt(x.size(), 0);
        for_each_thread_item(groups * nb * nb, kItemThreadsForTests, cap, [&](int64_t item) {
          const Item3 it = item3(item, nb, nb);  // SinkhornLogits
          ++x[size_t(item)];
          ++xt[size_t((it.i0 * nb + it.i2) * nb + it.i1)];
        });
        std::vector<int> steps(size_t(groups * nb), 0);
        for_each_thread_item(groups * nb, kItemThreadsForTests, cap, [&](int64_t item) {
          ++steps[size_t(item)];
          ++sorted[size_t((s0 + item / nb) * nb + item % nb)];  // SinkhornArgmax
        });
        qbar.resize(size_t(groups * nb * dh));  // a last, smaller group leaves the rest unused
        kbarT.resize(qbar.size());
        x.resize(size_t(groups * nb * nb));
        xt.resize(x.size());
        require_exactly_once(qbar, "mean queries");
        require_exactly_once(kbarT, "mean keys (transposed)");
        require_exactly_once(x, "block logits");
        require_exactly_once(xt, "block logits (transposed)");
        require_exactly_once(steps, "potentials");
      }
      require_exactly_once(sorted, "sorted blocks");
    }
  // item3 is the (i0, i1, i2) order with i2 fastest
  const Item3 it = item3((2 * 5 + 3) * 7 + 4, 5, 7);
  CHECK((it.i0 == 2 && it.i1 == 3 && it.i2 == 4));
}

namespace {
std::vector<float> normal_floats(std::mt19937& gen, int64_t n) {
  std::normal_distribution<float> nd;
  std::vector<float> v(size_t(n), 0.0f);
  for (float& x : v) x = nd(gen);
  return v;
}
}  // namespace

TEST_CASE("lsh_bucket and block_mean_scaled_column equal the CPU's row forms bit for bit",
          "[cuda][math]") {
  std::mt19937 gen(21);
  for (int dh : {1, 7, 64})
    for (int half : {1, 3, 16, 17, 70}) {  // lsh_buckets' lanes of 16 and row blocks of 4
      const auto x = normal_floats(gen, 9 * dh), rot = normal_floats(gen, int64_t(dh) * half);
      std::vector<int32_t> rows(9);
      math::lsh_buckets(x.data(), 9, dh, rot.data(), dh, half, rows.data());
      for (int p = 0; p < 9; ++p)
        CHECK(math::lsh_bucket(x.data() + p * dh, rot.data(), dh, half) == rows[size_t(p)]);
      const std::vector<float> zero(size_t(dh), 0.0f);  // all ties: the first positive bucket
      int32_t tie = -1;
      math::lsh_buckets(zero.data(), 1, dh, rot.data(), dh, half, &tie);
      CHECK(math::lsh_bucket(zero.data(), rot.data(), dh, half) == tie);
    }
  for (int64_t rows : {1, 5, 64})
    for (int64_t dh : {1, 33}) {
      const auto x = normal_floats(gen, rows * dh);
      std::vector<float> row(size_t(dh), 0.0f);
      math::block_mean_scaled(x.data(), rows, dh, 0.37f, row.data());
      for (int64_t c = 0; c < dh; ++c) {
        const float col = math::block_mean_scaled_column(x.data(), rows, dh, 0.37f, c);
        CHECK(std::memcmp(&col, &row[size_t(c)], sizeof col) == 0);
      }
    }
}

TEST_CASE("dot_transposed_at and lsan_local_add_channel equal the CPU's row forms bit for bit",
          "[cuda][math]") {
  std::mt19937 gen(22);
  for (int64_t nb : {1, 6, 33})
    for (int64_t dh : {1, 8, 65}) {
      const auto qbar = normal_floats(gen, nb * dh), kbar = normal_floats(gen, nb * dh);
      std::vector<float> qbarT(size_t(nb * dh), 0.0f), kbarT(size_t(nb * dh), 0.0f),
          row(size_t(nb), 0.0f), col(size_t(nb), 0.0f);
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t d = 0; d < dh; ++d) {
          qbarT[size_t(d * nb + b)] = qbar[size_t(b * dh + d)];
          kbarT[size_t(d * nb + b)] = kbar[size_t(b * dh + d)];
        }
      for (int64_t a = 0; a < nb; ++a) {
        math::dots_transposed(qbar.data() + a * dh, kbarT.data(), nb, dh, row.data());
        for (int64_t b = 0; b < nb; ++b) {
          const float x = math::dot_transposed_at(qbar.data() + a * dh, kbarT.data(), nb, dh, b);
          CHECK(std::memcmp(&x, &row[size_t(b)], sizeof x) == 0);
          // the CPU's column step computes X[a][b] as kbar_b . qbar_a: the same bits
          math::dots_transposed(kbar.data() + b * dh, qbarT.data(), nb, dh, col.data());
          CHECK(std::memcmp(&x, &col[size_t(a)], sizeof x) == 0);
        }
      }
    }
  for (int64_t L : {1, 3, 9})
    for (int64_t i : {0, 1, 5, 20}) {
      const int64_t dh = 7;
      const auto conv = normal_floats(gen, L * dh), v = normal_floats(gen, 21 * dh),
                 base = normal_floats(gen, dh);
      std::vector<float> row = base;
      math::lsan_local_add_row(conv.data(), v.data(), i, L, dh, row.data());
      for (int64_t c = 0; c < dh; ++c) {
        const float x =
            math::lsan_local_add_channel(conv.data(), v.data(), i, L, dh, c, base[size_t(c)]);
        CHECK(std::memcmp(&x, &row[size_t(c)], sizeof x) == 0);
      }
    }
}

TEST_CASE("the device counting sort is a stable sort by bucket", "[cuda][emulated]") {
  std::mt19937 gen(5);
  struct Case {
    int64_t lists, n, buckets;
  };
  const Case cases[] = {{1, 1, 2},     {3, 7, 2},     {2, 333, 6},
                        {5, 1000, 16}, {2, 5000, 80}, {1, 3000, 3000}};
  for (const Case& k : cases)
    for (int pattern = 0; pattern < 4; ++pattern)  // random, all equal, descending, ascending
      for (bool reverse : {false, true}) {
        INFO("lists=" << k.lists << " N=" << k.n << " buckets=" << k.buckets << " pattern "
                      << pattern << (reverse ? " reversed" : ""));
        std::vector<int32_t> bucket(size_t(k.lists * k.n), 0);
        std::uniform_int_distribution<int32_t> ud(0, int32_t(k.buckets - 1));
        for (size_t x = 0; x < bucket.size(); ++x) {
          const int64_t i = int64_t(x) % k.n;
          bucket[x] = pattern == 0   ? ud(gen)
                      : pattern == 1 ? int32_t(k.buckets - 1)
                      : pattern == 2 ? int32_t((k.n - 1 - i) * k.buckets / k.n)
                                     : int32_t(i * k.buckets / k.n);
        }
        const SortPlan sp = sort_plan(k.n, k.buckets);
        const int32_t guard = -12345;
        std::vector<int32_t> counts(size_t(k.lists * sp.chunks * k.buckets) + 64, guard);
        std::vector<int32_t> starts(size_t(k.lists * k.buckets) + 64, guard);
        std::vector<int32_t> order(size_t(k.lists * k.n) + 64, guard);
        HostLauncher l;
        l.reverse = reverse;
        counting_sort_lists(l, k.lists, k.n, k.buckets, sp, bucket.data(), counts.data(),
                            starts.data(), order.data());
        for (const auto* v : {&counts, &starts, &order})
          CHECK(std::all_of(v->end() - 64, v->end(), [&](int32_t x) { return x == guard; }));
        for (int64_t list = 0; list < k.lists; ++list) {
          std::vector<int32_t> want(size_t(k.n), 0);
          for (int64_t i = 0; i < k.n; ++i) want[size_t(i)] = int32_t(i);
          const int32_t* b = bucket.data() + list * k.n;
          std::stable_sort(want.begin(), want.end(),
                           [&](int32_t x, int32_t y) { return b[x] < b[y]; });
          REQUIRE(std::equal(want.begin(), want.end(), order.begin() + list * k.n));
        }
      }
}

TEST_CASE("the method parameters are read by one shape function per method", "[cuda][registry]") {
  Problem p;
  set_axis(p, "bucket_size", 17);
  set_axis(p, "n_hashes", 3);
  set_axis(p, "seed", 99);
  set_axis(p, "block", 5);
  set_axis(p, "conv_width", 4);
  const ReformerShape r = reformer_shape(p);
  CHECK((r.bucket_size == 17 && r.n_hashes == 3 && r.seed == 99));
  CHECK(sinkhorn_shape(p).block == 5);
  CHECK(lsan_shape(p).conv_width == 4);
}

TEST_CASE("every cpu kernel has a cuda version in a CUDA build", "[cuda][registry]") {
  if (!build_info::cuda_backend) {
    SUCCEED("no CUDA backend in this build");
    return;
  }
  int cpu_kernels = 0;
  for (const Kernel* k : Registry::instance().kernels()) {
    if (k->info().backend != Backend::cpu) continue;
    ++cpu_kernels;
    INFO(k->info().name);
    CHECK(Registry::instance().find(k->info().name, Backend::cuda) != nullptr);
  }
  CHECK(cpu_kernels >= 14);
}

namespace {

// The CPU twin's sorted blocks of sequence s (math::block_mean_scaled and
// math::sinkhorn_sorted_blocks, as kernels/cpu/sparse.cpp calls them).
std::vector<int32_t> cpu_sorted_blocks(const Problem& p, const HostInputs& in, int64_t s) {
  const math::SinkhornDims d = math::sinkhorn_dims(p.seq_len, sinkhorn_shape(p).block);
  const int64_t nb = d.blocks, dh = p.head_dim;
  std::vector<float> qbar(size_t(nb * dh), 0.0f), kbar(qbar.size()), qbarT(qbar.size()),
      kbarT(qbar.size());
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t at = (s * p.seq_len + b * d.block) * dh,
                  rows = math::unit_size(b, d.block, p.seq_len);
    math::block_mean_scaled(in.q.data() + at, rows, dh, math::sinkhorn_query_factor(dh),
                            qbar.data() + b * dh);
    math::block_mean_scaled(in.k.data() + at, rows, dh, 1.0f, kbar.data() + b * dh);
    for (int64_t c = 0; c < dh; ++c) {
      qbarT[size_t(c * nb + b)] = qbar[size_t(b * dh + c)];
      kbarT[size_t(c * nb + b)] = kbar[size_t(b * dh + c)];
    }
  }
  std::vector<float> u(size_t(nb), 0.0f), v(size_t(nb), 0.0f), row(size_t(nb), 0.0f);
  std::vector<unsigned char> allowed(size_t(nb), 0);
  std::vector<int32_t> sorted(size_t(nb), 0);
  math::sinkhorn_sorted_blocks(qbar.data(), kbar.data(), qbarT.data(), kbarT.data(), nb, dh,
                               p.causal, u.data(), v.data(), row.data(), allowed.data(),
                               sorted.data());
  return sorted;
}

}  // namespace

TEST_CASE("sinkhorn's device block sorting picks the CPU twin's blocks", "[cuda][emulated]") {
  struct Case {
    int64_t b, h, n, dh, block, sort_budget;
  };
  const Case cases[] = {{2, 3, 1, 8, 64, kSinkhornGroupFloats},
                        {2, 3, 333, 33, 64, kSinkhornGroupFloats},
                        {1, 2, 200, 8, 7, kSinkhornGroupFloats},
                        {3, 3, 100, 5, 9, 300},
                        {2, 2, 500, 16, 1, kSinkhornGroupFloats}};
  uint64_t seed = 2100;
  int64_t moved = 0;  // blocks whose sorted block is another block: the choice is exercised
  for (bool causal : {true, false})
    for (const Case& k : cases)
      for (bool reverse : {false, true}) {
        Problem p = shaped("sinkhorn", k.b, k.h, k.n, k.dh, causal, ++seed);
        set_axis(p, "block", double(k.block));
        const SinkhornPlan plan =
            sinkhorn_plan(p, sinkhorn_shape(p), kSparseSlabFloats, k.sort_budget);
        INFO(describe(p, {"block"}) << ": sort group " << plan.sort_group);
        if (k.sort_budget == 300) REQUIRE(plan.sort_group < p.sequences());  // several groups
        const HostInputs in = make_inputs(p, kInputQKV, p.seed);
        GuardedBuffer scratch(sinkhorn_workspace(p, plan).scratch_bytes);
        const SinkhornScratch sc = sinkhorn_carve(p, plan, scratch.data());
        HostLauncher l;
        l.reverse = reverse;
        for (int64_t s0 = 0; s0 < p.sequences(); s0 += plan.sort_group)
          sinkhorn_sort_blocks(l, p, plan, in.view(), s0,
                               std::min(plan.sort_group, p.sequences() - s0), sc);
        CHECK(scratch.intact());
        for (int64_t s = 0; s < p.sequences(); ++s) {
          const std::vector<int32_t> want = cpu_sorted_blocks(p, in, s);
          const int32_t* got = sc.sorted + s * plan.d.blocks;
          REQUIRE(std::equal(want.begin(), want.end(), got));
          for (int64_t a = 0; a < plan.d.blocks; ++a) moved += got[a] >= 0 && got[a] != a;
        }
      }
  CHECK(moved > 100);
}

TEST_CASE("reformer_lsh's CUDA pipeline, run on the CPU, matches the CPU twin",
          "[cuda][emulated]") {
  double worst = 0;
  EmulatedErrors errors;
  uint64_t seed = 2200;
  struct Case {
    int64_t b, h, n, dh, bucket_size, n_hashes, budget;
  };
  const Case cases[] = {
      {2, 3, 1, 8, 64, 8, kSparseSlabFloats},
      {2, 3, 7, 33, 64, 8, kSparseSlabFloats},
      {2, 3, 130, 8, 64, 8, kSparseSlabFloats},
      {1, 2, 333, 33, 64, 2, kSparseSlabFloats},
      {1, 2, 333, 16, 13, 3, kSparseSlabFloats},    // 26 buckets, a ragged last chunk
      {1, 2, 100, 8, 1, 2, kSparseSlabFloats},      // chunks of one slot
      {1, 2, 200, 16, 1000, 2, kSparseSlabFloats},  // one chunk: shared-QK attention
      {2, 2, 333, 8, 64, 3, 30000},                 // several slabs per round
      {1, 1, 200, 8, 64, 2, 5000},                  // tiles of one chunk
      {16, 4, 9, 5, 4, 2, kSparseSlabFloats},       // many sequences, odd dh
  };
  for (bool causal : {true, false})
    for (const Case& k : cases) {
      Problem p = shaped("reformer_lsh", k.b, k.h, k.n, k.dh, causal, ++seed);
      set_axis(p, "bucket_size", double(k.bucket_size));
      set_axis(p, "n_hashes", double(k.n_hashes));
      const ReformerShape sh = reformer_shape(p);
      const ReformerPlan plan = reformer_plan(p, sh, k.budget);
      INFO(describe(p, {"bucket_size", "n_hashes"})
           << " budget " << k.budget << ": slabs "
           << sparse_slabs(plan.attend, p.sequences(), p.seq_len));
      if (k.budget < kSparseSlabFloats)
        REQUIRE(sparse_slabs(plan.attend, p.sequences(), p.seq_len) >= 3);
      errors.keep_worst(check_emulated(
          "reformer_lsh", p, reformer_workspace(p, sh, plan),
          [&](bool rev, const Inputs& in, void* prepared, void* scratch, float* out) {
            HostLauncher l;
            l.reverse = rev;
            reformer_prepare(l, p, sh, prepared);
            reformer_run(l, p, sh, plan, in, prepared, scratch, out);
          },
          worst));
    }
  std::printf("emulated cuda reformer_lsh: worst rel-L2 vs cpu twin %.3e, vs float64 %.3e\n",
              errors.cpu, errors.ref);
}

TEST_CASE("sinkhorn's CUDA pipeline, run on the CPU, matches the CPU twin", "[cuda][emulated]") {
  double worst = 0;
  EmulatedErrors errors;
  uint64_t seed = 2300;
  struct Case {
    int64_t b, h, n, dh, block, budget, sort_budget;
  };
  const Case cases[] = {
      {2, 3, 1, 8, 64, kSparseSlabFloats, kSinkhornGroupFloats},
      {2, 3, 7, 33, 64, kSparseSlabFloats, kSinkhornGroupFloats},
      {2, 3, 333, 33, 64, kSparseSlabFloats, kSinkhornGroupFloats},
      {1, 2, 200, 8, 7, kSparseSlabFloats, kSinkhornGroupFloats},     // a ragged last block
      {1, 2, 100, 8, 1, kSparseSlabFloats, kSinkhornGroupFloats},     // blocks of one position
      {1, 2, 90, 16, 5000, kSparseSlabFloats, kSinkhornGroupFloats},  // one block: vanilla
      {2, 2, 333, 8, 64, 30000, 300},                  // several slabs, several sorting groups
      {1, 1, 200, 8, 64, 5000, kSinkhornGroupFloats},  // tiles of one block
      {16, 4, 9, 5, 4, kSparseSlabFloats, kSinkhornGroupFloats},
  };
  for (bool causal : {true, false})
    for (const Case& k : cases) {
      Problem p = shaped("sinkhorn", k.b, k.h, k.n, k.dh, causal, ++seed);
      set_axis(p, "block", double(k.block));
      const SinkhornPlan plan = sinkhorn_plan(p, sinkhorn_shape(p), k.budget, k.sort_budget);
      INFO(describe(p, {"block"}) << " budget " << k.budget << ": slabs "
                                  << sparse_slabs(plan.attend, p.sequences(), p.seq_len)
                                  << ", sort group " << plan.sort_group);
      if (k.budget < kSparseSlabFloats)
        REQUIRE(sparse_slabs(plan.attend, p.sequences(), p.seq_len) >= 3);
      if (k.sort_budget < kSinkhornGroupFloats) REQUIRE(plan.sort_group < p.sequences());
      errors.keep_worst(check_emulated(
          "sinkhorn", p, sinkhorn_workspace(p, plan),
          [&](bool rev, const Inputs& in, void*, void* scratch, float* out) {
            HostLauncher l;
            l.reverse = rev;
            sinkhorn_run(l, p, plan, in, scratch, out);
          },
          worst));
    }
  std::printf("emulated cuda sinkhorn: worst rel-L2 vs cpu twin %.3e, vs float64 %.3e\n",
              errors.cpu, errors.ref);
}

TEST_CASE("lsan_twin's CUDA pipeline, run on the CPU, matches the CPU twin", "[cuda][emulated]") {
  double worst = 0;
  EmulatedErrors errors;
  uint64_t seed = 2400;
  struct Case {
    int64_t b, h, n, dh, conv_width;
  };
  const Case cases[] = {{2, 3, 1, 8, 3},   {2, 3, 7, 33, 3},    {1, 2, 130, 16, 1},
                        {1, 2, 333, 8, 7}, {2, 2, 65, 100, 50}, {3, 1, 9, 1, 2}};
  for (bool causal : {true, false})
    for (const Case& k : cases) {
      Problem p = shaped("lsan_twin", k.b, k.h, k.n, k.dh, causal, ++seed);
      set_axis(p, "conv_width", double(k.conv_width));
      INFO(describe(p, {"conv_width"}));
      errors.keep_worst(check_emulated(
          "lsan_twin", p, WorkspaceSize{},
          [&](bool rev, const Inputs& in, void*, void*, float* out) {
            HostLauncher l;
            l.reverse = rev;
            lsan_twin_run(l, p, lsan_shape(p), in, out);
          },
          worst));
    }
  std::printf("emulated cuda lsan_twin: worst rel-L2 vs cpu twin %.3e, vs float64 %.3e\n",
              errors.cpu, errors.ref);
}

}  // namespace attnbench::gpu
