// A convolution's direction and geometry: what every formulation is built for, the key of the built
// formulations and of the saved choices. Plain C++ (no oneDNN).
#pragma once

#include <cstdint>
#include <tuple>

namespace vzconv {

// kInferenceBias / kInferenceBiasRelu: eval-mode forward with a per-channel bias added (and a ReLU
// applied) inside the call: the fused Conv -> BatchNorm -> ReLU, BatchNorm folded into the weights and
// bias by the caller (visionzoo/ops/conv.py). The values are part of the saved choices' rows.
enum Direction : int {
  kForward = 0,
  kInference = 1,
  kBackwardData = 2,
  kBackwardWeights = 3,
  kInferenceBias = 4,
  kInferenceBiasRelu = 5,
};

inline bool IsInference(int d) { return d == kInference || d == kInferenceBias || d == kInferenceBiasRelu; }
inline bool HasBias(int d) { return d == kInferenceBias || d == kInferenceBiasRelu; }

// The forward convolution's shapes: x [N, C, H, W] * w [O, C, KH, KW] -> y [N, O, OH, OW], strides and
// padding (top, bottom, left, right), whichever direction runs.
struct Geometry {
  int direction = kForward;
  int64_t N = 0, C = 0, H = 0, W = 0, O = 0, KH = 0, KW = 0, OH = 0, OW = 0;
  int sh = 1, sw = 1, pt = 0, pb = 0, pl = 0, pr = 0;

  // A saved choice's row: these 16 numbers in this order, then the formulation (kRowLength in all).
  static constexpr int kFields = 16;
  static constexpr int kRowLength = kFields + 1;

  // x, w, y: the three 4-D shapes; p: sh, sw, pt, pb, pl, pr.
  static Geometry FromShapes(int direction, const int64_t *x, const int64_t *w, const int64_t *y,
                             const int32_t *p) {
    return Geometry{direction, x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3],
                    p[0],      p[1], p[2], p[3], p[4], p[5]};
  }
  static Geometry FromRow(const int64_t *r) {
    return Geometry{int(r[0]), r[1],      r[2],      r[3],      r[4],      r[5],      r[6],      r[7],
                    r[8],      r[9],      int(r[10]), int(r[11]), int(r[12]), int(r[13]), int(r[14]), int(r[15])};
  }
  void ToRow(int64_t *r) const {
    const int64_t values[kFields] = {direction, N, C, H, W, O, KH, KW, OH, OW, sh, sw, pt, pb, pl, pr};
    for (int i = 0; i < kFields; ++i) r[i] = values[i];
  }
  // The same convolution on a slice of `images` images (the batch split's primitives).
  Geometry WithBatch(int64_t images) const {
    Geometry g = *this;
    g.N = images;
    return g;
  }
  // Channels the convolution sums over per output: the input's, or for the data gradient the output's.
  int64_t ReducedChannels() const { return direction == kBackwardData ? O : C; }

  auto Tied() const { return std::tie(direction, N, C, H, W, O, KH, KW, OH, OW, sh, sw, pt, pb, pl, pr); }
  bool operator<(const Geometry &other) const { return Tied() < other.Tied(); }
  bool operator==(const Geometry &other) const { return Tied() == other.Tied(); }
};

}  // namespace vzconv
