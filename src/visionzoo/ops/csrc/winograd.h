// Winograd convolution for 3x3, stride-1 layers, F(4x4, 3x3) and F(2x2, 3x3): the forward pass (optionally
// with a bias and a ReLU), the backward-data pass and the weight gradient (MakeWeightPlan, RunWeights), on
// plain NCHW/OIHW float32 tensors. Included by conv2d_cpu/winograd_conv.h, where it is one of the
// formulations a geometry chooses between (conv2d_cpu/chooser.h, docs/performance.md).
//
// Why: oneDNN 3.10 as MindSpore ships it has no Winograd convolution, and its direct kernels spend 9
// multiply-adds per output and input channel on a 3x3 kernel. F(m x m, 3x3) computes an m x m output tile
// from an (m + 2) x (m + 2) input tile with (m + 2)^2 multiply-adds per input channel: 2.25 per output for
// F(4x4, 3x3) (4x fewer), 4 for F(2x2, 3x3) (2.25x fewer), at the price of transforming the inputs,
// weights and outputs: a win on VGG-style layers, where nearly every convolution is 3x3 with stride 1 and
// many channels. F(4x4) is used where the output is at least 4x4, F(2x2) on smaller maps (VGG's 2x2 maps
// at 32x32 input), where a 4x4 tile would be mostly padding.
//
// With d an input tile, g a 3x3 kernel (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016; the interpolation points 0, -1, 1 and, for F(4x4), 2, -2):
//   U = G g G^T, V = B^T d B, M = sum over input channels of U (.) V, y = A^T M A
//   F(2x2): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//           A^T = [1 1 1 0; 0 1 -1 -1]
//   F(4x4): B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//           G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//           A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// The sum over input channels is, for each of the (m + 2)^2 positions xi of a tile, a matrix product
// M_xi[k, t] = sum_c U_xi[k, c] V_xi[c, t] over the output channels k and tiles t: (m + 2)^2 GEMMs, run
// by a register-blocked micro-kernel. Everything is compiled twice, for AVX-512 and for AVX2+FMA (function
// target attributes: the library itself is built for the architecture's baseline), and the caller picks
// the level from the ISA the private oneDNN dispatches to, so a user's ONEDNN_MAX_CPU_ISA cap holds here.
//
// Two schedules. Blocked (many tiles): the tiles are processed in blocks of a few tile rows (about 1 MB of
// transformed input), one block per OpenMP thread at a time, so that a block's V and M stay in the core's
// cache from the input transform through the GEMMs to the output transform. Whole (few tiles, e.g. VGG's
// 4x4 and 2x2 maps at 32x32 input): one block holds every tile, and each phase is shared out on its own
// (tile rows, then (xi, channel block) pairs, then output channels), so the transformed weights U, larger
// than the activations there, are read once instead of once per block.
//
// Backward data of a stride-1 3x3 convolution with padding (top, left) = (pt, pl) is the same operation
// on dy with the kernel rotated by 180 degrees and its two channel axes swapped, with padding
// (2 - pt, 2 - pl): padding up to 2 on each side is supported.
//
// Numerics: the same sums in another order, with the transforms' scalings: outputs agree with the direct
// convolution to float32 rounding (relative ~1e-6 for F(2x2), a few 1e-6 for F(4x4), whose transforms
// multiply by up to 8; tests/test_ops_conv.py).
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

// The vector types below never cross a call boundary (every function using them is inlined into a
// function compiled for the matching ISA): GCC's note about their calling convention does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace vzwino {

enum Isa { kNone = 0, kAvx2 = 1, kAvx512 = 2 };

// One convolution y[N, K, OH, OW] = conv3x3(x[N, C, H, W]), stride 1, padding (pt top, pl left; the
// bottom and right padding follow from OH and OW), and how it is scheduled.
struct Plan {
  int64_t N = 0, C = 0, H = 0, W = 0, K = 0, OH = 0, OW = 0;
  int pt = 0, pl = 0;
  int isa = kNone;
  int m = 0;               // output tile size: F(m x m, 3x3), m = 2 or 4
  int mr = 0, nr = 0;      // micro-kernel: mr output channels x nr tiles
  int64_t Kp = 0;          // K rounded up to mr
  int64_t TH = 0, TW = 0;  // output tiles per column / row
  int64_t rows = 0;        // tile rows per block
  int64_t tbp = 0;         // tiles per block, rounded up to nr (the row stride of V and M)
  int64_t blocks = 0;
  bool whole = false;      // one block of every tile, each phase shared between the threads
  bool gather = false;     // input transform by gathers over a vector of tiles (rows of 1-7 tiles), not along rows
  bool weights = false;    // a weight-gradient plan (MakeWeightPlan): V and Y per tile, M per (k, c)
  int alpha() const { return m + 2; }
  int positions() const { return alpha() * alpha(); }
  // V and M hold a plane per position xi, a cache line apart beyond their size: planes a power of two
  // apart would map the transforms' streams to the same L1 set (4K aliasing)
  size_t v_plane() const { return size_t(C) * tbp + 16; }
  size_t m_plane() const { return size_t(Kp) * tbp + 16; }
  size_t u_floats() const { return size_t(positions()) * Kp * C; }
  // the weight gradient's: transformed output gradient Y [xi][k][tile]; V and Y transposed for the
  // micro-kernel, VT [xi][tile][Cp] (C rounded up to nr) and YP [xi][k / mr][tile][k % mr]; products
  // M [xi][Kp][Cp]
  int64_t Cp() const { return (C + nr - 1) / nr * nr; }
  size_t y_plane() const { return size_t(K) * tbp + 16; }
  size_t y_floats() const { return positions() * y_plane(); }
  size_t vt_plane() const { return size_t(tbp) * Cp() + 16; }
  size_t yp_plane() const { return size_t(Kp) * tbp + 16; }
  size_t w_plane() const { return size_t(Kp) * Cp() + 16; }
  size_t vt_floats() const { return positions() * vt_plane(); }
  size_t yp_floats() const { return positions() * yp_plane(); }
  size_t w_floats() const { return positions() * w_plane(); }
  size_t v_floats() const { return positions() * v_plane(); }
  size_t m_floats() const { return positions() * m_plane(); }
  // a thread's row buffers (m phases of the alpha input rows; the m output rows), or 16 lanes of offsets
  size_t row_floats() const { return size_t(alpha() * m + m) * (TW + 1) + 16 * positions(); }
};

