// Winograd F(2x2, 3x3) convolution for 3x3, stride-1 layers: the forward pass (optionally with a bias
// and a ReLU) and the backward-data pass, on plain NCHW/OIHW float32 tensors. Included by
// conv2d_cpu.cc, where it is one of the formulations each geometry times (docs/performance.md).
//
// Why: oneDNN 3.10 as MindSpore ships it has no Winograd convolution, and its direct kernels spend 36
// multiply-adds per 2x2 output tile and input channel on a 3x3 kernel. Winograd's F(2x2, 3x3) spends 16
// (2.25x fewer), at the price of transforming the inputs, weights and outputs: a win on VGG-style layers,
// where nearly every convolution is 3x3 with stride 1 and many channels.
//
// With d a 4x4 input tile, g a 3x3 kernel (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016):
//   U = G g G^T (4x4), V = B^T d B (4x4), M = sum over input channels of U (.) V, y = A^T M A (2x2)
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// The sum over input channels is, for each of the 16 positions xi of the 4x4 tile, a matrix product
// M_xi[k, t] = sum_c U_xi[k, c] V_xi[c, t] over the output channels k and tiles t: 16 GEMMs, run here by
// a register-blocked micro-kernel (AVX-512 or AVX2+FMA, chosen by the caller from the ISA the private
// oneDNN dispatches to, so a user's ONEDNN_MAX_CPU_ISA cap holds here too).
//
// The tiles are processed in blocks (a few rows of tiles, ~1 MB of transformed input), one block per
// OpenMP thread at a time: the block's V and M stay in the core's L2 cache between the input transform,
// the GEMMs and the output transform. The transformed weights U are computed once per call and shared.
//
// Backward data of a stride-1 3x3 convolution with padding (top, left) = (pt, pl) is the same operation
// on dy with the kernel rotated by 180 degrees and its two channel axes swapped, with padding
// (2 - pt, 2 - pl): padding up to 2 on each side is supported.
//
// Numerics: the transforms' additions and halvings change the rounding, not the result: outputs agree
// with the direct convolution to float32 rounding (relative ~1e-6; tests/test_ops_conv.py).
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace vzwino {

enum Isa { kNone = 0, kAvx2 = 1, kAvx512 = 2 };

// One convolution y[N, K, OH, OW] = conv3x3(x[N, C, H, W]), stride 1, padding (pt top, pl left; the
// bottom and right padding follow from OH and OW), and how it is blocked.
struct Plan {
  int64_t N = 0, C = 0, H = 0, W = 0, K = 0, OH = 0, OW = 0;
  int pt = 0, pl = 0;
  int isa = kNone;
  int mr = 0, nr = 0;                 // micro-kernel: mr output channels x nr tiles
  int64_t Kp = 0;                     // K rounded up to mr
  int64_t TH = 0, TW = 0;             // 2x2 output tiles per column / row
  int64_t rows = 0;                   // tile rows per block
  int64_t tbp = 0;                    // tiles per block, rounded up to nr (the row stride of V and M)
  int64_t blocks = 0;
  size_t u_floats() const { return size_t(16) * Kp * C; }
  size_t v_floats() const { return size_t(16) * C * tbp; }
  size_t m_floats() const { return size_t(16) * Kp * tbp; }
  size_t row_floats() const { return size_t(8) * (TW + 2); }  // the input transform's row buffers
};

// The plan for a geometry, or a plan with isa == kNone when Winograd does not apply.
inline Plan MakePlan(int isa, int threads, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH,
                     int64_t OW, int pt, int pl) {
  Plan p;
  if (isa == kNone || N <= 0 || C <= 0 || K <= 0 || OH <= 0 || OW <= 0 || pt < 0 || pl < 0 || pt > 2 || pl > 2 ||
      OH + 2 - pt - H > 2 || OW + 2 - pl - W > 2 || OH + 2 - pt - H < 0 || OW + 2 - pl - W < 0)
    return p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.OH = OH, p.OW = OW, p.pt = pt, p.pl = pl, p.isa = isa;
  p.mr = isa == kAvx512 ? 8 : 6;
  p.nr = isa == kAvx512 ? 32 : 16;
  p.Kp = (K + p.mr - 1) / p.mr * p.mr;
  p.TH = (OH + 1) / 2, p.TW = (OW + 1) / 2;
  // about 1 MB of transformed input per block (16 x C x tiles floats), at least one micro-kernel width
  const int64_t target = std::max<int64_t>(p.nr, std::min<int64_t>(256, 16384 / C));
  const int64_t total_rows = N * p.TH;
  p.rows = std::max<int64_t>(1, std::min<int64_t>(total_rows, target / p.TW));
  while (p.rows > 1 && (total_rows + p.rows - 1) / p.rows < 2 * threads) p.rows = (p.rows + 1) / 2;
  p.tbp = (p.rows * p.TW + p.nr - 1) / p.nr * p.nr;
  p.blocks = (total_rows + p.rows - 1) / p.rows;
  return p;
}

// U[xi][k / mr][c][k % mr] = (G g G^T)[xi] for the kernel g of output channel k and input channel c:
// forward, g = w[k, c] with w [K, C, 3, 3]; backward data (flip), g = rot180(w[c, k]) with w [C, K, 3, 3]
// (the forward layer's weights: its output channels are this operation's input channels). Zero rows
// pad K to Kp. Runs on the threads of the enclosing parallel region.
inline void TransformWeights(const Plan &p, const float *w, bool flip, float *U) {
  const int64_t kblocks = p.Kp / p.mr;
#pragma omp for collapse(2) schedule(static)
  for (int64_t kb = 0; kb < kblocks; ++kb)
    for (int64_t c = 0; c < p.C; ++c)
      for (int r = 0; r < p.mr; ++r) {
        const int64_t k = kb * p.mr + r;
        float u[16] = {0};
        if (k < p.K) {
          float g[9];
          if (!flip) {
            std::memcpy(g, w + (k * p.C + c) * 9, sizeof(g));
          } else {
            const float *src = w + (c * p.K + k) * 9;
            for (int i = 0; i < 9; ++i) g[i] = src[8 - i];
          }
          float t[12];  // G g: 4 rows of 3
          for (int b = 0; b < 3; ++b) {
            t[b] = g[b];
            t[3 + b] = 0.5f * (g[b] + g[3 + b] + g[6 + b]);
            t[6 + b] = 0.5f * (g[b] - g[3 + b] + g[6 + b]);
            t[9 + b] = g[6 + b];
          }
          for (int a = 0; a < 4; ++a) {  // (G g) G^T
            const float *row = t + 3 * a;
            u[4 * a] = row[0];
            u[4 * a + 1] = 0.5f * (row[0] + row[1] + row[2]);
            u[4 * a + 2] = 0.5f * (row[0] - row[1] + row[2]);
            u[4 * a + 3] = row[2];
          }
        }
        for (int xi = 0; xi < 16; ++xi) U[((xi * kblocks + kb) * p.C + c) * p.mr + r] = u[xi];
      }
}

// m[r][0..nr) = sum_c u[c][r] * v[c][0..nr) for r < mr: the 16 GEMMs' register-blocked micro-kernels.
// u is packed [C][mr], v has row stride ldv, m row stride ldm; all 64-byte aligned.
__attribute__((target("avx512f"))) inline void Kernel512(int64_t C, const float *u, const float *v, int64_t ldv,
                                                          float *m, int64_t ldm) {
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
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
                                                           float *m, int64_t ldm) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
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

// V[xi][c][j] = (B^T d B)[xi] for the block's tiles j (tile row after tile row) and every input channel.
// The 4 input rows of a tile row are gathered into even and odd columns (zero outside the image), so
// that each step below is a unit-stride loop over the row's tiles.
inline void InputTransform(const Plan &p, const float *x, int64_t row0, int64_t rows, float *V, float *buf) {
  const int64_t TW = p.TW, n2 = TW + 1;  // even/odd columns: 2 * (TW + 1) = the tiles' 2 TW + 2 columns
  float *e[4], *o[4];
  for (int a = 0; a < 4; ++a) e[a] = buf + 2 * a * n2, o[a] = buf + (2 * a + 1) * n2;
  const size_t plane = size_t(p.C) * p.tbp;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t R = row0 + r, n = R / p.TH, ty = R % p.TH;
    for (int64_t c = 0; c < p.C; ++c) {
      const float *xc = x + (n * p.C + c) * p.H * p.W;
      for (int a = 0; a < 4; ++a) {
        const int64_t hi = 2 * ty - p.pt + a;
        if (hi < 0 || hi >= p.H) {
          std::memset(e[a], 0, sizeof(float) * n2);
          std::memset(o[a], 0, sizeof(float) * n2);
          continue;
        }
        const float *row = xc + hi * p.W;
        for (int64_t q = 0; q < n2; ++q) {
          const int64_t w0 = 2 * q - p.pl, w1 = w0 + 1;
          e[a][q] = w0 >= 0 && w0 < p.W ? row[w0] : 0.0f;
          o[a][q] = w1 >= 0 && w1 < p.W ? row[w1] : 0.0f;
        }
      }
      // B^T d: rows t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3 (in place, even and odd columns)
      for (float **s : {e, o}) {
        float *d0 = s[0], *d1 = s[1], *d2 = s[2], *d3 = s[3];
#pragma omp simd
        for (int64_t q = 0; q < n2; ++q) {
          const float a0 = d0[q], a1 = d1[q], a2 = d2[q], a3 = d3[q];
          d0[q] = a0 - a2, d1[q] = a1 + a2, d2[q] = a2 - a1, d3[q] = a1 - a3;
        }
      }
      // (B^T d) B: the same combination along each row, columns 2tx .. 2tx + 3 = e[tx], o[tx], e[tx+1], o[tx+1]
      float *out = V + c * p.tbp + r * TW;
      for (int i = 0; i < 4; ++i) {
        const float *ei = e[i], *oi = o[i];
        float *v0 = out + (4 * i) * plane, *v1 = out + (4 * i + 1) * plane, *v2 = out + (4 * i + 2) * plane,
              *v3 = out + (4 * i + 3) * plane;
#pragma omp simd
        for (int64_t tx = 0; tx < TW; ++tx) {
          v0[tx] = ei[tx] - ei[tx + 1];
          v1[tx] = oi[tx] + ei[tx + 1];
          v2[tx] = ei[tx + 1] - oi[tx];
          v3[tx] = oi[tx] - oi[tx + 1];
        }
      }
    }
  }
  const int64_t used = rows * TW;  // columns past the block's tiles: zeros, not whatever the buffer held
  if (used < p.tbp)
    for (int64_t xc = 0; xc < 16 * p.C; ++xc) std::memset(V + xc * p.tbp + used, 0, sizeof(float) * (p.tbp - used));
}

