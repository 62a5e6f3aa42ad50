// Bilinear resizing of uint8 RGB images with OpenCV's INTER_LINEAR conventions and arithmetic (what
// MindSpore's Resize runs): pixel centres at +0.5, edge pixels repeated, 11-bit fixed-point weights,
// the rounding of OpenCV's vectorised code. The same pixels as cv::resize.
#pragma once

#include <cstdint>

namespace vzimg {

// src: sh x sw x 3 (interleaved) with rows src_stride bytes apart; dst: 3 planes of dh x dw.
void ResizeLinear(const uint8_t *src, int sh, int sw, int src_stride, uint8_t *dst, int dh, int dw);

}  // namespace vzimg