// The schedule of a plan: every tile in one block (whole), or blocks of tile rows holding about `target`
// tiles each, at least one micro-kernel width, halved until every thread gets two blocks where possible.
inline void Schedule(Plan &p, bool whole, int64_t target, int threads) {
  const int64_t total_rows = p.N * p.TH;
  p.whole = whole;
  p.rows = whole ? total_rows
                 : std::max<int64_t>(1, std::min<int64_t>(total_rows, std::max<int64_t>(p.nr, target) / p.TW));
  while (!whole && p.rows > 1 && (total_rows + p.rows - 1) / p.rows < 2 * threads) p.rows = (p.rows + 1) / 2;
  p.tbp = (p.rows * p.TW + p.nr - 1) / p.nr * p.nr;
  p.blocks = (total_rows + p.rows - 1) / p.rows;
}

// The plan for a geometry, or a plan with isa == kNone when Winograd does not apply. The whole schedule
// is taken when V and M of every tile fit in whole_bytes each (16 MiB by default); the transformed
// weights U may take at most max_u_bytes (64 MiB, the bound of the kernel's other scratch buffers:
// 36 x 512 x 512 floats, 38 MiB, for VGG's widest layers), else Winograd does not apply.
inline Plan MakePlan(int isa, int threads, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH,
                     int64_t OW, int pt, int pl, int64_t whole_bytes = int64_t(16) << 20,
                     int64_t max_u_bytes = int64_t(64) << 20) {
  Plan p;
  const int64_t pb = OH + 2 - pt - H, pr = OW + 2 - pl - W;
  if (isa == kNone || N <= 0 || C <= 0 || K <= 0 || OH <= 0 || OW <= 0 || pt < 0 || pl < 0 || pt > 2 || pl > 2 ||
      pb < 0 || pb > 2 || pr < 0 || pr > 2)
    return p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.OH = OH, p.OW = OW, p.pt = pt, p.pl = pl, p.isa = isa;
  p.m = OH >= 4 && OW >= 4 ? 4 : 2;
  p.mr = isa == kAvx512 ? 8 : 6;
  p.nr = isa == kAvx512 ? 32 : 16;
  p.Kp = (K + p.mr - 1) / p.mr * p.mr;
  if (int64_t(sizeof(float) * p.u_floats()) > max_u_bytes) return Plan();
  p.TH = (OH + p.m - 1) / p.m, p.TW = (OW + p.m - 1) / p.m;
  // gathers index x with 32-bit offsets
  p.gather = p.TW < 8 && N * C * H * W < (int64_t(1) << 31);
  const int64_t positions = p.positions(), whole_tbp = (N * p.TH * p.TW + p.nr - 1) / p.nr * p.nr;
  const bool whole = int64_t(sizeof(float)) * positions * C * whole_tbp <= whole_bytes &&
                     int64_t(sizeof(float)) * positions * p.Kp * whole_tbp <= whole_bytes;
  // blocked: about 1 MB of transformed input per block (positions x C x tiles floats)
  Schedule(p, whole, std::min<int64_t>(256, 262144 / (positions * C)), threads);
  return p;
}

// The weight gradient dw[K, C, 3, 3] of the same convolution (x [N, C, H, W], dy [N, K, OH, OW]), or a plan
// with isa == kNone. dw = sum over tiles of G^T [(B^T d B) (.) (A dy A^T)] G (the gradient of the forward's
// y = A^T [(G g G^T) (.) (B^T d B)] A with respect to g, tile by tile): the forward's input transform, the
// output gradient's (m x m tiles to alpha x alpha by A), and per position xi a product M[xi][k, c] =
// sum_t Y[xi][k, t] V[xi][c, t] over the tiles, by the forward's micro-kernel on transposed operands.
// Whole schedule when V and Y of every tile fit in 2 x whole_bytes each (each phase shared out; the
// products computed once), else blocks of tile rows per thread, each thread adding its blocks' products
// into its own M (at most 16 MiB, else no Winograd), the threads' sums added up at the end.
inline Plan MakeWeightPlan(int isa, int threads, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                           int64_t OH, int64_t OW, int pt, int pl, int64_t whole_bytes = int64_t(16) << 20) {
  Plan p = MakePlan(isa, threads, N, C, H, W, K, OH, OW, pt, pl, whole_bytes);
  if (p.isa == kNone) return p;
  p.weights = true;
  const int64_t f = sizeof(float), widest = std::max(p.Cp(), p.Kp);
  const int64_t whole_tbp = (N * p.TH * p.TW + p.nr - 1) / p.nr * p.nr;
  const bool whole = f * p.positions() * widest * whole_tbp <= 2 * whole_bytes;
  // blocked: about 64 tiles per block, so that the block's four buffers stay in the core's L2 cache
  // (measured on VGG's 32x32 and 16x16 layers: 64 tiles 31 / 21 ms, 256 tiles 35 / 34 ms)
  Schedule(p, whole, 64, threads);
  if (!whole && f * int64_t(p.w_floats()) > (int64_t(16) << 20)) return Plan();
  return p;
}

// ---------------------------------------------------------------------------------------------------
// The phases, as always-inline templates: each is compiled into the ISA-specific functions below that
// call it, never on its own. The transforms are written once for a value type T: float, or a GCC vector
// of floats (16 lanes for AVX-512, 8 for AVX2), each lane a tile (inputs, outputs) or an output channel
// (weights); the lanes are loaded from and stored to contiguous floats.
// ---------------------------------------------------------------------------------------------------
#define VZ_INLINE __attribute__((always_inline)) inline

typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));

template <class T> struct Lanes { static constexpr int n = sizeof(T) / sizeof(float); };
template <class T> VZ_INLINE T Load(const float *p) {
  T v;
  __builtin_memcpy(&v, p, sizeof(T));
  return v;
}
template <class T> VZ_INLINE void Store(float *p, const T &v) { __builtin_memcpy(p, &v, sizeof(T)); }
template <class T> VZ_INLINE T Relu(const T &v) { return v > T{} ? v : T{}; }
template <> VZ_INLINE float Relu<float>(const float &v) { return v > 0.0f ? v : 0.0f; }

// The 1-D transforms, on a column of values: y = B^T x (alpha -> alpha), y = A^T x (alpha -> m),
// y = G x (3 -> alpha). The 2-D ones apply them to the columns, then to the rows.
template <int kM> struct Transforms;

