// Seeded random rotations for the hashed attentions (docs/methods.md section 4): Reformer's. The
// float32 kernel (prepare) and its float64 reference draw the same rotation from the same
// call, so both hash every vector identically. The normals are counter_rng.hpp's (the
// `reformer` derivation): pure functions of (seed, stream, index).
#pragma once

#include <cstdint>

namespace attnbench::sparse_random {

// Reformer's rotations for every hash round: out[r][d][u] (n_hashes x dh x half_buckets,
// row-major), independent standard normals rounded to float. Round r uses its own stream, so
// a round's rotation depends only on (seed, r, dh, half_buckets); every batch and head shares
// it, as in Reformer.
void reformer_rotations(uint64_t seed, int64_t n_hashes, int64_t dh, int64_t half_buckets,
                        float* out);

}  // namespace attnbench::sparse_random
