// C++-level tests of the convolution kernel's units that a Python test cannot reach cheaply: the geometry
// key and its saved-choice rows, the formulation table, the scratch sets, the chooser's rule table and
// timing rounds, the batched GEMM's grouping. Compiled and run by tests/test_ops_units.py with the library's compiler flags; prints one
// line per failed check and "passed N checks" at the end; exit status 1 when any check failed.
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

#include "batch_gemm.h"
#include "chooser.h"
#include "formulation.h"
#include "geometry.h"
#include "scratch.h"

namespace {
int g_checks = 0, g_failed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(cond)) {                                                         \
      ++g_failed;                                                          \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                      \
  } while (0)

using namespace vzconv;

// vgg16_bn_cifar's 256->256 layer at 8x8, batch 128, in direction d.
Geometry Vgg256(int d) { return Geometry{d, 128, 256, 8, 8, 256, 3, 3, 8, 8, 1, 1, 1, 1, 1, 1}; }

void TestGeometry() {
  const int64_t x[4] = {4, 5, 11, 11}, w[4] = {7, 5, 3, 3}, y[4] = {4, 7, 6, 6};
  const int32_t p[6] = {2, 2, 1, 0, 1, 1};
  const Geometry g = Geometry::FromShapes(kBackwardData, x, w, y, p);
  CHECK(g.direction == kBackwardData && g.N == 4 && g.C == 5 && g.H == 11 && g.W == 11 && g.O == 7);
  CHECK(g.KH == 3 && g.KW == 3 && g.OH == 6 && g.OW == 6);
  CHECK(g.sh == 2 && g.sw == 2 && g.pt == 1 && g.pb == 0 && g.pl == 1 && g.pr == 1);
  int64_t row[Geometry::kRowLength] = {};
  g.ToRow(row);
  const int64_t expected[Geometry::kFields] = {kBackwardData, 4, 5, 11, 11, 7, 3, 3, 6, 6, 2, 2, 1, 0, 1, 1};
  bool same = true;
  for (int i = 0; i < Geometry::kFields; ++i) same = same && row[i] == expected[i];
  CHECK(same);  // the row layout saved choices use (conv.py's _ROW = 17)
  CHECK(Geometry::kRowLength == 17);
  CHECK(Geometry::FromRow(row) == g);
  Geometry other = g;
  other.pr = 2;
  CHECK(g < other && !(other < g) && !(g == other));  // every field is part of the key
  other = g;
  other.direction = kBackwardWeights;
  CHECK(g < other && !(other < g));
  CHECK(g.WithBatch(2).N == 2 && g.WithBatch(2).C == 5);
  CHECK(g.ReducedChannels() == 7 && Vgg256(kForward).ReducedChannels() == 256);
}

void TestFormulations() {
  const int directions[6] = {kForward, kInference, kBackwardData, kBackwardWeights, kInferenceBias,
                             kInferenceBiasRelu};
  for (int d : directions) {
    CHECK(Describe(d, kBlocked).algorithm == Algorithm::kOneDnn && Describe(d, kBlocked).layout == kTagAny);
    CHECK(Describe(d, kPlain).layout == kTagAbcd && !Describe(d, kPlain).split);
    CHECK(Describe(d, kBlockedSplit).split && Describe(d, kPlainSplit).split);
    CHECK(Describe(d, kWinograd).algorithm == Algorithm::kWinograd);
    CHECK(Describe(d, kCandidateCount).algorithm == Algorithm::kNone);
  }
  // candidate 4 is the direction's own
  CHECK(Describe(kBackwardWeights, kDirectionSpecific).algorithm == Algorithm::kBatchGemm);
  CHECK(Describe(kInference, kDirectionSpecific).algorithm == Algorithm::kOneDnnInference);
  CHECK(Describe(kInferenceBiasRelu, kDirectionSpecific).algorithm == Algorithm::kOneDnnInference);
  CHECK(Describe(kForward, kDirectionSpecific).algorithm == Algorithm::kNone);
  CHECK(Describe(kBackwardData, kDirectionSpecific).algorithm == Algorithm::kNone);
  CHECK(Unsplit(kBlockedSplit) == kBlocked && Unsplit(kPlainSplit) == kPlain && Unsplit(kWinograd) == kWinograd);
}

