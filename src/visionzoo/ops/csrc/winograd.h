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
// M_xi[k, t] = sum_c U_xi[k, c] V_xi[c, t] over the output channels k and tiles t: 16 GEMMs, run by a
// register-blocked micro-kernel. Everything is compiled twice, for AVX-512 and for AVX2+FMA (function
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
// Numerics: the transforms' additions and halvings change the rounding, not the result: outputs agree
// with the direct convolution to float32 rounding (relative ~1e-6; tests/test_ops_conv.py).
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vzwino {

enum Isa { kNone = 0, kAvx2 = 1, kAvx512 = 2 };

// One convolution y[N, K, OH, OW] = conv3x3(x[N, C, H, W]), stride 1, padding (pt top, pl left; the
// bottom and right padding follow from OH and OW), and how it is scheduled.
struct Plan {
  int64_t N = 0, C = 0, H = 0, W = 0, K = 0, OH = 0, OW = 0;
  int pt = 0, pl = 0;
  int isa = kNone;
  int mr = 0, nr = 0;      // micro-kernel: mr output channels x nr tiles
  int64_t Kp = 0;          // K rounded up to mr
  int64_t TH = 0, TW = 0;  // 2x2 output tiles per column / row
  int64_t rows = 0;        // tile rows per block
  int64_t tbp = 0;         // tiles per block, rounded up to nr (the row stride of V and M)
  int64_t blocks = 0;
  bool whole = false;      // one block of every tile, each phase shared between the threads
  bool gather = false;     // input transform by gathers over 16 tiles (rows of 1-3 tiles) instead of along rows
  // V and M hold 16 planes, one per xi, a cache line apart beyond their size: planes a power of two
  // apart would map the 16 streams of the transforms to the same L1 set (4K aliasing)
  size_t v_plane() const { return size_t(C) * tbp + 16; }
  size_t m_plane() const { return size_t(Kp) * tbp + 16; }
  size_t u_floats() const { return size_t(16) * Kp * C; }
  size_t v_floats() const { return 16 * v_plane(); }
  size_t m_floats() const { return 16 * m_plane(); }
  size_t row_floats() const { return size_t(10) * (TW + 1) + 256; }  // row buffers, or 16 x 16 offsets
};

constexpr int64_t kWholeBytes = int64_t(16) << 20;  // V of every tile up to this size: the whole schedule

// The plan for a geometry, or a plan with isa == kNone when Winograd does not apply.
inline Plan MakePlan(int isa, int threads, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH,
                     int64_t OW, int pt, int pl) {
  Plan p;
  const int64_t pb = OH + 2 - pt - H, pr = OW + 2 - pl - W;
  if (isa == kNone || N <= 0 || C <= 0 || K <= 0 || OH <= 0 || OW <= 0 || pt < 0 || pl < 0 || pt > 2 || pl > 2 ||
      pb < 0 || pb > 2 || pr < 0 || pr > 2)
    return p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.OH = OH, p.OW = OW, p.pt = pt, p.pl = pl, p.isa = isa;
  p.mr = isa == kAvx512 ? 8 : 6;
  p.nr = isa == kAvx512 ? 32 : 16;
  p.Kp = (K + p.mr - 1) / p.mr * p.mr;
  p.TH = (OH + 1) / 2, p.TW = (OW + 1) / 2;
  // gathers index x with 32-bit offsets
  p.gather = p.TW < 4 && N * C * H * W < (int64_t(1) << 31);
  const int64_t total_rows = N * p.TH, tiles = total_rows * p.TW;
  const int64_t whole_tbp = (tiles + p.nr - 1) / p.nr * p.nr;
  p.whole = int64_t(sizeof(float)) * 16 * C * whole_tbp <= kWholeBytes &&
            int64_t(sizeof(float)) * 16 * p.Kp * whole_tbp <= kWholeBytes;
  if (p.whole) {
    p.rows = total_rows, p.tbp = whole_tbp, p.blocks = 1;
    return p;
  }
  // about 1 MB of transformed input per block (16 x C x tiles floats), at least one micro-kernel width
  const int64_t target = std::max<int64_t>(p.nr, std::min<int64_t>(256, 16384 / C));
  p.rows = std::max<int64_t>(1, std::min<int64_t>(total_rows, target / p.TW));
  while (p.rows > 1 && (total_rows + p.rows - 1) / p.rows < 2 * threads) p.rows = (p.rows + 1) / 2;
  p.tbp = (p.rows * p.TW + p.nr - 1) / p.nr * p.nr;
  p.blocks = (total_rows + p.rows - 1) / p.rows;
  return p;
}

// ---------------------------------------------------------------------------------------------------
// The phases, as always-inline templates: each is compiled into the ISA-specific functions below that
// call it (the vector loops are vectorised for that ISA), never on its own.
// ---------------------------------------------------------------------------------------------------
#define VZ_INLINE __attribute__((always_inline)) inline

// U[xi][k / mr][c][k % mr] = (G g G^T)[xi] for the kernel g of output channel k and input channel c, for
// the channel blocks [kb0, kb1): forward, g = w[k, c] with w [K, C, 3, 3]; backward data (flip),
// g = rot180(w[c, k]) with w [C, K, 3, 3] (the forward layer's weights: its output channels are this
// operation's input channels). Zero rows pad K to Kp. Vectorised over the mr channels of a block.
template <int kMr>
VZ_INLINE void TransformWeightsT(const Plan &p, const float *w, bool flip, float *U, int64_t kb0, int64_t kb1) {
  const int64_t kblocks = p.Kp / kMr;
  const size_t plane = size_t(kblocks) * p.C * kMr;
  for (int64_t kb = kb0; kb < kb1; ++kb)
    for (int64_t c = 0; c < p.C; ++c) {
      float g[9][kMr];
      for (int r = 0; r < kMr; ++r) {
        const int64_t k = kb * kMr + r;
        if (k >= p.K) {
          for (int i = 0; i < 9; ++i) g[i][r] = 0.0f;
        } else if (!flip) {
          const float *src = w + (k * p.C + c) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = src[i];
        } else {
          const float *src = w + (c * p.K + k) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = src[8 - i];
        }
      }
      float *out = U + (kb * p.C + c) * kMr;
#pragma omp simd
      for (int r = 0; r < kMr; ++r) {
        float t[4][3];  // G g: 4 rows of 3
        for (int b = 0; b < 3; ++b) {
          const float g0 = g[b][r], g1 = g[3 + b][r], g2 = g[6 + b][r];
          t[0][b] = g0, t[1][b] = 0.5f * (g0 + g1 + g2), t[2][b] = 0.5f * (g0 - g1 + g2), t[3][b] = g2;
        }
        for (int a = 0; a < 4; ++a) {  // (G g) G^T
          out[(4 * a) * plane + r] = t[a][0];
          out[(4 * a + 1) * plane + r] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
          out[(4 * a + 2) * plane + r] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
          out[(4 * a + 3) * plane + r] = t[a][2];
        }
      }
    }
}

// The input transform of one 4x4 patch per lane: v[xi] = (B^T d B)[xi] from d[a][b].
#define VZ_BTDB(d, v)                                                                                   \
  do {                                                                                                  \
    float t_[4][4];                                                                                     \
    for (int b_ = 0; b_ < 4; ++b_) {                                                                    \
      t_[0][b_] = d[0][b_] - d[2][b_], t_[1][b_] = d[1][b_] + d[2][b_];                                 \
      t_[2][b_] = d[2][b_] - d[1][b_], t_[3][b_] = d[1][b_] - d[3][b_];                                 \
    }                                                                                                   \
    for (int a_ = 0; a_ < 4; ++a_) {                                                                    \
      v[4 * a_] = t_[a_][0] - t_[a_][2], v[4 * a_ + 1] = t_[a_][1] + t_[a_][2];                         \
      v[4 * a_ + 2] = t_[a_][2] - t_[a_][1], v[4 * a_ + 3] = t_[a_][1] - t_[a_][3];                     \
    }                                                                                                   \
  } while (0)

// V[xi][c][j] = (B^T d B)[xi] for the tile rows [R0, R1) and every input channel, j = (R - base) * TW + tx
// the tile's column in V (row stride p.tbp). Along rows: the 4 input rows of a tile row are split into
// their even and odd columns of the padded row (zero outside the image; a loop of pairs, which the
// compiler turns into loads and shuffles), then each tile's patch is e[tx], o[tx], e[tx + 1], o[tx + 1]:
// unit-stride loops over the row's tiles.
VZ_INLINE void InputRowsT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V, float *buf) {
  const int64_t TW = p.TW, W = p.W, n2 = TW + 1;  // 2 (TW + 1) padded columns per tile row
  float *e[4], *o[4];
  for (int a = 0; a < 4; ++a) e[a] = buf + 2 * a * n2, o[a] = e[a] + n2;
  const size_t plane = p.v_plane();
  // pairs (2q - pl, 2q + 1 - pl) inside [0, W)
  const int64_t lo = std::min<int64_t>(n2, (p.pl + 1) / 2);
  const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(n2, W + p.pl - 2 >= 0 ? (W + p.pl - 2) / 2 + 1 : 0));
  for (int64_t c = 0; c < p.C; ++c)  // channel by channel: each plane's rows are then read in order
    for (int64_t R = R0; R < R1; ++R) {
      const int64_t n = R / p.TH, ty = R % p.TH;
      const float *xc = x + (n * p.C + c) * p.H * W;
      for (int a = 0; a < 4; ++a) {
        const int64_t h = 2 * ty - p.pt + a;
        float *ea = e[a], *oa = o[a];
        if (h < 0 || h >= p.H) {
          std::memset(ea, 0, sizeof(float) * 2 * n2);  // e[a] and o[a] are adjacent
          continue;
        }
        const float *row = xc + h * W;
        for (int64_t q = 0; q < n2; q = q + 1 == lo ? hi : q + 1) {  // the edges, bounds checked
          if (q >= lo && q < hi) break;  // (lo == hi: no interior, all edges)
          const int64_t col = 2 * q - p.pl;
          ea[q] = col >= 0 && col < W ? row[col] : 0.0f;
          oa[q] = col + 1 >= 0 && col + 1 < W ? row[col + 1] : 0.0f;
        }
        const float *src = row + (2 * lo - p.pl);
        float *ei = ea + lo, *oi = oa + lo;
        for (int64_t q = 0; q < hi - lo; ++q) ei[q] = src[2 * q], oi[q] = src[2 * q + 1];
      }
      float *out = V + c * p.tbp + (R - base) * TW;
      const float *e0 = e[0], *e1 = e[1], *e2 = e[2], *e3 = e[3], *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
#pragma omp simd
      for (int64_t tx = 0; tx < TW; ++tx) {
        const float d[4][4] = {{e0[tx], o0[tx], e0[tx + 1], o0[tx + 1]},
                               {e1[tx], o1[tx], e1[tx + 1], o1[tx + 1]},
                               {e2[tx], o2[tx], e2[tx + 1], o2[tx + 1]},
                               {e3[tx], o3[tx], e3[tx + 1], o3[tx + 1]}};
        float v[16];
        VZ_BTDB(d, v);
        for (int xi = 0; xi < 16; ++xi) out[xi * plane + tx] = v[xi];
      }
    }
}