template <> struct Transforms<2> {
  template <class T> static VZ_INLINE void Bt(const T *x, T *y) {
    y[0] = x[0] - x[2], y[1] = x[1] + x[2], y[2] = x[2] - x[1], y[3] = x[1] - x[3];
  }
  template <class T> static VZ_INLINE void At(const T *x, T *y) {
    y[0] = x[0] + x[1] + x[2], y[1] = x[1] - x[2] - x[3];
  }
  template <class T> static VZ_INLINE void G(const T *x, T *y) {
    y[0] = x[0], y[1] = 0.5f * (x[0] + x[1] + x[2]), y[2] = 0.5f * (x[0] - x[1] + x[2]), y[3] = x[2];
  }
  // the weight gradient's: y = A x (m -> alpha), y = G^T x (alpha -> 3)
  template <class T> static VZ_INLINE void A(const T *x, T *y) {
    y[0] = x[0], y[1] = x[0] + x[1], y[2] = x[0] - x[1], y[3] = -x[1];
  }
  template <class T> static VZ_INLINE void Gt(const T *x, T *y) {
    y[0] = x[0] + 0.5f * (x[1] + x[2]), y[1] = 0.5f * (x[1] - x[2]), y[2] = 0.5f * (x[1] + x[2]) + x[3];
  }
};

template <> struct Transforms<4> {
  template <class T> static VZ_INLINE void Bt(const T *x, T *y) {
    y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
    y[1] = x[3] + x[4] - 4.0f * (x[1] + x[2]);
    y[2] = x[4] - x[3] + 4.0f * (x[1] - x[2]);
    y[3] = x[4] - x[2] + 2.0f * (x[3] - x[1]);
    y[4] = x[4] - x[2] - 2.0f * (x[3] - x[1]);
    y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
  }
  template <class T> static VZ_INLINE void At(const T *x, T *y) {
    const T s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
    y[0] = x[0] + s12 + s34, y[1] = d12 + 2.0f * d34, y[2] = s12 + 4.0f * s34, y[3] = d12 + 8.0f * d34 + x[5];
  }
  template <class T> static VZ_INLINE void G(const T *x, T *y) {
    y[0] = 0.25f * x[0];
    y[1] = (x[0] + x[1] + x[2]) * (-1.0f / 6.0f);
    y[2] = (x[0] - x[1] + x[2]) * (-1.0f / 6.0f);
    y[3] = x[0] * (1.0f / 24.0f) + x[1] * (1.0f / 12.0f) + x[2] * (1.0f / 6.0f);
    y[4] = x[0] * (1.0f / 24.0f) - x[1] * (1.0f / 12.0f) + x[2] * (1.0f / 6.0f);
    y[5] = x[2];
  }
  template <class T> static VZ_INLINE void A(const T *x, T *y) {
    const T s02 = x[0] + x[2], s13 = x[1] + x[3];
    y[0] = x[0], y[1] = s02 + s13, y[2] = s02 - s13;
    y[3] = x[0] + 2.0f * x[1] + 4.0f * x[2] + 8.0f * x[3], y[4] = x[0] - 2.0f * x[1] + 4.0f * x[2] - 8.0f * x[3];
    y[5] = x[3];
  }
  template <class T> static VZ_INLINE void Gt(const T *x, T *y) {
    y[0] = 0.25f * x[0] - (x[1] + x[2]) * (1.0f / 6.0f) + (x[3] + x[4]) * (1.0f / 24.0f);
    y[1] = (x[2] - x[1]) * (1.0f / 6.0f) + (x[3] - x[4]) * (1.0f / 12.0f);
    y[2] = (x[3] + x[4] - x[1] - x[2]) * (1.0f / 6.0f) + x[5];
  }
};

// v = B^T d B for an alpha x alpha tile d (row-major), v row-major.
template <int kM, class T>
VZ_INLINE void InputTile(const T *d, T *v) {
  constexpr int A = kM + 2;
  T t[A * A], col[A], out[A];
#pragma GCC unroll 6
  for (int b = 0; b < A; ++b) {  // B^T d: each column
#pragma GCC unroll 6
    for (int a = 0; a < A; ++a) col[a] = d[a * A + b];
    Transforms<kM>::Bt(col, out);
#pragma GCC unroll 6
    for (int a = 0; a < A; ++a) t[a * A + b] = out[a];
  }
#pragma GCC unroll 6
  for (int a = 0; a < A; ++a) Transforms<kM>::Bt(t + a * A, v + a * A);  // (B^T d) B: each row
}

// U[kb][xi][c][k % mr] = (G g G^T)[xi] for the kernel g of output channel k = kb * mr + (k % mr) and
// input channel c, for the channel blocks [kb0, kb1): forward, g = w[k, c] with w [K, C, 3, 3]; backward
// data (flip), g = rot180(w[c, k]) with w [C, K, 3, 3] (the forward layer's weights: its output channels
// are this operation's input channels). Zero rows pad K to Kp. The mr channels of a block are the lanes
// of an 8-lane vector (mr = 8 for AVX-512, 6 for AVX2: two lanes idle).
template <int kM, int kMr>
VZ_INLINE void TransformWeightsT(const Plan &p, const float *w, bool flip, float *U, int64_t kb0, int64_t kb1) {
  constexpr int A = kM + 2;
  static_assert(kMr <= 8, "an 8-lane vector holds a block's output channels");
  const size_t plane = size_t(p.C) * kMr;
  for (int64_t kb = kb0; kb < kb1; ++kb)
    for (int64_t c = 0; c < p.C; ++c) {
      alignas(32) float g[9][8] = {};
      for (int r = 0; r < kMr; ++r) {
        const int64_t k = kb * kMr + r;
        if (k >= p.K) continue;
        if (!flip) {
          const float *src = w + (k * p.C + c) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = src[i];
        } else {
          const float *src = w + (c * p.K + k) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = src[8 - i];
        }
      }
      F8 t[A * 3], col[3], gc[A], u[A];
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {  // G g: each column
#pragma GCC unroll 3
        for (int a = 0; a < 3; ++a) col[a] = Load<F8>(g[3 * a + b]);
        Transforms<kM>::G(col, gc);
#pragma GCC unroll 6
        for (int a = 0; a < A; ++a) t[a * 3 + b] = gc[a];
      }
      float *out = U + (kb * A * A * p.C + c) * kMr;
#pragma GCC unroll 6
      for (int a = 0; a < A; ++a) {  // (G g) G^T: each row
        Transforms<kM>::G(t + a * 3, u);
#pragma GCC unroll 6
        for (int b = 0; b < A; ++b) {
          alignas(32) float lanes[8];
          Store(lanes, u[b]);
          std::memcpy(out + (a * A + b) * plane, lanes, sizeof(float) * kMr);
        }
      }
    }
}

