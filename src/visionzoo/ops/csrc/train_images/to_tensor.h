// The network's input from an augmented planar image: flips and (x - mean) / std in float32 in one pass
// (MindSpore's RandomHorizontalFlip, RandomVerticalFlip, HWC2CHW and Normalize; the same numbers).
#pragma once

#include <cstdint>

namespace vzimg {

// src: 3 planes of h x w uint8; dst: 3 x h x w float32.
void ToTensor(const uint8_t *src, int h, int w, bool hflip, bool vflip, const float *mean, const float *std,
              float *dst);

}  // namespace vzimg
