// Max pooling forward/backward kernels for MindSpore's "aot" Custom op on CPU (NCHW, float32).
//
// Why: MindSpore 2.10's CPU MaxPool/MaxPoolGrad go through oneDNN's reference `simple_nchw`
// pooling; its backward alone took ~40% of a GoogLeNet training step. These loops are parallel over
// the N*C planes and bit-identical in the forward (max is exact). See docs/performance.md and
// visionzoo/ops/pooling.py.
//
// Parameters arrive as an int32 tensor p = [kh, kw, sh, sw, pad_top, pad_left]. Padded cells never
// win (they act as -inf), matching nn.MaxPool2d's "same"/"pad" modes. Gradient ties go to the
// first maximum in row-major window order.
//
// Each plane is first copied into a buffer padded with -inf to every window's extent (unless every
// window lies inside the input, e.g. 2x2/2 pools on even sizes), so that the sweeps below have no bounds
// checks: each lane of a vector loop is one output of a row, its window's cells swept in row-major order
// with the running maximum (and, in the backward, its input index) in registers. The backward finds each
// output row's maxima that way and then adds the row's gradients to dx at those indices, in output order.
// The loops are compiled for AVX-512, AVX2 and the baseline (function target attributes: the library
// itself is built for the architecture's baseline), picked by VzPoolSetIsa from the ISA visionzoo chose
// for its fast paths (a user's ONEDNN_MAX_CPU_ISA included).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {
struct Geometry {
  int64_t planes, h, w, ho, wo;
  int kh, kw, sh, sw, pt, pl;
  int64_t hp, wp;  // the padded plane: every window's rows and columns
  bool inside;      // every window lies inside the input: the plane itself serves as the padded one
};

Geometry MakeGeometry(const int64_t *x_shape, const int64_t *y_shape, const int32_t *p) {
  Geometry g;
  g.planes = x_shape[0] * x_shape[1];
  g.h = x_shape[2];
  g.w = x_shape[3];
  g.ho = y_shape[2];
  g.wo = y_shape[3];
  g.kh = p[0]; g.kw = p[1]; g.sh = p[2]; g.sw = p[3]; g.pt = p[4]; g.pl = p[5];
  g.hp = (g.ho - 1) * g.sh + g.kh;
  g.wp = (g.wo - 1) * g.sw + g.kw;
  g.inside = g.pt == 0 && g.pl == 0 && g.hp <= g.h && g.wp <= g.w;
  if (g.inside) g.wp = g.w;  // the row stride of the plane read in place
  return g;
}

#define VZ_INLINE __attribute__((always_inline)) inline

// The plane xp copied into pad [hp, wp], -inf outside the input.
VZ_INLINE void PadPlane(const Geometry &g, const float *xp, float *pad) {
  const float lowest = -std::numeric_limits<float>::infinity();
  const int64_t left = std::min<int64_t>(g.pl, g.wp), count = std::max<int64_t>(0, std::min(g.w, g.wp - g.pl));
  for (int64_t r = 0; r < g.hp; ++r) {
    float *row = pad + r * g.wp;
    const int64_t src = r - g.pt;
    if (src < 0 || src >= g.h || count == 0) {
      std::fill(row, row + g.wp, lowest);
      continue;
    }
    std::fill(row, row + left, lowest);
    std::memcpy(row + g.pl, xp + src * g.w, sizeof(float) * count);
    std::fill(row + g.pl + count, row + g.wp, lowest);
  }
}

// One output row of y (and, with kIndices, of the index of each output's first maximum within the input
// plane): each lane an output, its window's kh x kw cells swept in row-major order with the
// running maximum (and its index) in registers. kKh, kKw > 0: the window size known at compile time (the
// models' 3x3 and 2x2), 0: read from g.
template <bool kIndices, int kKh, int kKw>
VZ_INLINE void PoolRow(const Geometry &g, const float *pad, int64_t oh, float *yr, int32_t *ir) {
  const int kh = kKh > 0 ? kKh : g.kh, kw = kKw > 0 ? kKw : g.kw, wo = int(g.wo), sw = g.sw;
  const int64_t wp = g.wp;
  const float *top = pad + oh * g.sh * wp;
  // the input index of padded column 0 of the window's first row (negative in the padding, never kept)
  const int32_t base = int32_t((oh * g.sh - g.pt) * g.w - g.pl), w = int32_t(g.w);
  // a window of -inf inputs routes its gradient to its first input cell
  const int32_t first_row = int32_t(std::max<int64_t>(oh * g.sh - g.pt, 0) * g.w);
#pragma omp simd
  for (int ow = 0; ow < wo; ++ow) {
    float m = -std::numeric_limits<float>::infinity();
    int32_t at = first_row + std::max(ow * sw - g.pl, 0);
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) {
        const float v = top[i * wp + ow * sw + j];
        const bool better = v > m;  // strict: the first maximum in row-major order stays
        m = better ? v : m;
        if (kIndices) at = better ? base + i * w + ow * sw + j : at;
      }
    yr[ow] = m;
    if (kIndices) ir[ow] = at;
  }
}

