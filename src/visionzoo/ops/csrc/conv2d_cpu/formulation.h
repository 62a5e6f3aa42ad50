// The formulations a geometry and direction may run, by the number that saved choices, forcing
// (VzConvForceCandidate) and the benchmarks use, and what each number means in each direction.
//
// None wins everywhere: layout (oneDNN's channel-blocked choice, its direct kernels, what PyTorch asks
// for; or plain NCHW/OIHW, im2col + GEMM, what MindSpore's Conv2D asks for), threading (one primitive on
// all threads, or the batch split between threads), and three formulations of their own: the batched GEMM
// for the weight gradient, oneDNN's forward_inference primitive for the eval kinds, and Winograd for 3x3
// stride-1 convolutions. chooser.h decides between them.
#pragma once

#include "dnnl_api.h"
#include "geometry.h"

namespace vzconv {

enum Candidate : int {
  kBlocked = 0,            // oneDNN, layouts of its choice (channel-blocked), one primitive on all threads
  kPlain = 1,              // oneDNN, plain NCHW/OIHW (im2col + GEMM)
  kBlockedSplit = 2,       // kBlocked with the batch split between threads (batch_split.cc)
  kPlainSplit = 3,         // kPlain, the same
  kDirectionSpecific = 4,  // the direction's own: the batched GEMM (weight gradient), oneDNN's
                           // forward_inference choice (eval kinds), none (forward, data gradient)
  kWinograd = 5,           // Winograd F(4x4, 3x3) / F(2x2, 3x3), 3x3 stride 1 (winograd_conv.cc)
  kCandidateCount = 6,
};

enum class Algorithm { kNone, kOneDnn, kOneDnnInference, kBatchGemm, kWinograd };

struct Formulation {
  Algorithm algorithm = Algorithm::kNone;
  int layout = kTagAny;  // kOneDnn*: kTagAny (oneDNN chooses) or kTagAbcd
  bool split = false;    // the batch split between threads
};

// What candidate `id` runs in `direction` (kNone: it does not exist there).
inline Formulation Describe(int direction, int id) {
  switch (id) {
    case kBlocked: return {Algorithm::kOneDnn, kTagAny, false};
    case kPlain: return {Algorithm::kOneDnn, kTagAbcd, false};
    case kBlockedSplit: return {Algorithm::kOneDnn, kTagAny, true};
    case kPlainSplit: return {Algorithm::kOneDnn, kTagAbcd, true};
    case kDirectionSpecific:
      if (direction == kBackwardWeights) return {Algorithm::kBatchGemm, kTagAbcd, false};
      if (IsInference(direction)) return {Algorithm::kOneDnnInference, kTagAny, false};
      return {};
    case kWinograd: return {Algorithm::kWinograd, kTagAbcd, false};
    default: return {};
  }
}

// The same formulation run by one primitive on all threads (a split id's fallback where it does not exist).
inline int Unsplit(int id) {
  if (id == kBlockedSplit) return kBlocked;
  if (id == kPlainSplit) return kPlain;
  return id;
}

}  // namespace vzconv