// y tiles = A^T M A (+ bias, then ReLU when asked) for the block's tiles, written into y [N, K, OH, OW].
inline void OutputTransform(const Plan &p, const float *M, int64_t row0, int64_t rows, const float *bias, bool relu,
                            float *y, float *buf) {
  const int64_t TW = p.TW;
  const size_t plane = size_t(p.Kp) * p.tbp;
  float *y00 = buf, *y01 = buf + TW, *y10 = buf + 2 * TW, *y11 = buf + 3 * TW;
  for (int64_t k = 0; k < p.K; ++k) {
    const float b = bias != nullptr ? bias[k] : 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t R = row0 + r, n = R / p.TH, ty = R % p.TH;
      const float *m = M + k * p.tbp + r * TW;
#pragma omp simd
      for (int64_t tx = 0; tx < TW; ++tx) {
        float s[2][4];  // A^T M: rows m0 + m1 + m2 and m1 - m2 - m3 of each column
        for (int col = 0; col < 4; ++col) {
          const float m0 = m[col * plane + tx], m1 = m[(4 + col) * plane + tx], m2 = m[(8 + col) * plane + tx],
                      m3 = m[(12 + col) * plane + tx];
          s[0][col] = m0 + m1 + m2;
          s[1][col] = m1 - m2 - m3;
        }
        float a = s[0][0] + s[0][1] + s[0][2] + b, bb = s[0][1] - s[0][2] - s[0][3] + b;
        float cc = s[1][0] + s[1][1] + s[1][2] + b, d = s[1][1] - s[1][2] - s[1][3] + b;
        if (relu) a = std::max(a, 0.0f), bb = std::max(bb, 0.0f), cc = std::max(cc, 0.0f), d = std::max(d, 0.0f);
        y00[tx] = a, y01[tx] = bb, y10[tx] = cc, y11[tx] = d;
      }
      float *yk = y + (n * p.K + k) * p.OH * p.OW;
      for (int dr = 0; dr < 2; ++dr) {
        const int64_t oh = 2 * ty + dr;
        if (oh >= p.OH) break;
        float *row = yk + oh * p.OW;
        const float *left = dr == 0 ? y00 : y10, *right = dr == 0 ? y01 : y11;
        const int64_t full = p.OW / 2;  // tiles with both columns inside the output
        for (int64_t tx = 0; tx < full; ++tx) row[2 * tx] = left[tx], row[2 * tx + 1] = right[tx];
        if (full < TW) row[2 * full] = left[full];
      }
    }
  }
}

