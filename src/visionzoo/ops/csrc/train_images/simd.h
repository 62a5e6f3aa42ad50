// VZ_CLONES: compile a hot loop twice on x86-64, for the baseline and for x86-64-v3 (AVX2 and FMA), and
// pick one per CPU at load time (GCC/Clang target_clones): the library stays portable yet runs AVX2
// where it can. The library is compiled with -ffp-contract=off (visionzoo/ops/images.py), so no
// multiply-add is fused unless written as std::fma: both copies compute the same numbers.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(VZ_NO_CLONES)
#define VZ_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VZ_CLONES
#endif

#include <cstdint>

namespace vzimg {

// To nearest, ties to even (OpenCV's cvRound), saturated to 0..255; written so that loops vectorise.
// Adding and subtracting 1.5 * 2^23 rounds any |v| < 2^22 to an integer in the default rounding mode.
inline uint8_t RoundToByte(float v) {
  constexpr float kRound = 12582912.f;
  float r = (v + kRound) - kRound;
  r = r < 0.f ? 0.f : r;
  r = r > 255.f ? 255.f : r;
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

}  // namespace vzimg