// The same by gathers, for narrow rows (a few tiles each, where the loops above would run one or two
// iterations): 16 tiles at a time, each lane one tile, its 16 input values loaded through offsets
// computed once for all channels (-1 in the padding).
VZ_INLINE void InputGatherT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V,
                            int32_t *offsets) {
  const size_t plane = p.v_plane();
  const int64_t first = R0 * p.TW, last = R1 * p.TW, HW = p.H * p.W;
  for (int64_t t0 = first; t0 < last; t0 += 16) {
    const int lanes = int(std::min<int64_t>(16, last - t0));
    int32_t(*off)[16] = reinterpret_cast<int32_t(*)[16]>(offsets);  // [a * 4 + b][lane]
    for (int l = 0; l < 16; ++l) {
      const int64_t t = t0 + std::min(l, lanes - 1), R = t / p.TW, tx = t % p.TW, n = R / p.TH, ty = R % p.TH;
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const int64_t hi = 2 * ty - p.pt + a, wi = 2 * tx - p.pl + b;
          off[4 * a + b][l] = hi >= 0 && hi < p.H && wi >= 0 && wi < p.W ? int32_t(n * p.C * HW + hi * p.W + wi) : -1;
        }
    }
    float *out = V + (t0 - base * p.TW);
    for (int64_t c = 0; c < p.C; ++c) {
      const float *xc = x + c * HW;
      float v[16][16];
#pragma omp simd
      for (int l = 0; l < 16; ++l) {
        float d[4][4], vl[16];
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b) {
            const int32_t o = off[4 * a + b][l];
            d[a][b] = o >= 0 ? xc[o] : 0.0f;
          }
        VZ_BTDB(d, vl);
        for (int xi = 0; xi < 16; ++xi) v[xi][l] = vl[xi];
      }
      for (int xi = 0; xi < 16; ++xi) std::memcpy(out + xi * plane + c * p.tbp, v[xi], sizeof(float) * lanes);
    }
  }
}

