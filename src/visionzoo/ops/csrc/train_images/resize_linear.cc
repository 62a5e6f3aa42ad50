// Separable: each source row a destination row needs is resized horizontally once (32-bit sums scaled
// by 2^11), then two such rows are blended vertically and the result split into the output planes.
#include "resize_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "simd.h"

namespace vzimg {
namespace {

constexpr int kBits = 11;
constexpr int kScale = 1 << kBits;

struct Taps {
  std::vector<int32_t> i0, i1, w0, w1;  // the two neighbours' indices (equal at the edges) and weights
};

// For every destination index: OpenCV's source position (d + 0.5) * scale - 0.5 (scale as OpenCV
// computes it, 1 / (dst / src)). Columns outside the image take the edge pixel with weight 1
// (clamp_weights); rows keep their weights and read the edge row twice, as cv::resize does.
Taps MakeTaps(int src, int dst, bool clamp_weights) {
  Taps t{std::vector<int32_t>(dst), std::vector<int32_t>(dst), std::vector<int32_t>(dst), std::vector<int32_t>(dst)};
  const double scale = 1. / (static_cast<double>(dst) / src);
  for (int d = 0; d < dst; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int i = static_cast<int>(std::floor(f));
    f -= static_cast<float>(i);
    if (clamp_weights && i < 0) i = 0, f = 0.f;
    if (clamp_weights && i >= src - 1) i = src - 1, f = 0.f;
    t.i0[d] = std::clamp(i, 0, src - 1), t.i1[d] = std::clamp(i + 1, 0, src - 1);
    t.w0[d] = static_cast<int32_t>(std::lrint((1.f - f) * kScale));
    t.w1[d] = static_cast<int32_t>(std::lrint(f * kScale));
  }
  return t;
}

// One interleaved source row -> dw interleaved RGB sums.
void Horizontal(const uint8_t *row, const Taps &xs, int dw, int32_t *out) {
  const int32_t *i0 = xs.i0.data(), *i1 = xs.i1.data(), *w0 = xs.w0.data(), *w1 = xs.w1.data();
  for (int d = 0; d < dw; ++d) {
    const uint8_t *p = row + i0[d] * 3, *q = row + i1[d] * 3;
    out[3 * d] = p[0] * w0[d] + q[0] * w1[d];
    out[3 * d + 1] = p[1] * w0[d] + q[1] * w1[d];
    out[3 * d + 2] = p[2] * w0[d] + q[2] * w1[d];
  }
}

// OpenCV's vectorised blend: high halves of 16-bit products of the weights and the sums / 16, rounded.
VZ_CLONES void Vertical(const int32_t *a, const int32_t *b, int n, int32_t w0, int32_t w1, uint8_t *out) {
  for (int i = 0; i < n; ++i) {
    const int32_t v = (((w0 * (a[i] >> 4)) >> 16) + ((w1 * (b[i] >> 4)) >> 16) + 2) >> 2;
    out[i] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

// One interleaved RGB row -> the same row of the three planes.
void Deinterleave(const uint8_t *rgb, int w, uint8_t *r, uint8_t *g, uint8_t *b) {
  for (int x = 0; x < w; ++x) r[x] = rgb[3 * x], g[x] = rgb[3 * x + 1], b[x] = rgb[3 * x + 2];
}

}  // namespace

void ResizeLinear(const uint8_t *src, int sh, int sw, int src_stride, uint8_t *dst, int dh, int dw) {
  const Taps xs = MakeTaps(sw, dw, true), ys = MakeTaps(sh, dh, false);
  const size_t plane = static_cast<size_t>(dh) * dw;
  const int n = 3 * dw;
  std::vector<int32_t> rows(2 * static_cast<size_t>(n));
  std::vector<uint8_t> line(n);
  int32_t *slot[2] = {rows.data(), rows.data() + n};
  int held[2] = {-1, -1};  // the source row in each slot
  // The slot holding source row `want`, resizing it into the slot that does not hold `keep` if needed.
  auto fetch = [&](int want, int keep) -> const int32_t * {
    for (int s = 0; s < 2; ++s)
      if (held[s] == want) return slot[s];
    const int s = held[0] == keep ? 1 : 0;
    Horizontal(src + static_cast<size_t>(want) * src_stride, xs, dw, slot[s]);
    held[s] = want;
    return slot[s];
  };
  for (int d = 0; d < dh; ++d) {
    const int32_t *a = fetch(ys.i0[d], ys.i1[d]);
    const int32_t *b = fetch(ys.i1[d], ys.i0[d]);
    Vertical(a, b, n, ys.w0[d], ys.w1[d], line.data());
    const size_t at = static_cast<size_t>(d) * dw;
    Deinterleave(line.data(), dw, dst + at, dst + plane + at, dst + 2 * plane + at);
  }
}

}  // namespace vzimg