// The 16 GEMMs of one block: M[xi][k][j] = sum_c U[xi][k][c] V[xi][c][j].
inline void BlockGemm(const Plan &p, const float *U, const float *V, float *M) {
  const int64_t kblocks = p.Kp / p.mr;
  for (int xi = 0; xi < 16; ++xi) {
    const float *u = U + size_t(xi) * p.Kp * p.C, *v = V + size_t(xi) * p.C * p.tbp;
    float *m = M + size_t(xi) * p.Kp * p.tbp;
    for (int64_t j = 0; j < p.tbp; j += p.nr)
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        const float *ub = u + kb * p.C * p.mr;
        float *mb = m + kb * p.mr * p.tbp + j;
        if (p.isa == kAvx512)
          Kernel512(p.C, ub, v + j, p.tbp, mb, p.tbp);
        else
          Kernel256(p.C, ub, v + j, p.tbp, mb, p.tbp);
      }
  }
}

// One block (tile rows [b * rows, ...)) from input x to output y, with the thread's V, M and row buffers.
inline void RunBlock(const Plan &p, int64_t block, const float *U, const float *x, const float *bias, bool relu,
                     float *y, float *V, float *M, float *buf) {
  const int64_t row0 = block * p.rows, rows = std::min(p.rows, p.N * p.TH - row0);
  InputTransform(p, x, row0, rows, V, buf);
  BlockGemm(p, U, V, M);
  OutputTransform(p, M, row0, rows, bias, relu, y, buf);
}

}  // namespace vzwino
