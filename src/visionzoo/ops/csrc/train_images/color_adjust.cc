// Grey is OpenCV 4's RGB2GRAY for 8-bit pixels: (9798 R + 19235 G + 3735 B + 2^14) >> 15. Contrast blends
// with the image's mean grey rounded to an integer (OpenCV adds the mean to an 8-bit image); saturation
// blends with each pixel's grey.
#include "color_adjust.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "params.h"
#include "simd.h"

namespace vzimg {
namespace {

inline int32_t Grey(int32_t r, int32_t g, int32_t b) { return (9798 * r + 19235 * g + 3735 * b + (1 << 14)) >> 15; }

// OpenCV's addWeighted(base, beta, image, alpha, 0) for one value, as its vectorised code computes it:
// fma(base, beta, value * alpha) in float. The sum is exact in double (products of 8-bit integers and
// floats), so rounding it to float once is the fused multiply-add's rounding, on any CPU.
inline float Blend(float base, float beta, float value, float alpha) {
  return static_cast<float>(static_cast<double>(base) * beta + static_cast<double>(value * alpha));
}

// values[i] = RoundToByte(Blend(base, beta, values[i], alpha)) through a 256-entry table, eight values
// a step (one 8-byte load and store).
void Affine(uint8_t *values, int64_t n, float alpha, float base, float beta) {
  uint8_t table[256];
  for (int v = 0; v < 256; ++v) table[v] = RoundToByte(Blend(base, beta, static_cast<float>(v), alpha));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, values + i, 8);
    uint64_t mapped = 0;
    for (int k = 0; k < 8; ++k) mapped |= static_cast<uint64_t>(table[(word >> (8 * k)) & 0xFF]) << (8 * k);
    std::memcpy(values + i, &mapped, 8);
  }
  for (; i < n; ++i) values[i] = table[values[i]];
}

// value * alpha rounded: Blend with a zero base, in float (vectorised).
VZ_CLONES void Scale(uint8_t *values, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) values[i] = RoundToByte(static_cast<float>(values[i]) * alpha);
}

VZ_CLONES int64_t GreySum(const uint8_t *r, const uint8_t *g, const uint8_t *b, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += Grey(r[i], g[i], b[i]);
  return sum;
}

// Blend as a float fused multiply-add (the same number: one rounding of the exact sum), vectorised.
VZ_CLONES void BlendWithGrey(uint8_t *r, uint8_t *g, uint8_t *b, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) {
    const auto grey = static_cast<float>(Grey(r[i], g[i], b[i]));
    r[i] = RoundToByte(std::fma(grey, beta, static_cast<float>(r[i]) * alpha));
    g[i] = RoundToByte(std::fma(grey, beta, static_cast<float>(g[i]) * alpha));
    b[i] = RoundToByte(std::fma(grey, beta, static_cast<float>(b[i]) * alpha));
  }
}

float Complement(float alpha) { return static_cast<float>(1.0 - static_cast<double>(alpha)); }

}  // namespace

// OpenCV's convertTo(alpha): value * alpha rounded (a blend with a zero base).
void AdjustBrightness(uint8_t *planes, int64_t n, float alpha) { Scale(planes, 3 * n, alpha); }

void AdjustContrast(uint8_t *planes, int64_t n, float alpha) {
  const int64_t sum = GreySum(planes, planes + n, planes + 2 * n, n);
  const float mean = static_cast<float>(std::nearbyint(static_cast<double>(sum) / static_cast<double>(n)));
  Affine(planes, 3 * n, alpha, mean, Complement(alpha));
}

void AdjustSaturation(uint8_t *planes, int64_t n, float alpha) {
  BlendWithGrey(planes, planes + n, planes + 2 * n, n, alpha, Complement(alpha));
}

void RandomColorAdjust(uint8_t *planes, int64_t n, const double *draws, const double *lo, const double *hi) {
  // a uniformly random order of the four adjustments: sort their keys
  std::array<int, 4> order = {kBrightness, kContrast, kSaturation, kHue};
  const double *keys = draws + kDrawOrder;
  std::sort(order.begin(), order.end(), [keys](int a, int b) { return keys[a] < keys[b]; });
  for (int which : order) {
    if (which == kHue || (lo[which] == 1.0 && hi[which] == 1.0)) continue;
    const auto alpha = static_cast<float>(lo[which] + draws[kDrawFactors + which] * (hi[which] - lo[which]));
    if (which == kBrightness) AdjustBrightness(planes, n, alpha);
    if (which == kContrast) AdjustContrast(planes, n, alpha);
    if (which == kSaturation) AdjustSaturation(planes, n, alpha);
  }
}

}  // namespace vzimg