// y tiles = A^T M A (+ bias, then ReLU when asked) for output channels [k0, k1) of the tile rows [R0, R1),
// written into y [N, K, OH, OW]; M's column of tile (R, tx) is (R - base) * TW + tx.
VZ_INLINE void OutputT(const Plan &p, const float *M, int64_t R0, int64_t R1, int64_t base, int64_t k0, int64_t k1,
                       const float *bias, bool relu, float *y, float *buf) {
  const int64_t TW = p.TW, full = p.OW / 2;  // tiles with both output columns inside the output
  const size_t plane = p.m_plane();
  float *y00 = buf, *y01 = buf + TW, *y10 = buf + 2 * TW, *y11 = buf + 3 * TW;
  for (int64_t k = k0; k < k1; ++k) {
    const float b = bias != nullptr ? bias[k] : 0.0f;
    for (int64_t R = R0; R < R1; ++R) {
      const int64_t n = R / p.TH, ty = R % p.TH;
      const float *m = M + k * p.tbp + (R - base) * TW;
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
      for (int dr = 0; dr < 2 && 2 * ty + dr < p.OH; ++dr) {
        float *row = yk + (2 * ty + dr) * p.OW;
        const float *left = dr == 0 ? y00 : y10, *right = dr == 0 ? y01 : y11;
        for (int64_t tx = 0; tx < full; ++tx) row[2 * tx] = left[tx], row[2 * tx + 1] = right[tx];
        if (full < TW) row[2 * full] = left[full];
      }
    }
  }
}

