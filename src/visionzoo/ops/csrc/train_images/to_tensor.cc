// (float(v) - mean) / std: the same float operations as Normalize, vectorised per row.
#include "to_tensor.h"

#include <cstddef>

#include "simd.h"

namespace vzimg {
namespace {

VZ_CLONES void Row(const uint8_t *src, int w, bool reverse, float mean, float std, float *dst) {
  if (reverse) {
    for (int x = 0; x < w; ++x) dst[x] = (static_cast<float>(src[w - 1 - x]) - mean) / std;
  } else {
    for (int x = 0; x < w; ++x) dst[x] = (static_cast<float>(src[x]) - mean) / std;
  }
}

}  // namespace

void ToTensor(const uint8_t *src, int h, int w, bool hflip, bool vflip, const float *mean, const float *std,
              float *dst) {
  const size_t plane = static_cast<size_t>(h) * w;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y) {
      const uint8_t *row = src + c * plane + static_cast<size_t>(vflip ? h - 1 - y : y) * w;
      Row(row, w, hflip, mean[c], std[c], dst + c * plane + static_cast<size_t>(y) * w);
    }
}

}  // namespace vzimg
