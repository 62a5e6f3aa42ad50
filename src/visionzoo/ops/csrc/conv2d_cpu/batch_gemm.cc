// The batched-GEMM weight gradient (batch_gemm.h).
#include "batch_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "dnnl_stream.h"
#include "scratch.h"

namespace vzconv {
namespace {
std::atomic<size_t> g_max_column_bytes{size_t(64) << 20};
}  // namespace

size_t SetMaxColumnBytes(size_t bytes) { return g_max_column_bytes.exchange(bytes); }

int64_t ImagesPerGemm(const Geometry &g) {
  const size_t per_image = sizeof(float) * size_t(g.C * g.KH * g.KW) * size_t(g.OH * g.OW);
  return std::max<int64_t>(1, std::min<int64_t>(g.N, int64_t(g_max_column_bytes.load() / per_image)));
}

std::pair<size_t, size_t> BatchGemmBufferBytes(const Geometry &g) {
  const size_t inner = sizeof(float) * size_t(ImagesPerGemm(g) * g.OH * g.OW);
  return {inner * size_t(g.C * g.KH * g.KW), inner * size_t(g.O)};
}

void TouchBatchGemm(const Geometry &g) {
  const auto bytes = BatchGemmBufferBytes(g);
  ScratchBuffer(Slot::kColumns).Touch(bytes.first);
  ScratchBuffer(Slot::kTransposed).Touch(bytes.second);
}

// dw[O, C*KH*KW] = sum over groups of images of dyt[O, n*OH*OW] x col[C*KH*KW, n*OH*OW]^T, where
// dyt[o, m*OH*OW + p] = dy[m, o, p] and col[(c, a, b), m*OH*OW + i*OW + j] = x[m, c, i*sh - pt + a,
// j*sw - pl + b] (0 in the padding), m running over the group's images.
bool BatchGemmBackwardWeights(const Geometry &g, const float *x, const float *dy, float *dw) {
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, O = g.O, KH = g.KH, KW = g.KW, OH = g.OH, OW = g.OW;
  const int64_t P = OH * OW, CK = C * KH * KW, group = ImagesPerGemm(g);
  const auto bytes = BatchGemmBufferBytes(g);
  float *col = static_cast<float *>(ScratchBuffer(Slot::kColumns).Get(bytes.first));
  float *dyt = static_cast<float *>(ScratchBuffer(Slot::kTransposed).Get(bytes.second));
  if (col == nullptr || dyt == nullptr) return false;
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    const int64_t images = std::min(group, N - n0), K = images * P;
#pragma omp parallel
    {
#pragma omp for collapse(2) schedule(static) nowait
      for (int64_t o = 0; o < O; ++o)
        for (int64_t m = 0; m < images; ++m)
          std::memcpy(dyt + o * K + m * P, dy + ((n0 + m) * O + o) * P, sizeof(float) * P);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < CK; ++r) {
        const int64_t c = r / (KH * KW), a = r / KW % KH, b = r % KW;
        float *row = col + r * K;
        for (int64_t m = 0; m < images; ++m) {
          const float *plane = x + ((n0 + m) * C + c) * H * W;
          for (int64_t i = 0; i < OH; ++i) {
            const int64_t hi = i * g.sh - g.pt + a;
            float *out = row + m * P + i * OW;
            if (hi < 0 || hi >= H) {
              std::memset(out, 0, sizeof(float) * OW);
              continue;
            }
            for (int64_t j = 0; j < OW; ++j) {
              const int64_t wi = j * g.sw - g.pl + b;
              out[j] = wi >= 0 && wi < W ? plane[hi * W + wi] : 0.0f;
            }
          }
        }
      }
    }
    if (dnnl_threadpool_interop_sgemm('N', 'T', O, CK, K, 1.0f, dyt, K, col, K, n0 == 0 ? 0.0f : 1.0f, dw, CK,
                                      Pool()) != 0)
      return false;
  }
  return true;
}

}  // namespace vzconv