// m[r][0..nr) = sum_c u[c][r] * v[c][0..nr) for r < mr: the GEMMs' register-blocked micro-kernels.
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

// M[xi][k][j] = sum_c U[xi][k][c] V[xi][c][j] for the (xi, channel block) pairs [q0, q1) (q = xi * Kp / mr
// + kb), every column.
VZ_INLINE void GemmT(const Plan &p, const float *U, const float *V, float *M, int64_t q0, int64_t q1) {
  const int64_t kblocks = p.Kp / p.mr;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t xi = q / kblocks, kb = q % kblocks;
    const float *u = U + (xi * kblocks + kb) * p.C * p.mr, *v = V + xi * p.v_plane();
    float *m = M + xi * p.m_plane() + kb * p.mr * p.tbp;
    for (int64_t j = 0; j < p.tbp; j += p.nr) {
      if (p.isa == kAvx512)
        Kernel512(p.C, u, v + j, p.tbp, m + j, p.tbp);
      else
        Kernel256(p.C, u, v + j, p.tbp, m + j, p.tbp);
    }
  }
}

// The tail columns of V past its tiles hold zeros (their products are never read; no stale values that
// might be denormal or NaN and slow the micro-kernel down).
VZ_INLINE void ZeroTail(const Plan &p, float *V, int64_t used) {
  if (used < p.tbp)
    for (int xi = 0; xi < 16; ++xi)
      for (int64_t c = 0; c < p.C; ++c) std::memset(V + xi * p.v_plane() + c * p.tbp + used, 0, sizeof(float) * (p.tbp - used));
}