// V[xi][c][j] = (B^T d B)[xi] for the tile rows [R0, R1) and every input channel, j = (R - base) * TW + tx
// the tile's column in V (row stride p.tbp). Along rows: each of the alpha input rows of a tile row is
// split into its m phases (columns m q + r of the padded row, zero outside the image; a loop of groups
// of m, which the compiler turns into loads and shuffles), so that column b of tile tx is phase b % m at
// index tx + b / m: a tile per lane, loaded from contiguous floats. Channel by channel, so that each
// plane's rows are read in order.
template <int kM, class T>
VZ_INLINE void RowTiles(float *const (*ph)[kM], int64_t tx, float *out, size_t plane) {
  constexpr int A = kM + 2;
  T d[A * A], v[A * A];
#pragma GCC unroll 6
  for (int a = 0; a < A; ++a)
#pragma GCC unroll 6
    for (int b = 0; b < A; ++b) d[a * A + b] = Load<T>(ph[a][b % kM] + tx + b / kM);
  InputTile<kM>(d, v);
#pragma GCC unroll 36
  for (int xi = 0; xi < A * A; ++xi) Store(out + xi * plane + tx, v[xi]);
}

template <int kM, class T>
VZ_INLINE void InputRowsT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V, float *buf) {
  constexpr int A = kM + 2, L = Lanes<T>::n;
  const int64_t TW = p.TW, W = p.W, n2 = TW + 1;  // phases of m (TW + 1) padded columns
  float *ph[A][kM];  // ph[a][r][q] = padded row a, column m q + r
  for (int a = 0; a < A; ++a)
    for (int r = 0; r < kM; ++r) ph[a][r] = buf + (a * kM + r) * n2;
  const size_t plane = p.v_plane();
  // groups (m q - pl .. m q + m - 1 - pl) inside [0, W)
  const int64_t lo = std::min<int64_t>(n2, (p.pl + kM - 1) / kM);
  const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(n2, W + p.pl - kM >= 0 ? (W + p.pl - kM) / kM + 1 : 0));
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t R = R0; R < R1; ++R) {
      const int64_t n = R / p.TH, ty = R % p.TH;
      const float *xc = x + (n * p.C + c) * p.H * W;
      for (int a = 0; a < A; ++a) {
        const int64_t h = kM * ty - p.pt + a;
        if (h < 0 || h >= p.H) {
          for (int r = 0; r < kM; ++r) std::memset(ph[a][r], 0, sizeof(float) * n2);
          continue;
        }
        const float *row = xc + h * W;
        for (int64_t q = 0; q < n2; q = q + 1 == lo ? hi : q + 1) {  // the edges, bounds checked
          if (q >= lo && q < hi) break;  // (lo == hi: no interior, all edges)
          for (int r = 0; r < kM; ++r) {
            const int64_t col = kM * q + r - p.pl;
            ph[a][r][q] = col >= 0 && col < W ? row[col] : 0.0f;
          }
        }
        const float *src = row + (kM * lo - p.pl);
        float *dst[kM];
        for (int r = 0; r < kM; ++r) dst[r] = ph[a][r] + lo;
        for (int64_t q = 0; q < hi - lo; ++q)
#pragma GCC unroll 4
          for (int r = 0; r < kM; ++r) dst[r][q] = src[kM * q + r];
      }
      float *out = V + c * p.tbp + (R - base) * TW;
      int64_t tx = 0;
      for (; tx + L <= TW; tx += L) RowTiles<kM, T>(ph, tx, out, plane);
      for (; L > 8 && tx + 8 <= TW; tx += 8) RowTiles<kM, F8>(ph, tx, out, plane);
      for (; tx < TW; ++tx) RowTiles<kM, float>(ph, tx, out, plane);
    }
}

// The tiles [R0 * TW, R1 * TW) by gathers, for narrow rows (a few tiles each, where a vector along a row
// would hold one or two tiles): a vector of tiles at a time, each lane one tile, its kWin x kWin window at
// row kM ty - top, column kM tx - left of the planes src [N, channels, rows, cols] loaded through offsets
// computed once for all channels (-1 outside the plane), turned into alpha^2 values by Window::Transform
// and stored at dst + xi * plane + c * tbp + (tile - base * TW).
template <int kM, int kWin, class Window, class T>
VZ_INLINE void GatherTilesT(const Plan &p, const float *src, int64_t channels, int64_t rows, int64_t cols, int top,
                            int left, int64_t R0, int64_t R1, int64_t base, float *dst, size_t plane,
                            int32_t *offsets) {
  constexpr int A = kM + 2, L = Lanes<T>::n;
  const int64_t first = R0 * p.TW, last = R1 * p.TW, HW = rows * cols;
  int32_t(*off)[L] = reinterpret_cast<int32_t(*)[L]>(offsets);  // [a * kWin + b][lane]
  for (int64_t t0 = first; t0 < last; t0 += L) {
    const int lanes = int(std::min<int64_t>(L, last - t0));
    for (int l = 0; l < L; ++l) {
      const int64_t t = t0 + std::min(l, lanes - 1), R = t / p.TW, tx = t % p.TW, n = R / p.TH, ty = R % p.TH;
      for (int a = 0; a < kWin; ++a)
        for (int b = 0; b < kWin; ++b) {
          const int64_t h = kM * ty - top + a, w = kM * tx - left + b;
          const bool inside = h >= 0 && h < rows && w >= 0 && w < cols;
          off[a * kWin + b][l] = inside ? int32_t(n * channels * HW + h * cols + w) : -1;
        }
    }
    float *out = dst + (t0 - base * p.TW);
    for (int64_t c = 0; c < channels; ++c) {
      const float *sc = src + c * HW;
      alignas(64) float gathered[A * A][L];  // the window's values, then (partial vectors) the results
      for (int i = 0; i < kWin * kWin; ++i)
        for (int l = 0; l < L; ++l) gathered[i][l] = off[i][l] >= 0 ? sc[off[i][l]] : 0.0f;
      T d[kWin * kWin], v[A * A];
#pragma GCC unroll 36
      for (int i = 0; i < kWin * kWin; ++i) d[i] = Load<T>(gathered[i]);
      Window::template Transform<kM>(d, v);
      if (lanes == L) {
#pragma GCC unroll 36
        for (int xi = 0; xi < A * A; ++xi) Store(out + xi * plane + c * p.tbp, v[xi]);
      } else {  // the last tiles of the range: the next lanes' columns may be another thread's
        for (int xi = 0; xi < A * A; ++xi) {
          Store(gathered[xi], v[xi]);
          std::memcpy(out + xi * plane + c * p.tbp, gathered[xi], sizeof(float) * lanes);
        }
      }
    }
  }
}

