// The self-check visionzoo runs before using the kernels (VzConvSelfCheck): the declared enumerations
// against the loaded oneDNN, then small convolutions and both their gradients, in every formulation,
// against direct loops.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "batch_split.h"
#include "candidates.h"
#include "dnnl_api.h"
#include "dnnl_stream.h"

namespace vzconv {
namespace {

bool Close(const std::vector<float> &got, const std::vector<double> &want) {
  for (size_t i = 0; i < got.size(); ++i)
    if (std::fabs(got[i] - want[i]) > 1e-4 * (1.0 + std::fabs(want[i]))) return false;
  return true;
}

// The references of one geometry: y = conv(x, w) by direct loops, its gradients for dy, and y plus a bias
// without and with a ReLU.
struct Reference {
  std::vector<float> x, w, dy, bias;
  std::vector<double> y, dx, dw, biased, rectified;
};

Reference MakeReference(const Geometry &g) {
  Reference r;
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, O = g.O, KH = g.KH, KW = g.KW, OH = g.OH, OW = g.OW;
  r.x.resize(N * C * H * W), r.w.resize(O * C * KH * KW), r.dy.resize(N * O * OH * OW), r.bias.resize(O);
  for (size_t i = 0; i < r.x.size(); ++i) r.x[i] = std::sin(0.37f * i);
  for (size_t i = 0; i < r.w.size(); ++i) r.w[i] = std::cos(0.11f * i);
  for (size_t i = 0; i < r.dy.size(); ++i) r.dy[i] = std::sin(0.05f * i + 1.0f);
  for (int64_t o = 0; o < O; ++o) r.bias[o] = 0.3f * std::sin(1.7f * o);  // both signs, so the ReLU cuts
  r.y.assign(r.dy.size(), 0.0), r.dx.assign(r.x.size(), 0.0), r.dw.assign(r.w.size(), 0.0);
  // y[n,o,i,j] = sum_{c,a,b} x[n,c,i*sh-pt+a, j*sw-pl+b] * w[o,c,a,b]
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t a = 0; a < KH; ++a)
              for (int64_t b = 0; b < KW; ++b) {
                const int64_t hi = i * g.sh - g.pt + a, wi = j * g.sw - g.pl + b;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                const int64_t xi = ((n * C + c) * H + hi) * W + wi, wj = ((o * C + c) * KH + a) * KW + b;
                const int64_t yi = ((n * O + o) * OH + i) * OW + j;
                r.y[yi] += double(r.x[xi]) * r.w[wj];
                r.dx[xi] += double(r.dy[yi]) * r.w[wj];
                r.dw[wj] += double(r.dy[yi]) * r.x[xi];
              }
  r.biased.resize(r.y.size()), r.rectified.resize(r.y.size());
  for (size_t i = 0; i < r.y.size(); ++i) {
    r.biased[i] = r.y[i] + r.bias[(i / (OH * OW)) % O];
    r.rectified[i] = std::max(r.biased[i], 0.0);
  }
  return r;
}

// Every direction of g in the formulation forced now; 0, or the status of the first that disagrees.
int CheckDirections(Geometry g, Reference &r) {
  std::vector<float> y(r.y.size()), dx(r.x.size()), dw(r.w.size());
  auto run = [&g](int direction, void *in0, void *in1, void *out, const void *bias = nullptr) {
    g.direction = direction;
    return Execute(g, in0, in1, out, bias) == 0;
  };
  if (!run(kForward, r.x.data(), r.w.data(), y.data()) || !Close(y, r.y)) return 11;
  if (!run(kInference, r.x.data(), r.w.data(), y.data()) || !Close(y, r.y)) return 12;
  if (!run(kInferenceBias, r.x.data(), r.w.data(), y.data(), r.bias.data()) || !Close(y, r.biased)) return 15;
  if (!run(kInferenceBiasRelu, r.x.data(), r.w.data(), y.data(), r.bias.data()) || !Close(y, r.rectified))
    return 16;
  if (!run(kBackwardData, r.dy.data(), r.w.data(), dx.data()) || !Close(dx, r.dx)) return 13;
  if (!run(kBackwardWeights, r.x.data(), r.dy.data(), dw.data()) || !Close(dw, r.dw)) return 14;
  return 0;
}

// A convolution (p: sh, sw, pt, pb, pl, pr) and both its gradients in every candidate, and each split
// candidate with one thread running every slice, against direct loops; 0 when everything agrees.
int CheckGeometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                  const int32_t p[6]) {
  const int64_t OH = (H + p[2] + p[3] - KH) / p[0] + 1, OW = (W + p[4] + p[5] - KW) / p[1] + 1;
  const Geometry g{kForward, N, C, H, W, O, KH, KW, OH, OW, p[0], p[1], p[2], p[3], p[4], p[5]};
  Reference r = MakeReference(g);
  const int previous = ForceCandidate(-1);
  int status = 0;
  const int split_runs[2] = {kBlockedSplit, kPlainSplit};
  for (int run = 0; run < kCandidateCount + 2 && status == 0; ++run) {
    ForceCandidate(run < kCandidateCount ? run : split_runs[run - kCandidateCount]);
    SetSplitThreads(run < kCandidateCount ? 0 : 1);
    status = CheckDirections(g, r);
  }
  SetSplitThreads(0);
  ForceCandidate(previous);
  return status;
}

}  // namespace
}  // namespace vzconv

// Checks the enumerations declared in dnnl_api.h against the loaded library, then small convolutions and
// both their gradients against direct loops: a strided, asymmetrically padded one, and three 3x3 stride-1
// ones (the Winograd formulation's): unequal padding (2, 0, 1, 2) with odd output sizes (F(4x4),
// gathered), a 3x3 map (F(2x2)) and a row of 8 tiles (F(4x4), along rows). Returns 0 when everything
// agrees.
extern "C" int VzConvSelfCheck() {
  using namespace vzconv;
  if (!DnnlLoaded()) return 9;
  if (!CheckEnumerations() || Attr() == nullptr || ReluAttr() == nullptr) return 10;
  const int32_t strided[6] = {2, 1, 1, 0, 0, 1}, unequal[6] = {1, 1, 2, 0, 1, 2}, same[6] = {1, 1, 1, 1, 1, 1};
  int status = CheckGeometry(2, 9, 7, 6, 10, 3, 2, strided);  // N, C, H, W, O, KH, KW, p
  if (status == 0) status = CheckGeometry(2, 9, 7, 6, 10, 3, 3, unequal);
  if (status == 0) status = CheckGeometry(2, 9, 3, 3, 10, 3, 3, same);
  return status == 0 ? CheckGeometry(2, 4, 5, 31, 5, 3, 3, same) : status;
}
