// Counter-based generator for the hashed attentions: see attnbench/sparse_random.hpp.
#include "attnbench/sparse_random.hpp"

#include <cmath>

namespace attnbench::sparse_random {
namespace {
// Domain separation: the rotations never coincide with another consumer of the same seed
// (the harness's seeded inputs use their own generator and streams).
constexpr uint64_t kDomainReformer = 0x7265666f726d6572ULL;  // "reformer"
}  // namespace

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t key = splitmix64(splitmix64(seed) ^ splitmix64(stream + 0x632be59bd9b4e019ULL));
  return double(splitmix64(key ^ splitmix64(index)) >> 11) * 0x1.0p-53;
}

double normal(uint64_t seed, uint64_t stream, uint64_t index) {
  const double u1 = uniform(seed, stream, 2 * index) + 0x1.0p-54;  // in (0, 1)
  const double u2 = uniform(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void reformer_rotations(uint64_t seed, int64_t n_hashes, int64_t dh, int64_t half_buckets,
                        float* out) {
  const int64_t per_round = dh * half_buckets;
  for (int64_t r = 0; r < n_hashes; ++r)
    for (int64_t x = 0; x < per_round; ++x)
      out[r * per_round + x] =
          float(normal(seed, kDomainReformer ^ uint64_t(r), uint64_t(x)));
}

}  // namespace attnbench::sparse_random
