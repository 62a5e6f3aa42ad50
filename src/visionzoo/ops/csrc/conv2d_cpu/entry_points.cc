// The library's extern "C" entry points: the convolutions MindSpore's "aot" Custom ops call (CPU, NCHW,
// float32, groups 1), loading oneDNN, and the hooks that tests, benchmarks and the saved choices use.
// Parameters arrive as an int32 tensor p = [sh, sw, pad_top, pad_bottom, pad_left, pad_right].
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "batch_gemm.h"
#include "candidates.h"
#include "dnnl_api.h"
#include "scratch.h"
#include "winograd_conv.h"

namespace {
using vzconv::Geometry;

bool Is4d(int *ndims, const char **dtypes, int n) {
  for (int i = 0; i < n; ++i)
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
  return true;
}

// x, w, y: the forward convolution's shapes; in0, in1 -> out as the direction takes them.
int Execute(int direction, const int64_t *x, const int64_t *w, const int64_t *y, void *p, void *in0, void *in1,
            void *out, const void *bias = nullptr) {
  const Geometry g = Geometry::FromShapes(direction, x, w, y, static_cast<const int32_t *>(p));
  return vzconv::Execute(g, in0, in1, out, bias);
}

// y = conv(x, w) + b, then ReLU for the Relu variant (eval mode); inputs x, w, b (1-D [O]), p; output y.
int FusedInference(int direction, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[2] != 1 || std::strcmp(dtypes[2], "float32") != 0 ||
      shapes[2][0] != shapes[1][0] || ndims[3] != 1 || ndims[4] != 4)
    return 1;
  return Execute(direction, shapes[0], shapes[1], shapes[4], params[3], params[0], params[1], params[4], params[2]);
}
}  // namespace

// y = conv(x, w); inputs x, w, p; output y. Training and inference differ only in the primitive kind.
extern "C" int Conv2dForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 4 || !Is4d(ndims, dtypes, 2) || ndims[3] != 4) return 1;
  return Execute(vzconv::kForward, shapes[0], shapes[1], shapes[3], params[2], params[0], params[1], params[3]);
}

extern "C" int Conv2dInference(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 4 || !Is4d(ndims, dtypes, 2) || ndims[3] != 4) return 1;
  return Execute(vzconv::kInference, shapes[0], shapes[1], shapes[3], params[2], params[0], params[1], params[3]);
}

extern "C" int Conv2dInferenceBias(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  return FusedInference(vzconv::kInferenceBias, nparam, params, ndims, shapes, dtypes);
}

extern "C" int Conv2dInferenceBiasRelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                       void *stream, void *extra) {
  return FusedInference(vzconv::kInferenceBiasRelu, nparam, params, ndims, shapes, dtypes);
}

// dx = conv_backward_data(dy, w); inputs dy, w, x (for its shape only), p; output dx.
extern "C" int Conv2dBackwardData(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[4] != 4) return 1;
  return Execute(vzconv::kBackwardData, shapes[4], shapes[1], shapes[0], params[3], params[0], params[1], params[4]);
}

// dw = conv_backward_weights(x, dy); inputs x, dy, w (for its shape only), p; output dw.
extern "C" int Conv2dBackwardWeights(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                     void *stream, void *extra) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[4] != 4) return 1;
  return Execute(vzconv::kBackwardWeights, shapes[0], shapes[4], shapes[1], params[3], params[0], params[1],
                 params[4]);
}

// Loads oneDNN from `path` (a private copy of MindSpore's libdnnl.so.3) and, when isa >= 0, caps its ISA
// (a dnnl_cpu_isa_t value; -1 leaves ONEDNN_MAX_CPU_ISA / the host's best to oneDNN). Must run before any
// other entry point; later calls do nothing. Returns 0, or 1 (dlopen failed), 2 (a function is missing),
// 3 (oneDNN refused the ISA).
extern "C" int VzConvLoadDnnl(const char *path, int isa) { return vzconv::LoadDnnl(path, isa); }

