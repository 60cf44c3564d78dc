// Counter-based generator for the hashed attentions: see attnbench/sparse_random.hpp.
#include "attnbench/sparse_random.hpp"

#include "attnbench/counter_rng.hpp"

namespace attnbench::sparse_random {
namespace {
// Domain separation: the rotations never coincide with another consumer of the same seed
// (the harness's seeded inputs use their own generator and streams).
constexpr uint64_t kDomainReformer = 0x7265666f726d6572ULL;  // "reformer"
}  // namespace

void reformer_rotations(uint64_t seed, int64_t n_hashes, int64_t dh, int64_t half_buckets,
                        float* out) {
  const int64_t per_round = dh * half_buckets;
  for (int64_t r = 0; r < n_hashes; ++r)
    for (int64_t x = 0; x < per_round; ++x)
      out[r * per_round + x] =
          float(rng::reformer_normal(seed, kDomainReformer ^ uint64_t(r), uint64_t(x)));
}

}  // namespace attnbench::sparse_random