struct InputWindow {  // the input's (m + 2) x (m + 2) windows: B^T d B
  template <int kM, class T> static VZ_INLINE void Transform(const T *d, T *v) { InputTile<kM>(d, v); }
};

template <int kM, class T>
VZ_INLINE void InputGatherT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V,
                            int32_t *offsets) {
  GatherTilesT<kM, kM + 2, InputWindow, T>(p, x, p.C, p.H, p.W, p.pt, p.pl, R0, R1, base, V, p.v_plane(), offsets);
}

// y tiles = A^T M A (+ bias, then ReLU when asked) for output channels [k0, k1) of the tile rows [R0, R1),
// written into y [N, K, OH, OW]; M's column of tile (R, tx) is (R - base) * TW + tx. A tile per lane,
// into m x m row buffers yt[i][j][tx], then interleaved into the output rows.
template <int kM, class T>
VZ_INLINE void OutTiles(const float *mk, size_t plane, int64_t tx, float bias, bool relu, float *const (*yt)[kM]) {
  constexpr int A = kM + 2;
  T s[kM * A], col[A], out[kM];
#pragma GCC unroll 6
  for (int b = 0; b < A; ++b) {  // A^T M: each column
#pragma GCC unroll 6
    for (int a = 0; a < A; ++a) col[a] = Load<T>(mk + (a * A + b) * plane + tx);
    Transforms<kM>::At(col, out);
#pragma GCC unroll 4
    for (int i = 0; i < kM; ++i) s[i * A + b] = out[i];
  }
#pragma GCC unroll 4
  for (int i = 0; i < kM; ++i) {  // (A^T M) A: each row
    Transforms<kM>::At(s + i * A, out);
#pragma GCC unroll 4
    for (int j = 0; j < kM; ++j) {
      const T value = out[j] + bias;
      Store(yt[i][j] + tx, relu ? Relu(value) : value);
    }
  }
}

template <int kM, class T>
VZ_INLINE void OutputT(const Plan &p, const float *M, int64_t R0, int64_t R1, int64_t base, int64_t k0, int64_t k1,
                       const float *bias, bool relu, float *y, float *buf) {
  constexpr int L = Lanes<T>::n;
  const int64_t TW = p.TW, full = p.OW / kM;  // tiles with all their output columns inside the output
  const size_t plane = p.m_plane();
  float *yt[kM][kM];
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kM; ++j) yt[i][j] = buf + (i * kM + j) * TW;
  for (int64_t k = k0; k < k1; ++k) {
    const float b = bias != nullptr ? bias[k] : 0.0f;
    for (int64_t R = R0; R < R1; ++R) {
      const int64_t n = R / p.TH, ty = R % p.TH;
      const float *mk = M + k * p.tbp + (R - base) * TW;
      int64_t tx = 0;
      for (; tx + L <= TW; tx += L) OutTiles<kM, T>(mk, plane, tx, b, relu, yt);
      for (; L > 8 && tx + 8 <= TW; tx += 8) OutTiles<kM, F8>(mk, plane, tx, b, relu, yt);
      for (; tx < TW; ++tx) OutTiles<kM, float>(mk, plane, tx, b, relu, yt);
      float *yk = y + (n * p.K + k) * p.OH * p.OW;
      for (int i = 0; i < kM && kM * ty + i < p.OH; ++i) {
        float *row = yk + (kM * ty + i) * p.OW;
        for (int64_t t = 0; t < full; ++t)
#pragma GCC unroll 4
          for (int j = 0; j < kM; ++j) row[kM * t + j] = yt[i][j][t];
        for (int j = 0; full < TW && kM * full + j < p.OW; ++j) row[kM * full + j] = yt[i][j][full];
      }
    }
  }
}

