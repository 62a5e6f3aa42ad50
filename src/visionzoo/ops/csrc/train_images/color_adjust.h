// MindSpore's AdjustBrightness, AdjustContrast and AdjustSaturation on planar uint8 RGB images (three
// planes of n pixels), with the arithmetic of the OpenCV calls they make (float blend, round to
// nearest even, saturate).
#pragma once

#include <cstdint>

namespace vzimg {

// planes: R, G and B planes of n pixels each, adjusted in place by factor alpha.
void AdjustBrightness(uint8_t *planes, int64_t n, float alpha);
void AdjustContrast(uint8_t *planes, int64_t n, float alpha);
void AdjustSaturation(uint8_t *planes, int64_t n, float alpha);

// RandomColorAdjust: brightness, contrast and saturation in the order the draws at kDrawOrder give
// (hue is never adjusted here), each factor lo + u * (hi - lo), skipped where lo == hi == 1.
void RandomColorAdjust(uint8_t *planes, int64_t n, const double *draws, const double *lo, const double *hi);

}  // namespace vzimg
