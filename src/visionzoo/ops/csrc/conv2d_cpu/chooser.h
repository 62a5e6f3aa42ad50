// Choosing a geometry's formulation: which candidates are timed, in what order, and when timing stops.
// Plain C++ (no oneDNN, no clock): the caller times the calls and reports them (candidates.cc).
//
// A geometry and direction tunes itself in its first call, as cuDNN-style "benchmark" modes do: that call
// runs the candidates (they all compute the same result, to float32 rounding) on its own operands one
// after another, round after round, timing each, until every remaining candidate has kRounds timings
// (kShortRounds when all are short, being noisier); a candidate slower than kDropRatio x the best so far
// leaves after a round, and the one with the best timing computes that call's result and every later
// one. Repeated, interleaved timings resist the noise of a shared machine better than one run each.
// Every result of a process thus comes from the formulation it keeps, so a run that tunes and a later run
// that starts with the saved choice compute bit-identical results.
#pragma once

#include "formulation.h"
#include "geometry.h"

namespace vzconv {

constexpr int kRounds = 3, kShortRounds = 3;  // timings per candidate (best of): 3 resists a noisy machine
constexpr double kShort = 0.02, kDropRatio = 1.5;

// The tuning state of one geometry and direction.
struct Tuning {
  bool active[kCandidateCount] = {};  // still in the running
  int timings[kCandidateCount] = {};
  double best[kCandidateCount] = {1e300, 1e300, 1e300, 1e300, 1e300, 1e300};
  int chosen = -1;
};

// Starts tuning between the candidates marked in `available` (those built for the geometry); the choice
// is made at once when there is only one.
Tuning StartTuning(const Geometry &g, const bool available[kCandidateCount]);
// The candidate to time next (the active one with the fewest timings, the lowest number first), or, when
// every active candidate has enough timings, the choice (also set in t.chosen).
int NextCandidate(Tuning &t);
// Records one timing of candidate i; after each round, candidates far behind the best so far stop being
// tried.
void RecordTiming(Tuning &t, int i, double seconds);

}  // namespace vzconv
