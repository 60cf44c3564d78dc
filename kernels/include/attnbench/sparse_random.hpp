// Seeded, counter-based random numbers for the hashed attentions (kernels.md section 4):
// Reformer's random rotations. The float32 kernel (prepare) and its float64 reference draw
// the same rotation from the same call, so both hash every vector identically.
// Counter-based: a value is a pure function of (seed, stream, index), independent of thread
// count and generation order. splitmix64 mixing, Box-Muller normals, both in double.
#pragma once

#include <cstdint>

namespace attnbench::sparse_random {

// The splitmix64 finalizer of x + golden gamma (a bijection on 64 bits).
uint64_t splitmix64(uint64_t x);
// Uniform in [0, 1) with 53 random bits.
double uniform(uint64_t seed, uint64_t stream, uint64_t index);
// Standard normal (Box-Muller on two uniforms of the same counter).
double normal(uint64_t seed, uint64_t stream, uint64_t index);

// Reformer's rotations for every hash round: out[r][d][u] (n_hashes x dh x half_buckets,
// row-major), independent standard normals rounded to float. Round r uses its own stream, so
// a round's rotation depends only on (seed, r, dh, half_buckets); every batch and head shares
// it, as in Reformer.
void reformer_rotations(uint64_t seed, int64_t n_hashes, int64_t dh, int64_t half_buckets,
                        float* out);

}  // namespace attnbench::sparse_random
