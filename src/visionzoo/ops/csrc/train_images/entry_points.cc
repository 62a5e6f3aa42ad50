// The library's extern "C" entry points (visionzoo/ops/images.py binds them with ctypes): one training
// batch from encoded images or from decoded pixels, and each step alone for the tests.
// Statuses: 0 done, 1 unsupported (not a JPEG this decoder takes: the caller decodes it and passes
// pixels), 2 corrupt (the decoder's message in err).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "color_adjust.h"
#include "crop_box.h"
#include "jpeg_region.h"
#include "params.h"
#include "resize_linear.h"
#include "to_tensor.h"

namespace {
using vzimg::Box;
using vzimg::TrainParams;

// Resize the crop to the output size (planar from here on), adjust colours, flip, normalise into out
// (3 x out_h x out_w).
void Finish(const uint8_t *crop, int h, int w, int stride, const double *draws, const TrainParams &p, float *out) {
  thread_local std::vector<uint8_t> resized;
  resized.resize(static_cast<size_t>(p.out_h) * p.out_w * 3);
  vzimg::ResizeLinear(crop, h, w, stride, resized.data(), p.out_h, p.out_w);
  vzimg::RandomColorAdjust(resized.data(), int64_t{p.out_h} * p.out_w, draws, p.jitter_lo, p.jitter_hi);
  const bool hflip = draws[vzimg::kDrawFlips] < p.hflip_p, vflip = draws[vzimg::kDrawFlips + 1] < p.vflip_p;
  vzimg::ToTensor(resized.data(), p.out_h, p.out_w, hflip, vflip, p.mean, p.std, out);
}

int TrainJpeg(const uint8_t *data, int64_t size, const double *draws, const TrainParams &p, float *out,
              int32_t *box, char *err, int errlen) {
  int h = 0, w = 0;
  int status = vzimg::JpegSize(data, static_cast<size_t>(size), &h, &w, err, errlen);
  if (status != vzimg::kOk) return status;
  const Box b = vzimg::CropBox(h, w, draws, p);
  thread_local std::vector<uint8_t> region;
  region.resize(static_cast<size_t>(w) * b.h * 3);
  size_t offset = 0, stride = 0;
  status = vzimg::DecodeJpegRegion(data, static_cast<size_t>(size), b.x, b.y, b.w, b.h, region.data(), &offset, &stride,
                                   err, errlen);
  if (status != vzimg::kOk) return status;
  Finish(region.data() + offset, b.h, b.w, static_cast<int>(stride), draws, p, out);
  box[0] = b.x, box[1] = b.y, box[2] = b.w, box[3] = b.h;
  return vzimg::kOk;
}
}  // namespace

extern "C" {

// n encoded images -> out (n x 3 x out_h x out_w); draws n x kDrawsPerImage; status and boxes (x, y, w,
// h) per image. Returns the index of the first corrupt image (its message in err), or -1.
int VzTrainJpegBatch(int n, const uint8_t *const *data, const int64_t *sizes, const double *draws,
                     const TrainParams *p, float *out, int32_t *status, int32_t *boxes, char *err, int errlen) {
  const int64_t image = int64_t{3} * p->out_h * p->out_w;
  for (int i = 0; i < n; ++i) {
    status[i] = TrainJpeg(data[i], sizes[i], draws + int64_t{i} * vzimg::kDrawsPerImage, *p, out + i * image,
                          boxes + 4 * i, err, errlen);
    if (status[i] == vzimg::kCorrupt) return i;
  }
  return -1;
}

// One decoded h x w x 3 image -> out (3 x out_h x out_w); box receives (x, y, w, h).
void VzTrainPixels(const uint8_t *rgb, int h, int w, const double *draws, const TrainParams *p, float *out,
                   int32_t *box) {
  const Box b = vzimg::CropBox(h, w, draws, *p);
  Finish(rgb + (static_cast<int64_t>(b.y) * w + b.x) * 3, b.h, b.w, w * 3, draws, *p, out);
  box[0] = b.x, box[1] = b.y, box[2] = b.w, box[3] = b.h;
}

int VzDrawsPerImage() { return vzimg::kDrawsPerImage; }

int VzJpegSize(const uint8_t *data, int64_t size, int32_t *hw, char *err, int errlen) {
  int h = 0, w = 0;
  const int status = vzimg::JpegSize(data, static_cast<size_t>(size), &h, &w, err, errlen);
  hw[0] = h, hw[1] = w;
  return status;
}

// The region's pixels packed into out (h x w x 3).
int VzDecodeJpegRegion(const uint8_t *data, int64_t size, const int32_t *box, uint8_t *out, char *err, int errlen) {
  int h = 0, w = 0;
  int status = vzimg::JpegSize(data, static_cast<size_t>(size), &h, &w, err, errlen);
  if (status != vzimg::kOk) return status;
  std::vector<uint8_t> rows(static_cast<size_t>(w) * std::max(box[3], 0) * 3);
  size_t offset = 0, stride = 0;
  status = vzimg::DecodeJpegRegion(data, static_cast<size_t>(size), box[0], box[1], box[2], box[3], rows.data(), &offset,
                                   &stride, err, errlen);
  for (int r = 0; status == vzimg::kOk && r < box[3]; ++r)
    std::memcpy(out + static_cast<size_t>(r) * box[2] * 3, rows.data() + offset + r * stride, static_cast<size_t>(box[2]) * 3);
  return status;
}

void VzCropBox(int h, int w, const double *draws, const TrainParams *p, int32_t *box) {
  const Box b = vzimg::CropBox(h, w, draws, *p);
  box[0] = b.x, box[1] = b.y, box[2] = b.w, box[3] = b.h;
}

void VzResizeLinear(const uint8_t *src, int sh, int sw, int src_stride, uint8_t *dst, int dh, int dw) {
  vzimg::ResizeLinear(src, sh, sw, src_stride, dst, dh, dw);
}

void VzAdjust(uint8_t *pixels, int64_t n, int which, float alpha) {
  if (which == vzimg::kBrightness) vzimg::AdjustBrightness(pixels, n, alpha);
  if (which == vzimg::kContrast) vzimg::AdjustContrast(pixels, n, alpha);
  if (which == vzimg::kSaturation) vzimg::AdjustSaturation(pixels, n, alpha);
}

void VzToTensor(const uint8_t *src, int h, int w, int hflip, int vflip, const float *mean, const float *std,
                float *dst) {
  vzimg::ToTensor(src, h, w, hflip != 0, vflip != 0, mean, std, dst);
}

}  // extern "C"
