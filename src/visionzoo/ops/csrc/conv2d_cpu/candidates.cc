// Building, running and choosing between a geometry's formulations; saved choices (candidates.h).
#include "candidates.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "batch_gemm.h"
#include "batch_split.h"
#include "chooser.h"
#include "dnnl_stream.h"
#include "onednn_conv.h"
#include "scratch.h"
#include "winograd_conv.h"

namespace vzconv {
namespace {

struct Candidates {
  Geometry geometry;
  int parts = 1;  // slices of the batch for the split formulations
  std::mutex build;  // guards tried, built, conv and wino while building
  bool tried[kCandidateCount] = {};  // build attempted (EnsureBuilt)
  bool built[kCandidateCount] = {};
  Conv conv[kCandidateCount];  // the oneDNN formulations' primitives
  vzwino::Plan wino;           // the Winograd formulation's plan
  std::atomic<int> chosen{-1};
  std::mutex tune;  // guards tuning
  Tuning tuning;
  std::atomic<int> calls{0};  // timing runs so far
};

// Built once per geometry (JIT compilation is the expensive part) and kept for the process.
std::mutex g_cache_mutex;
std::map<Geometry, std::unique_ptr<Candidates>> g_cache;
// Choices saved by an earlier process, applied when a geometry is first built; guarded by g_cache_mutex.
std::map<Geometry, int> g_preset;
std::atomic<int> g_force{-1};
std::atomic<int64_t> g_runs[kCandidateCount];

// Builds candidate i of c once (each primitive holds memory); true when the formulation exists for c's
// geometry. The split formulations exist when there are several threads and the batch divides evenly
// between them; their primitives are built for one slice and for a single thread.
bool EnsureBuilt(Candidates *c, int i) {
  std::lock_guard<std::mutex> lock(c->build);
  if (c->tried[i]) return c->built[i];
  c->tried[i] = true;
  const Geometry &g = c->geometry;
  const Formulation f = Describe(g.direction, i);
  switch (f.algorithm) {
    case Algorithm::kNone: break;
    case Algorithm::kBatchGemm: c->built[i] = true; break;
    case Algorithm::kOneDnnInference: c->built[i] = Build(&c->conv[i], g, f.layout, true); break;
    case Algorithm::kWinograd:
      c->wino = WinogradPlan(g);
      c->built[i] = c->wino.isa != vzwino::kNone;
      break;
    case Algorithm::kOneDnn:
      if (!f.split) {
        c->built[i] = Build(&c->conv[i], g, f.layout);
      } else if (int concurrency = 0;
                 c->parts > 1 && dnnl_threadpool_interop_get_max_concurrency(&concurrency) == 0) {
        dnnl_threadpool_interop_set_max_concurrency(1);  // a per-thread setting, for primitive creation
        c->built[i] = Build(&c->conv[i], g.WithBatch(g.N / c->parts), f.layout);
        dnnl_threadpool_interop_set_max_concurrency(concurrency);
      }
      break;
  }
  return c->built[i];
}

// The candidates of a geometry, kept for the process. With a saved choice only that formulation is
// built; otherwise the chooser builds what its rules need (one formulation where a rule decides, those it
// will time otherwise). Others are built only if forced.
Candidates *GetCandidates(const Geometry &g) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto it = g_cache.find(g);
  if (it != g_cache.end()) return it->second.get();
  std::unique_ptr<Candidates> c(new Candidates());
  c->geometry = g;
  const int threads = omp_get_max_threads();
  c->parts = threads > 1 && g.N % threads == 0 ? threads : 1;
  const auto preset = g_preset.find(g);
  if (preset != g_preset.end() && EnsureBuilt(c.get(), preset->second)) {
    c->chosen = c->tuning.chosen = preset->second;
    c->tuning.active[preset->second] = true;
    c->tuning.decision = Decision::kPreset;
    return (g_cache[g] = std::move(c)).get();
  }
  Candidates *raw = c.get();
  c->tuning = StartTuning(g, [raw](int i) { return EnsureBuilt(raw, i); });
  if (c->tuning.decision == Decision::kPending) return nullptr;  // nothing could be built
  c->chosen = c->tuning.chosen;
  return (g_cache[g] = std::move(c)).get();
}

bool RunCandidate(Candidates *c, int i, void *in0, void *in1, void *out, const void *bias) {
  ++g_runs[i];
  const Formulation f = Describe(c->geometry.direction, i);
  if (f.algorithm == Algorithm::kWinograd)
    return RunWinograd(c->wino, c->geometry.direction, static_cast<const float *>(in0),
                       static_cast<const float *>(in1), static_cast<float *>(out), static_cast<const float *>(bias));
  if (f.algorithm == Algorithm::kBatchGemm)
    return BatchGemmBackwardWeights(c->geometry, static_cast<const float *>(in0), static_cast<const float *>(in1),
                                    static_cast<float *>(out));
  return f.split ? RunSplit(c->conv[i], c->geometry.direction, c->parts, in0, in1, out, bias)
                 : Run(c->conv[i], in0, in1, out, bias);
}

// Grows the scratch buffers candidate i needs, on every thread that will use them, and faults their pages
// in, so that timing does not count page faults (nothing to do once they are large enough).
void Touch(Candidates *c, int i) {
  const Formulation f = Describe(c->geometry.direction, i);
  if (f.algorithm == Algorithm::kWinograd) return TouchWinograd(c->wino);
  if (f.algorithm == Algorithm::kBatchGemm) return TouchBatchGemm(c->geometry);
  if (f.split) return TouchSplit(c->conv[i], c->geometry.direction, c->parts);
  TouchOperands(c->conv[i]);
}

// A forced candidate, or its fallback where it does not exist: the same layout unsplit, else the
// blocked one, else the plain one.
int ForcedCandidate(Candidates *c, int force) {
  int i = force;
  if (!EnsureBuilt(c, i)) i = Unsplit(i);
  if (!EnsureBuilt(c, i)) i = EnsureBuilt(c, kBlocked) ? kBlocked : kPlain;
  return i;
}

// Times candidates on this call's operands until the chooser has chosen; this call's result is then the
// chosen candidate's, as every later call's will be. Called under c->tune.
bool Choose(Candidates *c, void *in0, void *in1, void *out, const void *bias) {
  int last = -1;
  for (int i = NextCandidate(c->tuning); c->tuning.chosen < 0; i = NextCandidate(c->tuning)) {
    Touch(c, i);
    const auto t0 = std::chrono::steady_clock::now();
    if (!RunCandidate(c, i, in0, in1, out, bias)) return false;
    RecordTiming(c->tuning, i, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ++c->calls;
    last = i;
  }
  const int kept = c->tuning.chosen;
  c->chosen = kept;
  return kept == last || RunCandidate(c, kept, in0, in1, out, bias);
}

bool RunChosen(Candidates *c, void *in0, void *in1, void *out, const void *bias) {
  const int force = g_force.load();
  if (force >= 0 && force < kCandidateCount) {
    const int i = ForcedCandidate(c, force);
    return EnsureBuilt(c, i) && RunCandidate(c, i, in0, in1, out, bias);
  }
  const int chosen = c->chosen.load();
  if (chosen >= 0) return RunCandidate(c, chosen, in0, in1, out, bias);
  std::lock_guard<std::mutex> lock(c->tune);
  if (c->chosen.load() >= 0) return RunCandidate(c, c->chosen.load(), in0, in1, out, bias);  // chosen meanwhile
  return Choose(c, in0, in1, out, bias);
}

}  // namespace

int Execute(const Geometry &g, void *in0, void *in1, void *out, const void *bias) {
  if (!DnnlLoaded() || Engine() == nullptr || Stream() == nullptr) return 2;
  Candidates *c = GetCandidates(g);
  if (c == nullptr) return 3;
  ScratchLease lease;
  return RunChosen(c, in0, in1, out, bias) ? 0 : 4;
}

int ForceCandidate(int candidate) { return g_force.exchange(candidate); }

int64_t CandidateRuns(int i) { return i >= 0 && i < kCandidateCount ? g_runs[i].load() : -1; }

int BuiltCandidates(const Geometry &g) {
  Candidates *c = GetCandidates(g);
  if (c == nullptr) return -1;
  std::lock_guard<std::mutex> lock(c->build);
  int bits = 0;
  for (int i = 0; i < kCandidateCount; ++i) bits |= c->built[i] ? 1 << i : 0;
  return bits;
}

int ChosenCandidate(const Geometry &g) {
  Candidates *c = GetCandidates(g);
  return c == nullptr ? -1 : c->chosen.load();
}

int ChoiceDecision(const Geometry &g) {
  Candidates *c = GetCandidates(g);
  if (c == nullptr) return -1;
  std::lock_guard<std::mutex> lock(c->tune);
  return static_cast<int>(c->tuning.decision);
}

int TuningPending() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  int n = 0;
  for (const auto &entry : g_cache) n += entry.second->calls.load() > 0 && entry.second->chosen.load() < 0;
  return n;
}

int PresetChoice(const int64_t *row) {
  const int64_t candidate = row[Geometry::kFields];
  if (candidate < 0 || candidate >= kCandidateCount) return 1;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  g_preset[Geometry::FromRow(row)] = int(candidate);
  return 0;
}

int ClearPresets() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  const int n = int(g_preset.size());
  g_preset.clear();
  return n;
}

int Choices(int64_t *rows, int max_rows) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  int n = 0;
  for (const auto &entry : g_cache) {
    const int chosen = entry.second->chosen.load();
    if (chosen < 0) continue;
    if (n < max_rows) {
      int64_t *row = rows + Geometry::kRowLength * n;
      entry.first.ToRow(row);
      row[Geometry::kFields] = chosen;
    }
    ++n;
  }
  return n;
}

}  // namespace vzconv
