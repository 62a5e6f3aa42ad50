// Max pooling forward/backward kernels for MindSpore's "aot" Custom op on CPU (NCHW, float32).
//
// Why: MindSpore 2.10's CPU MaxPool/MaxPoolGrad go through oneDNN's reference `simple_nchw`
// pooling; its backward alone took ~40% of a GoogLeNet training step. These loops are plain,
// parallel over the N*C planes, and bit-identical in the forward (max is exact). See
// docs/performance.md and visionzoo/ops/pooling.py.
//
// Parameters arrive as an int32 tensor p = [kh, kw, sh, sw, pad_top, pad_left]. Padded cells never
// win (they act as -inf), matching nn.MaxPool2d's "same"/"pad" modes. Gradient ties go to the
// first maximum in row-major window order.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {
struct Geometry {
  int64_t planes, h, w, ho, wo;
  int kh, kw, sh, sw, pt, pl;
};

Geometry MakeGeometry(int64_t **shapes, int x_idx, int y_idx, const int32_t *p) {
  Geometry g;
  g.planes = shapes[x_idx][0] * shapes[x_idx][1];
  g.h = shapes[x_idx][2];
  g.w = shapes[x_idx][3];
  g.ho = shapes[y_idx][2];
  g.wo = shapes[y_idx][3];
  g.kh = p[0]; g.kw = p[1]; g.sh = p[2]; g.sw = p[3]; g.pt = p[4]; g.pl = p[5];
  return g;
}

// Window [h0, h1) x [w0, w1) of output (oh, ow), clipped to the input.
inline void Window(const Geometry &g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                   int64_t *w1) {
  int64_t hs = oh * g.sh - g.pt, ws = ow * g.sw - g.pl;
  *h0 = hs < 0 ? 0 : hs;
  *w0 = ws < 0 ? 0 : ws;
  *h1 = hs + g.kh > g.h ? g.h : hs + g.kh;
  *w1 = ws + g.kw > g.w ? g.w : ws + g.kw;
}
}  // namespace

// Output columns [lo, hi) whose window column ow*sw - pl + j lies inside the input.
inline void ColumnRange(const Geometry &g, int j, int64_t *lo, int64_t *hi) {
  const int64_t first = g.pl - j;  // ow*sw >= first
  *lo = first <= 0 ? 0 : (first + g.sw - 1) / g.sw;
  const int64_t last = g.w - 1 + g.pl - j;  // ow*sw <= last
  *hi = last < 0 ? 0 : last / g.sw + 1;
  if (*hi > g.wo) *hi = g.wo;
  if (*lo > *hi) *lo = *hi;
}

// The forward sweeps each window cell (i, j) for a whole output row at once, so the inner loop runs
// over contiguous outputs (vectorisable) instead of over a 2x2 or 3x3 window: ~1.5-2x faster than a
// per-output window loop. The same restructuring made the backward (argmax tracking) 3x slower, so
// the backward keeps the per-output loop.

// Calls of each entry point since the library was loaded: tests read them to prove that a compiled
// (graph-mode) network really ran this kernel and not a fallback.
static std::atomic<int64_t> g_forward_calls{0}, g_backward_calls{0};

extern "C" int64_t VzPoolCalls(int backward) { return backward ? g_backward_calls.load() : g_forward_calls.load(); }

extern "C" int MaxPool2dForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 3 || ndims[0] != 4 || ndims[2] != 4) return 1;
  g_forward_calls.fetch_add(1, std::memory_order_relaxed);
  const float *x = static_cast<const float *>(params[0]);
  const int32_t *p = static_cast<const int32_t *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const Geometry g = MakeGeometry(shapes, 0, 2, p);
  const float lowest = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.planes; ++c) {
    const float *xp = x + c * g.h * g.w;
    for (int64_t oh = 0; oh < g.ho; ++oh) {
      float *yrow = y + (c * g.ho + oh) * g.wo;
      for (int64_t ow = 0; ow < g.wo; ++ow) yrow[ow] = lowest;
      const int64_t hs = oh * g.sh - g.pt;
      for (int64_t i = hs < 0 ? 0 : hs; i < hs + g.kh && i < g.h; ++i) {
        const float *row = xp + i * g.w;
        for (int j = 0; j < g.kw; ++j) {
          int64_t lo, hi;
          ColumnRange(g, j, &lo, &hi);
          const float *src = row - g.pl + j;
          const int64_t sw = g.sw;
          for (int64_t ow = lo; ow < hi; ++ow) {
            const float v = src[ow * sw];
            yrow[ow] = v > yrow[ow] ? v : yrow[ow];
          }
        }
      }
    }
  }
  return 0;
}

extern "C" int MaxPool2dBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  // inputs: x, dy, p; output: dx
  if (nparam != 4 || ndims[0] != 4 || ndims[1] != 4 || ndims[3] != 4) return 1;
  g_backward_calls.fetch_add(1, std::memory_order_relaxed);
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  const int32_t *p = static_cast<const int32_t *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  const Geometry g = MakeGeometry(shapes, 0, 1, p);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.planes; ++c) {
    const float *xp = x + c * g.h * g.w;
    const float *dyp = dy + c * g.ho * g.wo;
    float *dxp = dx + c * g.h * g.w;
    std::memset(dxp, 0, sizeof(float) * g.h * g.w);
    for (int64_t oh = 0; oh < g.ho; ++oh) {
      for (int64_t ow = 0; ow < g.wo; ++ow) {
        int64_t h0, h1, w0, w1;
        Window(g, oh, ow, &h0, &h1, &w0, &w1);
        int64_t best = h0 * g.w + w0;
        float m = xp[best];
        for (int64_t i = h0; i < h1; ++i) {
          const float *row = xp + i * g.w;
          for (int64_t j = w0; j < w1; ++j) {
            if (row[j] > m) { m = row[j]; best = i * g.w + j; }
          }
        }
        dxp[best] += dyp[oh * g.wo + ow];
      }
    }
  }
  return 0;
}