// m[r][0..nr) = sum_c u[c][r] * v[c][0..nr) for r < mr: the GEMMs' register-blocked micro-kernels.
// u is packed [C][mr], v has row stride ldv, m row stride ldm; all 64-byte aligned.
// add: m (+)= ... (the weight gradient sums its blocks' products).
__attribute__((target("avx512f"))) inline void Kernel512(int64_t C, const float *u, const float *v, int64_t ldv,
                                                          float *m, int64_t ldm, bool add = false) {
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r)
    acc[r][0] = add ? _mm512_load_ps(m + r * ldm) : _mm512_setzero_ps(),
    acc[r][1] = add ? _mm512_load_ps(m + r * ldm + 16) : _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c, u += 8, v += ldv) {
    const __m512 v0 = _mm512_load_ps(v), v1 = _mm512_load_ps(v + 16);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      const __m512 b = _mm512_set1_ps(u[r]);
      acc[r][0] = _mm512_fmadd_ps(b, v0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(b, v1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
    _mm512_store_ps(m + r * ldm, acc[r][0]);
    _mm512_store_ps(m + r * ldm + 16, acc[r][1]);
  }
}

__attribute__((target("avx2,fma"))) inline void Kernel256(int64_t C, const float *u, const float *v, int64_t ldv,
                                                           float *m, int64_t ldm, bool add = false) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r)
    acc[r][0] = add ? _mm256_load_ps(m + r * ldm) : _mm256_setzero_ps(),
    acc[r][1] = add ? _mm256_load_ps(m + r * ldm + 8) : _mm256_setzero_ps();
  for (int64_t c = 0; c < C; ++c, u += 6, v += ldv) {
    const __m256 v0 = _mm256_load_ps(v), v1 = _mm256_load_ps(v + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m256 b = _mm256_broadcast_ss(u + r);
      acc[r][0] = _mm256_fmadd_ps(b, v0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(b, v1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    _mm256_store_ps(m + r * ldm, acc[r][0]);
    _mm256_store_ps(m + r * ldm + 8, acc[r][1]);
  }
}

// M[xi][k][j] = sum_c U[xi][k][c] V[xi][c][j] for the (position, channel block) pairs [q0, q1)
// (q = xi * Kp / mr + kb), every column.
VZ_INLINE void GemmT(const Plan &p, const float *U, const float *V, float *M, int64_t q0, int64_t q1) {
  const int64_t kblocks = p.Kp / p.mr;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t xi = q / kblocks, kb = q % kblocks;
    const float *u = U + (kb * p.positions() + xi) * p.C * p.mr, *v = V + xi * p.v_plane();
    float *m = M + xi * p.m_plane() + kb * p.mr * p.tbp;
    for (int64_t j = 0; j < p.tbp; j += p.nr) {
      if (p.isa == kAvx512)
        Kernel512(p.C, u, v + j, p.tbp, m + j, p.tbp);
      else
        Kernel256(p.C, u, v + j, p.tbp, m + j, p.tbp);
    }
  }
}

// Zeros in the tile columns past the used ones of a [position][channel][tbp] buffer (V, or the weight
// gradient's Y): their products are never read, but no stale values that might be denormal or NaN slow
// the micro-kernel down.
VZ_INLINE void ZeroColumns(const Plan &p, float *buf, int64_t channels, size_t plane, int64_t used) {
  if (used < p.tbp)
    for (int xi = 0; xi < p.positions(); ++xi)
      for (int64_t c = 0; c < channels; ++c)
        std::memset(buf + xi * plane + c * p.tbp + used, 0, sizeof(float) * (p.tbp - used));
}

// The tile rows [*R0, *R1) of the calling thread in the whole schedule's shared input phase: contiguous
// shares, each a whole number of vector-wide gathers.
template <class T>
VZ_INLINE void ThreadRows(const Plan &p, int64_t *R0, int64_t *R1) {
  const int threads = omp_get_num_threads(), tid = omp_get_thread_num();
  const int64_t total_rows = p.N * p.TH, step = p.gather ? std::max<int64_t>(1, Lanes<T>::n / p.TW) : 1;
  const int64_t chunks = (total_rows + step - 1) / step;
  *R0 = std::min(chunks * tid / threads * step, total_rows);
  *R1 = std::min(chunks * (tid + 1) / threads * step, total_rows);
}

template <int kM, class T>
VZ_INLINE void InputT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V, float *buf) {
  if (p.gather)
    InputGatherT<kM, T>(p, x, R0, R1, base, V, reinterpret_cast<int32_t *>(buf));
  else
    InputRowsT<kM, T>(p, x, R0, R1, base, V, buf);
}

// One whole convolution on the threads of the enclosing parallel region (every thread calls it): U shared,
// V, M and buf the calling thread's own (blocked) or V and M shared (whole; buf still the thread's).
template <int kM, int kMr, class T>
VZ_INLINE void RunT(const Plan &p, const float *w, bool flip, const float *x, const float *bias, bool relu, float *y,
                    float *U, float *V, float *M, float *buf) {
  const int64_t kblocks = p.Kp / kMr, pairs = p.positions() * kblocks;
#pragma omp for schedule(static)
  for (int64_t kb = 0; kb < kblocks; ++kb) TransformWeightsT<kM, kMr>(p, w, flip, U, kb, kb + 1);
  // (the omp for's barrier: U is complete)
  const int64_t total_rows = p.N * p.TH;
  if (!p.whole) {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.blocks; ++b) {
      const int64_t R0 = b * p.rows, R1 = std::min(R0 + p.rows, total_rows);
      InputT<kM, T>(p, x, R0, R1, R0, V, buf);
      ZeroColumns(p, V, p.C, p.v_plane(), (R1 - R0) * p.TW);
      GemmT(p, U, V, M, 0, pairs);
      OutputT<kM, T>(p, M, R0, R1, R0, 0, p.K, bias, relu, y, buf);
    }
    return;
  }
  int64_t R0, R1;
  ThreadRows<T>(p, &R0, &R1);
  if (R0 < R1) InputT<kM, T>(p, x, R0, R1, 0, V, buf);
  if (omp_get_thread_num() == omp_get_num_threads() - 1) ZeroColumns(p, V, p.C, p.v_plane(), total_rows * p.TW);
#pragma omp barrier
#pragma omp for schedule(static)
  for (int64_t q = 0; q < pairs; ++q) GemmT(p, U, V, M, q, q + 1);
#pragma omp for schedule(static)
  for (int64_t k = 0; k < p.K; ++k) OutputT<kM, T>(p, M, 0, total_rows, 0, k, k + 1, bias, relu, y, buf);
}

// ---------------------------------------------------------------------------------------------------
// The weight gradient
// ---------------------------------------------------------------------------------------------------

// Y[xi][k][j] = (A z A^T)[xi] for the output-gradient tiles z (m x m, zero outside dy) of the tile rows
// [R0, R1) and every output channel, j = (R - base) * TW + tx.
template <int kM, class T>
VZ_INLINE void GradTile(const T *z, T *v) {
  constexpr int A = kM + 2;
  T t[A * kM], col[kM], e[A];
#pragma GCC unroll 4
  for (int j = 0; j < kM; ++j) {  // A z: each column
#pragma GCC unroll 4
    for (int i = 0; i < kM; ++i) col[i] = z[i * kM + j];
    Transforms<kM>::A(col, e);
#pragma GCC unroll 6
    for (int a = 0; a < A; ++a) t[a * kM + j] = e[a];
  }
#pragma GCC unroll 6
  for (int a = 0; a < A; ++a) Transforms<kM>::A(t + a * kM, v + a * A);  // (A z) A^T: each row
}

template <int kM, class T>
VZ_INLINE void GradRowTiles(float *const (*ph)[kM], int64_t tx, float *out, size_t plane) {
  constexpr int A = kM + 2;
  T z[kM * kM], v[A * A];
#pragma GCC unroll 16
  for (int i = 0; i < kM * kM; ++i) z[i] = Load<T>(ph[i / kM][i % kM] + tx);
  GradTile<kM>(z, v);
#pragma GCC unroll 36
  for (int xi = 0; xi < A * A; ++xi) Store(out + xi * plane + tx, v[xi]);
}

