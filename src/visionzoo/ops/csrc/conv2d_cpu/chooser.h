// Choosing a geometry's formulation: a rule table decides where the per-layer measurements give a rule;
// otherwise a short timing between the candidates that remain. Plain C++ (no oneDNN, no clock): the
// caller builds candidates on request and times the calls (candidates.cc).
//
// The rules (measurements: benchmarks/results/2026-12-03T1021_conv_formulations_{native,avx2-class}.json,
// the formulations blocked, blocked-split, the direction's own and Winograd of vgg16_bn_cifar's 3x3
// layers at batch 128 on 2 threads, AVX-512 and AVX2 classes; plain was not in that run):
//
//   rule             applies to                                  decides             measured
//   winograd         Winograd exists (3x3, stride 1, pad <= 2,   kWinograd           1.07-2.31x (AVX-512) and
//                    AVX2+) and >= 64 reduced channels (the                          1.40-2.62x (AVX2) faster
//                    input's; the output's for the data                              than the best other on
//                    gradient)                                                       all 25 such layer-
//                                                                                    directions; with 3
//                                                                                    channels 1.2-2.9x slower
//   tiny-map gemm    weight gradient, output map <= 4 pixels     kDirectionSpecific  2.31x (AVX-512), 2.70x
//                    (where the winograd rule does not apply)    (the batched GEMM)  (AVX2) faster than
//                                                                                    blocked at 2x2; 0.94-1.2x
//                                                                                    at 4x4 (left to timing)
//   no big-map gemm  the batched GEMM, output map >= 64 pixels   never timed         1.33-2.43x slower than
//                                                                                    blocked on all 12 such
//                                                                                    layer-classes
//   never split      kBlockedSplit, kPlainSplit                  never timed         0.90-1.24x blocked's time
//                                                                                    per layer; network sums
//                                                                                    -2.6% to +10.9%
//   never inference  kDirectionSpecific of the eval kinds        never timed         blocked takes 0.33-1.06x
//                    (oneDNN's forward_inference primitive)                          its time
//
// Everything else (e.g. a 3-channel first layer, 1x1 and 5x5 layers, strided ones) is timed between
// kBlocked, kPlain, kWinograd where it exists and the batched GEMM for the weight gradient below 64
// pixels, in that geometry's first call on its own operands (the candidates compute the same result to
// float32 rounding): each candidate once, blocked last (it wins most often, and the last one timed
// needs no further run when it wins). Only where the best call is short (under kShort seconds, where
// the noise of a shared machine is relatively largest and a repeat cheap) a second round follows,
// between the candidates within kDropRatio of the best. The kept candidate computes that call's result
// and every later one, so a run that chooses and a later run that starts with the saved choice compute
// bit-identical results. Saved choices and forced candidates bypass the chooser.
#pragma once

#include <functional>

#include "formulation.h"
#include "geometry.h"

namespace vzconv {

constexpr int kRounds = 1, kShortRounds = 2;  // timings per candidate (best of): long calls, short ones
constexpr double kShort = 0.01;                // seconds
constexpr double kDropRatio = 1.3;             // a candidate this much slower than the best after a round leaves
constexpr int64_t kWinogradMinReducedChannels = 64;
constexpr int64_t kTinyMapPixels = 4;
constexpr int64_t kBigMapPixels = 64;

// How a geometry's choice was made.
enum class Decision { kPending = 0, kOnly = 1, kRuleWinograd = 2, kRuleTinyMapGemm = 3, kTimed = 4, kPreset = 5 };

// The choice state of one geometry and direction.
struct Tuning {
  bool active[kCandidateCount] = {};  // in the running
  int timings[kCandidateCount] = {};
  double best[kCandidateCount] = {1e300, 1e300, 1e300, 1e300, 1e300, 1e300};
  int chosen = -1;
  Decision decision = Decision::kPending;
};

// Whether candidate i may be timed for g (the "never" and "no" rows of the table).
bool Timed(const Geometry &g, int i);

// Starts the choice for g: `build(i)` builds candidate i (true when it exists for g) and is called only
// for the candidates the rules need, so a rule-decided geometry builds one formulation. The choice is
// made at once by a rule or when only one candidate is left to time; t.chosen is -1 otherwise, and -1
// with no active candidate when nothing could be built.
Tuning StartTuning(const Geometry &g, const std::function<bool(int)> &build);
// The candidate to time next (the active one with the fewest timings, the highest number first, so
// kBlocked last), or, when the timing is over, the choice (also set in t.chosen).
int NextCandidate(Tuning &t);
// Records one timing of candidate i; after each round, candidates far behind the best so far leave.
void RecordTiming(Tuning &t, int i, double seconds);

}  // namespace vzconv
