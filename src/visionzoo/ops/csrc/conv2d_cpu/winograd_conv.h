// The Winograd formulation: F(4x4, 3x3) or F(2x2, 3x3) (../winograd.h) for 3x3 stride-1 convolutions
// (padding up to 2) in every direction: 36 (or 16) multiply-adds per 4x4 (2x2) output tile and input
// channel instead of 144 (36), on the plain NCHW tensors (no reorders), with the bias and ReLU of the
// fused eval kinds applied in its output transform. It needs AVX2+FMA at least, and uses AVX-512 where
// the kernels' oneDNN instance does (the same ISA choice, a user's cap included).
#pragma once

#include <cstdint>

#include "../winograd.h"
#include "geometry.h"

namespace vzconv {

// g's Winograd plan (isa kNone where it does not apply: not 3x3 stride 1, a padding above 2, buffers past
// their bounds, or a CPU below AVX2). Backward data runs the forward plan of dy -> dx with the padding
// 2 - pad; the weight gradient has a plan of its own (winograd.h).
vzwino::Plan WinogradPlan(const Geometry &g);
// Runs plan p of `direction`: in0 the input (x, or dy for backward data; x for the weight gradient), in1
// the weights as the layer holds them (dy for the weight gradient), out the result; bias (and the ReLU)
// for the fused eval kinds.
bool RunWinograd(const vzwino::Plan &p, int direction, const float *in0, const float *in1, float *out,
                 const float *bias);
// Grows (and faults in) the scratch of every thread that will run p.
void TouchWinograd(const vzwino::Plan &p);
// The whole schedule's bound on its transformed input and products (bytes each), for geometries planned
// after the call (tests: the blocked schedule on small geometries); returns the previous one.
int64_t SetWinogradWholeBytes(int64_t bytes);

}  // namespace vzconv
