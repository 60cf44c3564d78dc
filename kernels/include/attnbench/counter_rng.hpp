// The suite's one counter-based random number generator: every value is a pure function of
// (seed, stream, index), independent of thread count and generation order, so a float32
// kernel (in prepare) and its float64 reference draw exactly the same numbers. SplitMix64's
// finalizer mixes; uniforms take the top 53 bits; normals are Box-Muller on the uniforms of
// two consecutive counters (2 index, 2 index + 1).
//
// Three consumers derive the mixed key from (seed, stream, index) differently. Each
// derivation is frozen: changing one would change the harness's seeded inputs, Performer's
// projections or Reformer's rotations bit for bit (and with them every stored correctness
// figure). tests/test_counter_rng.cpp pins all three.
//   inputs     the harness's seeded inputs (harness/inputs.hpp counter_uniform/_normal)
//   performer  random_features.hpp, FAVOR+'s projections
//   reformer   sparse_random.hpp, Reformer's rotations
#pragma once

#include <cmath>
#include <cstdint>

namespace attnbench::rng {

// SplitMix64's finalizer of x + the golden gamma: a bijection on 64 bits.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// [0, 1) from the top 53 bits.
inline double unit_closed_open(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }
// (0, 1] from the top 53 bits (never 0: safe under log).
inline double unit_open_closed(uint64_t bits) { return double((bits >> 11) + 1) * 0x1.0p-53; }
// A standard normal from two uniforms, u1 in (0, 1].
inline double box_muller(double u1, double u2) {
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// ---- the three frozen key derivations -------------------------------------------------------

inline uint64_t inputs_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(seed ^ (stream * 0xd1b54a32d192ed03ULL)) ^ index);
}
inline uint64_t performer_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) + stream) ^ index);
}
inline uint64_t reformer_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t key =
      splitmix64(splitmix64(seed) ^ splitmix64(stream + 0x632be59bd9b4e019ULL));
  return splitmix64(key ^ splitmix64(index));
}

// ---- uniforms and normals of each ------------------------------------------------------------

// Inputs: uniform in [0, 1); normal with u1 moved off 0 by 2^-54.
inline double inputs_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return unit_closed_open(inputs_bits(seed, stream, index));
}
inline double inputs_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  return box_muller(inputs_uniform(seed, stream, 2 * index) + 0x1.0p-54,
                    inputs_uniform(seed, stream, 2 * index + 1));
}

// Performer: uniform in (0, 1].
inline double performer_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return unit_open_closed(performer_bits(seed, stream, index));
}
inline double performer_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  return box_muller(performer_uniform(seed, stream, 2 * index),
                    performer_uniform(seed, stream, 2 * index + 1));
}

// Reformer: uniform in [0, 1); normal with u1 moved off 0 by 2^-54.
inline double reformer_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return unit_closed_open(reformer_bits(seed, stream, index));
}
inline double reformer_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  return box_muller(reformer_uniform(seed, stream, 2 * index) + 0x1.0p-54,
                    reformer_uniform(seed, stream, 2 * index + 1));
}

}  // namespace attnbench::rng
