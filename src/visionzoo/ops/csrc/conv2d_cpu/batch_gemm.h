// The batched-GEMM weight gradient. oneDNN's GEMM formulation runs one GEMM per image, whose inner
// dimension is that image's output pixels: 4 or 16 on VGG's last layers at 32x32 input, far too few to
// run a GEMM near peak (0.08 s for 2.4 GFLOP there). Gathering many images first makes one GEMM with
// (images x OH*OW) inner products, as many images at a time as fit in the im2col limit (64 MiB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "geometry.h"

namespace vzconv {

// dw = the weight gradient of g from x and dy (plain layouts), on all threads.
bool BatchGemmBackwardWeights(const Geometry &g, const float *x, const float *dy, float *dw);
// Images per GEMM: as many as keep the im2col columns within the limit, at least one.
int64_t ImagesPerGemm(const Geometry &g);
// Bytes of the two buffers for one group of images: the im2col columns [C*KH*KW, images*OH*OW] and the
// transposed output gradient [O, images*OH*OW].
std::pair<size_t, size_t> BatchGemmBufferBytes(const Geometry &g);
// Grows (and faults in) the calling thread's buffers for g.
void TouchBatchGemm(const Geometry &g);
// The im2col limit (bytes; 1 = one image per GEMM); returns the previous one.
size_t SetMaxColumnBytes(size_t bytes);

}  // namespace vzconv