VZ_INLINE void InputT(const Plan &p, const float *x, int64_t R0, int64_t R1, int64_t base, float *V, float *buf) {
  if (p.gather)
    InputGatherT(p, x, R0, R1, base, V, reinterpret_cast<int32_t *>(buf));
  else
    InputRowsT(p, x, R0, R1, base, V, buf);
}

// One whole convolution on the threads of the enclosing parallel region (every thread calls it): U shared,
// V, M and buf the calling thread's own (blocked) or V and M shared (whole; buf still the thread's).
template <int kMr>
VZ_INLINE void RunT(const Plan &p, const float *w, bool flip, const float *x, const float *bias, bool relu, float *y,
                    float *U, float *V, float *M, float *buf) {
  const int64_t kblocks = p.Kp / kMr;
#pragma omp for schedule(static)
  for (int64_t kb = 0; kb < kblocks; ++kb) TransformWeightsT<kMr>(p, w, flip, U, kb, kb + 1);
  // (the omp for's barrier: U is complete)
  const int64_t total_rows = p.N * p.TH;
  if (!p.whole) {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.blocks; ++b) {
      const int64_t R0 = b * p.rows, R1 = std::min(R0 + p.rows, total_rows);
      InputT(p, x, R0, R1, R0, V, buf);
      ZeroTail(p, V, (R1 - R0) * p.TW);
      GemmT(p, U, V, M, 0, 16 * kblocks);
      OutputT(p, M, R0, R1, R0, 0, p.K, bias, relu, y, buf);
    }
    return;
  }
  const int threads = omp_get_num_threads(), tid = omp_get_thread_num();
  // input transform: tile rows in contiguous shares, each a whole number of 16-tile gathers
  const int64_t step = p.gather ? std::max<int64_t>(1, 16 / p.TW) : 1;
  const int64_t chunks = (total_rows + step - 1) / step;
  const int64_t c0 = chunks * tid / threads, c1 = chunks * (tid + 1) / threads;
  if (c0 < c1) InputT(p, x, c0 * step, std::min(c1 * step, total_rows), 0, V, buf);
  if (tid == threads - 1) ZeroTail(p, V, total_rows * p.TW);
#pragma omp barrier
#pragma omp for schedule(static)
  for (int64_t q = 0; q < 16 * kblocks; ++q) GemmT(p, U, V, M, q, q + 1);
#pragma omp for schedule(static)
  for (int64_t k = 0; k < p.K; ++k) OutputT(p, M, 0, total_rows, 0, k, k + 1, bias, relu, y, buf);
}

#undef VZ_INLINE

__attribute__((target("avx512f"))) inline void Run512(const Plan &p, const float *w, bool flip, const float *x,
                                                       const float *bias, bool relu, float *y, float *U, float *V,
                                                       float *M, float *buf) {
  RunT<8>(p, w, flip, x, bias, relu, y, U, V, M, buf);
}

__attribute__((target("avx2,fma"))) inline void Run256(const Plan &p, const float *w, bool flip, const float *x,
                                                        const float *bias, bool relu, float *y, float *U, float *V,
                                                        float *M, float *buf) {
  RunT<6>(p, w, flip, x, bias, relu, y, U, V, M, buf);
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