// Along rows (rows of 8 tiles or more): each of a tile row's m rows of dy split into its m phases
// (column m q + j at phase j, index q; zero past the output), a tile per lane.
template <int kM, class T>
VZ_INLINE void GradRowsT(const Plan &p, const float *dy, int64_t R0, int64_t R1, int64_t base, float *Y, float *buf) {
  constexpr int L = Lanes<T>::n;
  const int64_t TW = p.TW, OW = p.OW, full = OW / kM;  // tiles whose m columns are all inside
  const size_t plane = p.y_plane();
  float *ph[kM][kM];  // ph[i][j][tx] = dy row i of the tile row, column m tx + j
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kM; ++j) ph[i][j] = buf + (i * kM + j) * TW;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t R = R0; R < R1; ++R) {
      const int64_t n = R / p.TH, ty = R % p.TH;
      const float *dk = dy + (n * p.K + k) * p.OH * OW;
      for (int i = 0; i < kM; ++i) {
        const int64_t h = kM * ty + i;
        if (h >= p.OH) {
          for (int j = 0; j < kM; ++j) std::memset(ph[i][j], 0, sizeof(float) * TW);
          continue;
        }
        const float *row = dk + h * OW;
        for (int64_t q = 0; q < full; ++q)
#pragma GCC unroll 4
          for (int j = 0; j < kM; ++j) ph[i][j][q] = row[kM * q + j];
        for (int j = 0; full < TW && j < kM; ++j) ph[i][j][full] = kM * full + j < OW ? row[kM * full + j] : 0.0f;
      }
      float *out = Y + k * p.tbp + (R - base) * TW;
      int64_t tx = 0;
      for (; tx + L <= TW; tx += L) GradRowTiles<kM, T>(ph, tx, out, plane);
      for (; L > 8 && tx + 8 <= TW; tx += 8) GradRowTiles<kM, F8>(ph, tx, out, plane);
      for (; tx < TW; ++tx) GradRowTiles<kM, float>(ph, tx, out, plane);
    }
}

struct GradWindow {  // the output gradient's m x m windows: A z A^T
  template <int kM, class T> static VZ_INLINE void Transform(const T *z, T *v) { GradTile<kM>(z, v); }
};

template <int kM, class T>
VZ_INLINE void GradTilesT(const Plan &p, const float *dy, int64_t R0, int64_t R1, int64_t base, float *Y, float *buf) {
  if (p.gather)
    GatherTilesT<kM, kM, GradWindow, T>(p, dy, p.K, p.OH, p.OW, 0, 0, R0, R1, base, Y, p.y_plane(),
                                        reinterpret_cast<int32_t *>(buf));
  else
    GradRowsT<kM, T>(p, dy, R0, R1, base, Y, buf);
}

// VT[xi][t][c] = V[xi][c][t] (zero for c >= C) and YP[xi][kb][t][r] = Y[xi][kb * mr + r][t] (zero for
// k >= K), for the positions [xi0, xi1): the layouts of the micro-kernel's operands, reducing over tiles.
VZ_INLINE void TransposeT(const Plan &p, const float *V, const float *Y, float *VT, float *YP, int xi0, int xi1) {
  const int64_t n = p.tbp, Cp = p.Cp(), mr = p.mr, kblocks = p.Kp / p.mr;
  for (int xi = xi0; xi < xi1; ++xi) {
    const float *v = V + xi * p.v_plane(), *y = Y + xi * p.y_plane();
    float *vt = VT + xi * p.vt_plane(), *yp = YP + xi * p.yp_plane();
    for (int64_t t0 = 0; t0 < n; t0 += 16)  // 16 x 16 tiles: a cache line of each row
      for (int64_t c0 = 0; c0 < Cp; c0 += 16)
        for (int64_t t = t0; t < t0 + 16; ++t)
#pragma omp simd
          for (int64_t c = c0; c < c0 + 16; ++c) vt[t * Cp + c] = c < p.C ? v[c * n + t] : 0.0f;
    for (int64_t kb = 0; kb < kblocks; ++kb)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < mr; ++r) {
          const int64_t k = kb * mr + r;
          yp[(kb * n + t) * mr + r] = k < p.K ? y[k * n + t] : 0.0f;
        }
  }
}

// M[xi][k][c] (+)= sum_t Y[xi][k][t] V[xi][c][t] for the (position, channel block) pairs [q0, q1), from the
// transposed operands: the forward's micro-kernel, reducing over the block's tiles.
VZ_INLINE void WeightGemmT(const Plan &p, const float *VT, const float *YP, float *M, int64_t q0, int64_t q1,
                           bool add) {
  const int64_t kblocks = p.Kp / p.mr, Cp = p.Cp();
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t xi = q / kblocks, kb = q % kblocks;
    const float *u = YP + xi * p.yp_plane() + kb * p.tbp * p.mr, *v = VT + xi * p.vt_plane();
    float *m = M + xi * p.w_plane() + kb * p.mr * Cp;
    for (int64_t c = 0; c < Cp; c += p.nr) {
      if (p.isa == kAvx512)
        Kernel512(p.tbp, u, v + c, Cp, m + c, Cp, add);
      else
        Kernel256(p.tbp, u, v + c, Cp, m + c, Cp, add);
    }
  }
}

// dw[k][c] = G^T M[.][k][c] G (3 x 3) for the output channels [k0, k1); lanes over the input channels.
template <int kM, class T>
VZ_INLINE void WeightTileT(const Plan &p, const float *M, int64_t k, int64_t c, float *dw) {
  constexpr int A = kM + 2, L = Lanes<T>::n;
  T mv[A * A], t[3 * A], col[A], g[3], out[9];
#pragma GCC unroll 36
  for (int xi = 0; xi < A * A; ++xi) mv[xi] = Load<T>(M + xi * p.w_plane() + k * p.Cp() + c);
#pragma GCC unroll 6
  for (int b = 0; b < A; ++b) {  // G^T M: each column
#pragma GCC unroll 6
    for (int a = 0; a < A; ++a) col[a] = mv[a * A + b];
    Transforms<kM>::Gt(col, g);
    for (int i = 0; i < 3; ++i) t[i * A + b] = g[i];
  }
  for (int i = 0; i < 3; ++i) {  // (G^T M) G: each row
    Transforms<kM>::Gt(t + i * A, g);
    for (int j = 0; j < 3; ++j) out[i * 3 + j] = g[j];
  }
  alignas(64) float lanes[9][L];
  for (int i = 0; i < 9; ++i) Store(lanes[i], out[i]);
  const int count = int(std::min<int64_t>(L, p.C - c));
  for (int l = 0; l < count; ++l)
    for (int i = 0; i < 9; ++i) dw[((k * p.C + c + l) * 9) + i] = lanes[i][l];
}