VZ_INLINE void PoolRowAny(bool indices, const Geometry &g, const float *pad, int64_t oh, float *yr, int32_t *ir) {
  if (g.kh == 3 && g.kw == 3)
    indices ? PoolRow<true, 3, 3>(g, pad, oh, yr, ir) : PoolRow<false, 3, 3>(g, pad, oh, yr, ir);
  else if (g.kh == 2 && g.kw == 2)
    indices ? PoolRow<true, 2, 2>(g, pad, oh, yr, ir) : PoolRow<false, 2, 2>(g, pad, oh, yr, ir);
  else
    indices ? PoolRow<true, 0, 0>(g, pad, oh, yr, ir) : PoolRow<false, 0, 0>(g, pad, oh, yr, ir);
}

// Forward (dy == nullptr: y = maxpool(x)) or backward (dx += dy at each output's first maximum) over
// all planes, on all threads; each thread pads a plane at a time into its own buffer.
VZ_INLINE void RunT(const Geometry &g, const float *x, float *y, const float *dy, float *dx) {
#pragma omp parallel
  {
    std::vector<float> pad(g.inside ? 0 : g.hp * g.wp), values(dy ? g.wo : 0);
    std::vector<int32_t> where(dy ? g.wo : 0);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < g.planes; ++c) {
      const float *plane = x + c * g.h * g.w;
      if (!g.inside) PadPlane(g, plane, pad.data()), plane = pad.data();
      if (dy == nullptr) {
        for (int64_t oh = 0; oh < g.ho; ++oh) PoolRowAny(false, g, plane, oh, y + (c * g.ho + oh) * g.wo, nullptr);
        continue;
      }
      float *dxp = dx + c * g.h * g.w;
      std::memset(dxp, 0, sizeof(float) * g.h * g.w);
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        PoolRowAny(true, g, plane, oh, values.data(), where.data());
        const float *dyr = dy + (c * g.ho + oh) * g.wo;
        for (int64_t ow = 0; ow < g.wo; ++ow) dxp[where[ow]] += dyr[ow];
      }
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void Run512(const Geometry &g, const float *x, float *y,
                                                                  const float *dy, float *dx) {
  RunT(g, x, y, dy, dx);
}
__attribute__((target("avx2,fma"))) void Run256(const Geometry &g, const float *x, float *y, const float *dy,
                                                 float *dx) {
  RunT(g, x, y, dy, dx);
}
void RunBase(const Geometry &g, const float *x, float *y, const float *dy, float *dx) { RunT(g, x, y, dy, dx); }

// 2: AVX-512, 1: AVX2, 0: the baseline (VzPoolSetIsa)
std::atomic<int> g_level{0};

void Run(const Geometry &g, const float *x, float *y, const float *dy, float *dx) {
  const int level = g_level.load();
  if (level == 2) return Run512(g, x, y, dy, dx);
  if (level == 1) return Run256(g, x, y, dy, dx);
  RunBase(g, x, y, dy, dx);
}
}  // namespace

// Calls of each entry point since the library was loaded: tests read them to prove that a compiled
// (graph-mode) network really ran this kernel and not a fallback.
static std::atomic<int64_t> g_forward_calls{0}, g_backward_calls{0};

extern "C" int64_t VzPoolCalls(int backward) { return backward ? g_backward_calls.load() : g_forward_calls.load(); }

// The vector level of the loops: 2 AVX-512 (F/BW/VL), 1 AVX2+FMA, 0 the baseline; the caller passes what
// the CPU has and the user allows. Returns the previous level.
extern "C" int VzPoolSetIsa(int level) { return g_level.exchange(level < 0 ? 0 : level > 2 ? 2 : level); }

// y = maxpool(x); inputs x, p; output y.
extern "C" int MaxPool2dForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 3 || ndims[0] != 4 || ndims[2] != 4) return 1;
  g_forward_calls.fetch_add(1, std::memory_order_relaxed);
  const Geometry g = MakeGeometry(shapes[0], shapes[2], static_cast<const int32_t *>(params[1]));
  Run(g, static_cast<const float *>(params[0]), static_cast<float *>(params[2]), nullptr, nullptr);
  return 0;
}

// dx: each output's gradient added at its window's first maximum; inputs x, dy, p; output dx.
extern "C" int MaxPool2dBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  if (nparam != 4 || ndims[0] != 4 || ndims[1] != 4 || ndims[3] != 4) return 1;
  g_backward_calls.fetch_add(1, std::memory_order_relaxed);
  const Geometry g = MakeGeometry(shapes[0], shapes[1], static_cast<const int32_t *>(params[2]));
  if (g.h * g.w > std::numeric_limits<int32_t>::max()) return 2;
  Run(g, static_cast<const float *>(params[0]), nullptr, static_cast<const float *>(params[1]),
      static_cast<float *>(params[3]));
  return 0;
}