void TestScratch() {
  int sets = 0;
  {
    ScratchLease outer;
    void *a = ScratchBuffer(Slot::kColumns).Get(100);
    CHECK(a != nullptr && reinterpret_cast<uintptr_t>(a) % 64 == 0);
    CHECK(ScratchBuffer(Slot::kColumns).Get(50) == a);  // large enough: kept
    {
      ScratchLease inner;  // nested: the same set
      CHECK(ScratchBuffer(Slot::kColumns).Get(10) == a);
    }
    ScratchBuffer(Slot::kWinoRows).Touch(4096);
    const float *zeros = static_cast<const float *>(ScratchBuffer(Slot::kWinoRows).ptr);
    CHECK(zeros != nullptr && zeros[0] == 0.0f && zeros[1023] == 0.0f);
    CHECK(ScratchBuffer(Slot::kWinoRows).size == 4096);
  }
  const size_t bytes = ScratchBytes(&sets);
  CHECK(sets == 1 && bytes == 100 + 4096);
  {
    ScratchLease again;  // a later lease on another call reuses the free set
    CHECK(ScratchBuffer(Slot::kColumns).size == 100);
  }
  ScratchBytes(&sets);
  CHECK(sets == 1);
  // three threads holding leases at once: three sets, then reused
  std::vector<void *> seen(3, nullptr);
#pragma omp parallel num_threads(3)
  {
    ScratchLease lease;
#pragma omp barrier
    seen[omp_get_thread_num()] = &ScratchBuffer(Slot::kInput0);
#pragma omp barrier
  }
  ScratchBytes(&sets);
  CHECK(sets == 3);
  CHECK(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
  CHECK(ScratchBytes(nullptr) == bytes);
}

// Times the chooser's picks with fixed seconds per candidate until it chooses; returns the choice and
// counts the timed calls.
int Simulate(Tuning &t, const double seconds[kCandidateCount], int *calls) {
  *calls = 0;
  for (int i = NextCandidate(t); t.chosen < 0; i = NextCandidate(t)) {
    RecordTiming(t, i, seconds[i]);
    ++*calls;
    if (*calls > 100) return -2;
  }
  return t.chosen;
}

// A build callback over a fixed set of existing candidates that records which were asked for.
struct Builds {
  bool exists[kCandidateCount];
  bool asked[kCandidateCount] = {};
  std::function<bool(int)> Callback() {
    return [this](int i) { return asked[i] = true, exists[i]; };
  }
  int AskedBits() const {
    int bits = 0;
    for (int i = 0; i < kCandidateCount; ++i) bits |= asked[i] ? 1 << i : 0;
    return bits;
  }
};

int ActiveBits(const Tuning &t) {
  int bits = 0;
  for (int i = 0; i < kCandidateCount; ++i) bits |= t.active[i] ? 1 << i : 0;
  return bits;
}

constexpr int Bit(int i) { return 1 << i; }

void TestChooserRules() {
  // winograd rule: 3x3 stride 1 with >= 64 reduced channels builds Winograd only, in every direction
  for (int d : {kForward, kInference, kBackwardData, kBackwardWeights, kInferenceBiasRelu}) {
    Builds all{{true, true, true, true, true, true}};
    const Tuning t = StartTuning(Vgg256(d), all.Callback());
    CHECK(t.chosen == kWinograd && t.decision == Decision::kRuleWinograd && all.AskedBits() == Bit(kWinograd));
  }
  // the data gradient reduces over the output's channels: VGG's first layer (3 -> 64)
  Geometry first = Geometry{kBackwardData, 128, 3, 32, 32, 64, 3, 3, 32, 32, 1, 1, 1, 1, 1, 1};
  Builds all{{true, true, true, true, true, true}};
  CHECK(StartTuning(first, all.Callback()).decision == Decision::kRuleWinograd);
  // ... its forward has 3 input channels: timed between blocked, plain and Winograd, nothing else built
  first.direction = kForward;
  all = Builds{{true, true, true, true, true, true}};
  Tuning t = StartTuning(first, all.Callback());
  CHECK(t.chosen < 0 && t.decision == Decision::kTimed);
  CHECK(ActiveBits(t) == (Bit(kBlocked) | Bit(kPlain) | Bit(kWinograd)));
  CHECK(all.AskedBits() == (Bit(kBlocked) | Bit(kPlain) | Bit(kWinograd)));  // no split, no 4
  // eval kinds never time oneDNN's forward_inference primitive
  Geometry pointwise = Geometry{kInference, 64, 16, 8, 8, 32, 1, 1, 8, 8, 1, 1, 0, 0, 0, 0};
  all = Builds{{true, true, true, true, true, false}};
  t = StartTuning(pointwise, all.Callback());
  CHECK(ActiveBits(t) == (Bit(kBlocked) | Bit(kPlain)) && !all.asked[kDirectionSpecific]);
  // the weight gradient times the batched GEMM too below 64 pixels, and takes it at once on <= 4
  pointwise.direction = kBackwardWeights;
  all = Builds{{true, true, true, true, true, false}};
  t = StartTuning(pointwise, all.Callback());  // 8x8: no batched GEMM
  CHECK(ActiveBits(t) == (Bit(kBlocked) | Bit(kPlain)) && !all.asked[kDirectionSpecific]);
  Geometry small = Geometry{kBackwardWeights, 64, 16, 7, 7, 32, 1, 1, 7, 7, 1, 1, 0, 0, 0, 0};
  all = Builds{{true, true, true, true, true, false}};
  t = StartTuning(small, all.Callback());
  CHECK(ActiveBits(t) == (Bit(kBlocked) | Bit(kPlain) | Bit(kDirectionSpecific)));
  Geometry tiny = Geometry{kBackwardWeights, 64, 16, 2, 2, 32, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0};
  all = Builds{{true, true, true, true, true, false}};
  t = StartTuning(tiny, all.Callback());
  CHECK(t.chosen == kDirectionSpecific && t.decision == Decision::kRuleTinyMapGemm);
  CHECK(all.AskedBits() == Bit(kDirectionSpecific));
  // where Winograd cannot be built (a CPU below AVX2) the wide layer is timed between the others
  Builds no_winograd{{true, true, true, true, true, false}};
  t = StartTuning(Vgg256(kForward), no_winograd.Callback());
  CHECK(t.decision == Decision::kTimed && ActiveBits(t) == (Bit(kBlocked) | Bit(kPlain)));
  // one candidate left: chosen without timing; only an untimed one: that one; none: nothing chosen
  Builds only_plain{{false, true, false, false, false, false}};
  t = StartTuning(pointwise, only_plain.Callback());
  CHECK(t.chosen == kPlain && t.decision == Decision::kOnly);
  Builds only_split{{false, false, true, false, false, false}};
  t = StartTuning(pointwise, only_split.Callback());
  CHECK(t.chosen == kBlockedSplit && t.decision == Decision::kOnly);
  Builds none{{false, false, false, false, false, false}};
  t = StartTuning(pointwise, none.Callback());
  CHECK(t.chosen < 0 && t.decision == Decision::kPending && ActiveBits(t) == 0);
}

void TestChooserTiming() {
  const Geometry g = Geometry{kForward, 8, 16, 9, 9, 16, 1, 1, 9, 9, 1, 1, 0, 0, 0, 0};
  Builds three{{true, true, false, false, false, true}};
  Tuning t = StartTuning(g, three.Callback());
  CHECK(NextCandidate(t) == kWinograd);  // the highest number first, blocked last
  RecordTiming(t, kWinograd, 0.05);
  CHECK(NextCandidate(t) == kPlain);
  RecordTiming(t, kPlain, 0.05);
  CHECK(NextCandidate(t) == kBlocked);
  // long calls: one round; the faster of two close ones wins
  Builds two{{true, true, false, false, false, false}};
  const double close[kCandidateCount] = {0.0300, 0.0290, 1, 1, 1, 1};
  t = StartTuning(g, two.Callback());
  int calls = 0;
  CHECK(Simulate(t, close, &calls) == kPlain && calls == 2);
  // short calls: a second round between those within kDropRatio of the best
  const double short_close[kCandidateCount] = {0.0020, 0.0021, 1, 1, 1, 1};
  t = StartTuning(g, two.Callback());
  CHECK(Simulate(t, short_close, &calls) == kBlocked && calls == 2 * kShortRounds);
  const double short_apart[kCandidateCount] = {0.0020, 0.0040, 1, 1, 1, 1};
  t = StartTuning(g, two.Callback());
  CHECK(Simulate(t, short_apart, &calls) == kBlocked && calls == 2);  // clearly separated: one round
  CHECK(!t.active[kPlain] && t.timings[kPlain] == 1);
}

void TestBatchGemmGroups() {
  Geometry g = Vgg256(kBackwardWeights);  // 256 * 9 * 64 floats of columns per image: 576 KiB
  const size_t previous = SetMaxColumnBytes(size_t(64) << 20);
  CHECK(ImagesPerGemm(g) == 113);  // 64 MiB / 576 KiB
  const auto bytes = BatchGemmBufferBytes(g);
  CHECK(bytes.first == size_t(113) * 64 * 4 * 256 * 9 && bytes.second == size_t(113) * 64 * 4 * 256);
  SetMaxColumnBytes(1);
  CHECK(ImagesPerGemm(g) == 1);  // at least one image
  SetMaxColumnBytes(size_t(1) << 40);
  CHECK(ImagesPerGemm(g) == 128);  // at most the batch
  CHECK(SetMaxColumnBytes(previous) == size_t(1) << 40);
}

}  // namespace

int main() {
  TestGeometry();
  TestFormulations();
  TestScratch();
  TestChooserRules();
  TestChooserTiming();
  TestBatchGemmGroups();
  std::printf("passed %d of %d checks\n", g_checks - g_failed, g_checks);
  return g_failed == 0 ? 0 : 1;
}
