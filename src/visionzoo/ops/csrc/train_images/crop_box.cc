// Up to kMaxAttempts tries: area fraction uniform in [scale_lo, scale_hi], aspect exp(uniform in
// [log ratio_lo, log ratio_hi]), width round(sqrt(area * aspect)), height round(width / aspect), each at
// least 1; the first box that fits is placed uniformly at an integer offset. Otherwise the whole image
// clamped to the ratio range, centred (MindSpore's fallback).
#include "crop_box.h"

#include <algorithm>
#include <cmath>

namespace vzimg {
namespace {

int UniformInt(double u, int n) {  // an integer in [0, n] from u in [0, 1)
  return std::min(n, static_cast<int>(u * (n + 1)));
}

}  // namespace

Box CropBox(int h, int w, const double *draws, const TrainParams &p) {
  const double area = static_cast<double>(h) * w;
  const double log_lo = std::log(p.ratio_lo), log_hi = std::log(p.ratio_hi);
  for (int i = 0; i < kMaxAttempts; ++i) {
    const double *u = draws + kDrawBox + 4 * i;
    const double scale = p.scale_lo + u[0] * (p.scale_hi - p.scale_lo);
    const double aspect = std::exp(log_lo + u[1] * (log_hi - log_lo));
    const int cw = std::max(1, static_cast<int>(std::round(std::sqrt(area * scale * aspect))));
    const int ch = std::max(1, static_cast<int>(std::round(cw / aspect)));
    if (cw <= w && ch <= h) return Box{UniformInt(u[2], w - cw), UniformInt(u[3], h - ch), cw, ch};
  }
  const double img_aspect = static_cast<double>(w) / h;
  int cw = w, ch = h;
  if (img_aspect < p.ratio_lo) {
    ch = static_cast<int>(std::round(w / p.ratio_lo));
  } else if (img_aspect > p.ratio_hi) {
    cw = static_cast<int>(std::round(h * p.ratio_hi));
  }
  cw = std::max(cw, 1);
  ch = std::max(ch, 1);
  return Box{static_cast<int>(std::round((w - cw) / 2.0)), static_cast<int>(std::round((h - ch) / 2.0)), cw, ch};
}

}  // namespace vzimg
