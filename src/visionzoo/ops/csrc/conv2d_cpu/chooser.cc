// The chooser's rule table and timing rounds (chooser.h).
#include "chooser.h"

#include <algorithm>

namespace vzconv {
namespace {

Tuning Decided(int i, Decision decision) {
  Tuning t;
  t.active[i] = true;
  t.chosen = i;
  t.decision = decision;
  return t;
}

}  // namespace

bool Timed(const Geometry &g, int i) {
  const Formulation f = Describe(g.direction, i);
  if (f.algorithm == Algorithm::kBatchGemm) return g.OH * g.OW < kBigMapPixels;
  return !f.split && f.algorithm != Algorithm::kNone && f.algorithm != Algorithm::kOneDnnInference;
}

Tuning StartTuning(const Geometry &g, const std::function<bool(int)> &build) {
  const bool wide = g.ReducedChannels() >= kWinogradMinReducedChannels;
  if (wide && build(kWinograd)) return Decided(kWinograd, Decision::kRuleWinograd);
  if (g.direction == kBackwardWeights && g.OH * g.OW <= kTinyMapPixels && build(kDirectionSpecific))
    return Decided(kDirectionSpecific, Decision::kRuleTinyMapGemm);
  Tuning t;
  int count = 0, last = -1;
  for (int i = 0; i < kCandidateCount; ++i)
    if (Timed(g, i) && build(i)) t.active[i] = true, ++count, last = i;
  if (count == 0) {  // only an untimed formulation exists (none seen so far): take the first that does
    for (int i = 0; i < kCandidateCount && last < 0; ++i)
      if (build(i)) last = i;
    if (last < 0) return t;
    return Decided(last, Decision::kOnly);
  }
  if (count == 1) return Decided(last, Decision::kOnly);
  t.decision = Decision::kTimed;
  return t;
}

int NextCandidate(Tuning &t) {
  if (t.chosen >= 0) return t.chosen;
  int next = -1, fewest = 1 << 30, pick = -1, active = 0;
  for (int i = kCandidateCount - 1; i >= 0; --i) {
    if (!t.active[i]) continue;
    ++active;
    if (t.timings[i] < fewest) fewest = t.timings[i], next = i;
    if (pick < 0 || t.best[i] < t.best[pick]) pick = i;
  }
  if (active == 1 || fewest >= (t.best[pick] < kShort ? kShortRounds : kRounds)) {
    t.chosen = pick;
    return pick;
  }
  return next;
}

void RecordTiming(Tuning &t, int i, double seconds) {
  t.best[i] = std::min(t.best[i], seconds);
  ++t.timings[i];
  bool round_done = true;
  double best = 1e300;
  for (int j = 0; j < kCandidateCount; ++j)
    if (t.active[j]) round_done = round_done && t.timings[j] >= t.timings[i], best = std::min(best, t.best[j]);
  if (round_done)
    for (int j = 0; j < kCandidateCount; ++j)
      if (t.active[j] && t.best[j] > kDropRatio * best) t.active[j] = false;
}

}  // namespace vzconv
