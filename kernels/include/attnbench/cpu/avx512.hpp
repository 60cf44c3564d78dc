// The AVX-512 intrinsics header for the CPU kernels' SIMD code (linear_gemm.hpp,
// linear_simd.hpp), included only when the compiler targets AVX-512 (the kernels are also
// built with -march=x86-64-v2, where the callers use their portable paths).
// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused source of their masked
// builtins, which -Wmaybe-uninitialized reports at every inlined use (GCC bug 105593).
#pragma once

#if defined(__AVX512F__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