// The ISA the loaded oneDNN instance dispatches to (a dnnl_cpu_isa_t value), -1 before VzConvLoadDnnl.
extern "C" int VzConvEffectiveIsa() { return vzconv::DnnlLoaded() ? vzconv::dnnl_get_effective_cpu_isa() : -1; }

// OpenMP threads the kernels run on (part of the key of saved choices).
extern "C" int VzConvThreads() { return omp_get_max_threads(); }

// Tests and measurements: -1 lets each geometry keep its chosen formulation (default); 0-5 always run
// that one (formulation.h: 0 blocked, 1 plain, 2 and 3 the same with the batch split, 4 the direction's
// own, 5 Winograd; see vzconv::ForceCandidate for the fallbacks). Returns the previous setting.
extern "C" int VzConvForceCandidate(int candidate) { return vzconv::ForceCandidate(candidate); }

// How many formulations a geometry may have (saved choices are below this).
extern "C" int VzConvCandidateCount() { return vzconv::kCandidateCount; }

// Tests: how many calls have run candidate i in this process (-1 for an i out of range).
extern "C" int64_t VzConvRuns(int i) { return vzconv::CandidateRuns(i); }

// Tests: the Winograd whole schedule's bound (bytes), for geometries planned after the call. Returns the
// previous one.
extern "C" int64_t VzConvWinogradWholeBytes(int64_t bytes) { return vzconv::SetWinogradWholeBytes(bytes); }

// Tests: the im2col limit of the batch GEMM (bytes; 1 = one image per GEMM). Returns the previous one.
extern "C" size_t VzConvMaxColumnBytes(size_t bytes) { return vzconv::SetMaxColumnBytes(bytes); }

// Tests: which formulations of a geometry have been built (bit i: candidate i), -1 for an error.
extern "C" int VzConvBuiltCandidates(int direction, const int64_t *x, const int64_t *w, const int64_t *y,
                                     const int32_t *p) {
  return vzconv::BuiltCandidates(Geometry::FromShapes(direction, x, w, y, p));
}

// Which candidate a geometry kept (-1: still choosing or unknown), for tests.
extern "C" int VzConvChosenCandidate(int direction, const int64_t *x, const int64_t *w, const int64_t *y,
                                     const int32_t *p) {
  return vzconv::ChosenCandidate(Geometry::FromShapes(direction, x, w, y, p));
}

// Tests: how a geometry's choice was made (chooser.h: 0 pending, 1 the only candidate, 2 the Winograd
// rule, 3 the tiny-map GEMM rule, 4 timed, 5 a saved choice), -1 for an error. Decides it if undecided.
extern "C" int VzConvDecision(int direction, const int64_t *x, const int64_t *w, const int64_t *y,
                              const int32_t *p) {
  return vzconv::ChoiceDecision(Geometry::FromShapes(direction, x, w, y, p));
}

// Saved choices: a row is the 16 numbers of a Geometry (direction, N, C, H, W, O, KH, KW, OH, OW, sh, sw,
// pt, pb, pl, pr) followed by the candidate. VzConvPresetChoice makes a geometry start with that candidate
// (ignored where it is not built); VzConvChoices writes up to max_rows rows of the choices this process
// has (chosen or preset) and returns how many there are; VzConvClearPresets forgets the presets (tests
// that watch a geometry choose from scratch) and returns how many there were.
extern "C" int VzConvPresetChoice(const int64_t *row) { return vzconv::PresetChoice(row); }
extern "C" int VzConvClearPresets() { return vzconv::ClearPresets(); }
extern "C" int VzConvChoices(int64_t *rows, int max_rows) { return vzconv::Choices(rows, max_rows); }

// Scratch memory held now (bytes, all sets); *sets receives how many sets exist (the peak concurrency).
extern "C" size_t VzConvScratchBytes(int *sets) { return vzconv::ScratchBytes(sets); }

// How many geometries and directions have started timing and not finished (benchmarks warm up until 0).
extern "C" int VzConvTuning() { return vzconv::TuningPending(); }
