// What one training image's augmentation is given: the recipe's parameters (TrainParams, mirrored by a
// ctypes.Structure in visionzoo/ops/images.py) and the uniform draws in [0, 1) that decide its random
// choices (Draws: offsets into the per-image array of kDrawsPerImage doubles).
#pragma once

#include <cstdint>

namespace vzimg {

struct TrainParams {
  double scale_lo, scale_hi;  // RandomResizedCrop's area fraction range
  double ratio_lo, ratio_hi;  // ... and width / height range
  int32_t out_h, out_w;       // output size
  double hflip_p, vflip_p;    // flip probabilities
  double jitter_lo[3];        // brightness, contrast, saturation factor ranges [lo, hi];
  double jitter_hi[3];        // lo == hi == 1 switches one off
  float mean[3], std[3];      // per channel, 0-255 units
};

enum Adjust : int { kBrightness = 0, kContrast = 1, kSaturation = 2, kHue = 3 };

constexpr int kMaxAttempts = 10;  // box draws before the centred fallback (MindSpore's)
// Per image: 4 per box attempt (scale, log-ratio, x, y), 2 flips, 4 keys of the colour adjustments'
// random order (MindSpore shuffles brightness, contrast, saturation and hue), 3 factors.
constexpr int kDrawBox = 0;
constexpr int kDrawFlips = kDrawBox + 4 * kMaxAttempts;
constexpr int kDrawOrder = kDrawFlips + 2;
constexpr int kDrawFactors = kDrawOrder + 4;
constexpr int kDrawsPerImage = kDrawFactors + 3;

struct Box {
  int32_t x, y, w, h;
};

}  // namespace vzimg
