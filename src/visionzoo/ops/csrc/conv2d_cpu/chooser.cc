// The chooser's timing rounds (chooser.h).
#include "chooser.h"

#include <algorithm>

namespace vzconv {

Tuning StartTuning(const Geometry &, const bool available[kCandidateCount]) {
  Tuning t;
  int count = 0, last = -1;
  for (int i = 0; i < kCandidateCount; ++i)
    if ((t.active[i] = available[i])) ++count, last = i;
  if (count == 1) t.chosen = last;
  return t;
}

int NextCandidate(Tuning &t) {
  if (t.chosen >= 0) return t.chosen;
  int next = -1, fewest = 1 << 30, pick = -1, active = 0;
  bool all_short = true;
  for (int i = 0; i < kCandidateCount; ++i) {
    if (!t.active[i]) continue;
    ++active;
    if (t.timings[i] < fewest) fewest = t.timings[i], next = i;
    if (pick < 0 || t.best[i] < t.best[pick]) pick = i;
    all_short = all_short && t.best[i] < kShort;
  }
  if (active == 1 || fewest >= (all_short ? kShortRounds : kRounds)) {
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