template <int kM, class T>
VZ_INLINE void WeightOutputT(const Plan &p, const float *M, int64_t k0, int64_t k1, float *dw) {
  constexpr int L = Lanes<T>::n;
  for (int64_t k = k0; k < k1; ++k) {
    int64_t c = 0;
    for (; c + L <= p.C; c += L) WeightTileT<kM, T>(p, M, k, c, dw);
    for (; c < p.C; ++c) WeightTileT<kM, float>(p, M, k, c, dw);
  }
}

// The weight gradient on the threads of the enclosing parallel region (every thread calls it). Whole: the
// buffers V, Y, VT, YP and M shared. Blocked: V, Y, VT, YP and M the thread's own (M its partial sums),
// partials[thread] receives M, and thread 0's M ends up holding the total.
template <int kM, class T>
VZ_INLINE void RunWeightsT(const Plan &p, const float *x, const float *dy, float *dw, float *V, float *Y, float *VT,
                           float *YP, float *M, float *buf, float **partials) {
  const int64_t total_rows = p.N * p.TH, positions = p.positions(), pairs = positions * (p.Kp / p.mr);
  const int threads = omp_get_num_threads(), tid = omp_get_thread_num();
  if (p.whole) {
    int64_t R0, R1;
    ThreadRows<T>(p, &R0, &R1);
    if (R0 < R1) {
      InputT<kM, T>(p, x, R0, R1, 0, V, buf);
      GradTilesT<kM, T>(p, dy, R0, R1, 0, Y, buf);
    }
    if (tid == threads - 1) {
      ZeroColumns(p, V, p.C, p.v_plane(), total_rows * p.TW);
      ZeroColumns(p, Y, p.K, p.y_plane(), total_rows * p.TW);
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int xi = 0; xi < positions; ++xi) TransposeT(p, V, Y, VT, YP, xi, xi + 1);
#pragma omp for schedule(static)
    for (int64_t q = 0; q < pairs; ++q) WeightGemmT(p, VT, YP, M, q, q + 1, false);
  } else {
    partials[tid] = M;
    bool first = true;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.blocks; ++b) {
      const int64_t R0 = b * p.rows, R1 = std::min(R0 + p.rows, total_rows), used = (R1 - R0) * p.TW;
      InputT<kM, T>(p, x, R0, R1, R0, V, buf);
      ZeroColumns(p, V, p.C, p.v_plane(), used);
      GradTilesT<kM, T>(p, dy, R0, R1, R0, Y, buf);
      ZeroColumns(p, Y, p.K, p.y_plane(), used);
      TransposeT(p, V, Y, VT, YP, 0, int(positions));
      WeightGemmT(p, VT, YP, M, 0, pairs, !first);
      first = false;
    }
    if (first)  // no block for this thread: its partial sums are zero
      for (int xi = 0; xi < positions; ++xi) std::memset(M + xi * p.w_plane(), 0, sizeof(float) * p.Kp * p.Cp());
#pragma omp barrier
    float *total = partials[0];  // thread 0's M += the others'
    const int64_t count = positions * int64_t(p.w_plane());
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i)
      for (int t = 1; t < threads; ++t) total[i] += partials[t][i];
    M = total;
  }
  // (the omp for's barrier: M is complete)
#pragma omp for schedule(static)
  for (int64_t k = 0; k < p.K; ++k) WeightOutputT<kM, T>(p, M, k, k + 1, dw);
}

#undef VZ_INLINE

__attribute__((target("avx512f"))) inline void Run512(const Plan &p, const float *w, bool flip, const float *x,
                                                       const float *bias, bool relu, float *y, float *U, float *V,
                                                       float *M, float *buf) {
  if (p.m == 4)
    RunT<4, 8, F16>(p, w, flip, x, bias, relu, y, U, V, M, buf);
  else
    RunT<2, 8, F16>(p, w, flip, x, bias, relu, y, U, V, M, buf);
}

__attribute__((target("avx2,fma"))) inline void Run256(const Plan &p, const float *w, bool flip, const float *x,
                                                        const float *bias, bool relu, float *y, float *U, float *V,
                                                        float *M, float *buf) {
  if (p.m == 4)
    RunT<4, 6, F8>(p, w, flip, x, bias, relu, y, U, V, M, buf);
  else
    RunT<2, 6, F8>(p, w, flip, x, bias, relu, y, U, V, M, buf);
}

// The buffers of a weight-gradient run: shared when p.whole, else the thread's own (buf always).
struct WeightBuffers {
  float *V, *Y, *VT, *YP, *M, *buf;
};

__attribute__((target("avx512f"))) inline void RunWeights512(const Plan &p, const float *x, const float *dy, float *dw,
                                                              const WeightBuffers &b, float **partials) {
  if (p.m == 4)
    RunWeightsT<4, F16>(p, x, dy, dw, b.V, b.Y, b.VT, b.YP, b.M, b.buf, partials);
  else
    RunWeightsT<2, F16>(p, x, dy, dw, b.V, b.Y, b.VT, b.YP, b.M, b.buf, partials);
}

__attribute__((target("avx2,fma"))) inline void RunWeights256(const Plan &p, const float *x, const float *dy,
                                                               float *dw, const WeightBuffers &b, float **partials) {
  if (p.m == 4)
    RunWeightsT<4, F8>(p, x, dy, dw, b.V, b.Y, b.VT, b.YP, b.M, b.buf, partials);
  else
    RunWeightsT<2, F8>(p, x, dy, dw, b.V, b.Y, b.VT, b.YP, b.M, b.buf, partials);
}

// The weight gradient of a MakeWeightPlan plan on the threads of the enclosing parallel region (every
// thread calls it), with its buffers; partials: an array of one pointer per thread.
inline void RunWeights(const Plan &p, const float *x, const float *dy, float *dw, const WeightBuffers &b,
                       float **partials) {
  if (p.isa == kAvx512)
    RunWeights512(p, x, dy, dw, b, partials);
  else
    RunWeights256(p, x, dy, dw, b, partials);
}

// Runs the plan on the threads of the enclosing parallel region (every thread calls it, with the shared U,
// and V, M the shared ones when p.whole, else its own; buf its own).
inline void Run(const Plan &p, const float *w, bool flip, const float *x, const float *bias, bool relu, float *y,
                float *U, float *V, float *M, float *buf) {
  if (p.isa == kAvx512)
    Run512(p, w, flip, x, bias, relu, y, U, V, M, buf);
  else
    Run256(p, w, flip, x, bias, relu, y, U, V, M, buf);
}

}  // namespace vzwino
