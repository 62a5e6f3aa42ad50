// Planning and running the Winograd formulation on the kernel's scratch (winograd_conv.h).
#include "winograd_conv.h"

#include <omp.h>

#include <atomic>
#include <vector>

#include "dnnl_api.h"
#include "scratch.h"

namespace vzconv {
namespace {

std::atomic<int64_t> g_whole_bytes{int64_t(16) << 20};

// The Winograd level the kernels' oneDNN instance allows: AVX-512 where it dispatches to AVX512_CORE or
// above, AVX2 (with FMA) where to AVX2 or above, none below.
int WinogradIsa() {
  const int isa = dnnl_get_effective_cpu_isa();
  if ((isa & kIsaAvx512CoreBits) == kIsaAvx512CoreBits) return vzwino::kAvx512;
  return (isa & kIsaAvx2Bits) == kIsaAvx2Bits ? vzwino::kAvx2 : vzwino::kNone;
}

float *Floats(Slot slot, size_t floats) {
  return static_cast<float *>(ScratchBuffer(slot).Get(sizeof(float) * floats));
}

// The weight gradient's buffers of the calling thread (row buffers excepted).
vzwino::WeightBuffers WeightScratch(const vzwino::Plan &p) {
  return {Floats(Slot::kWinoInput, p.v_floats()),    Floats(Slot::kWinoProducts, p.y_floats()),
          Floats(Slot::kWinoInputT, p.vt_floats()),  Floats(Slot::kWinoOutputT, p.yp_floats()),
          Floats(Slot::kWinoWeights, p.w_floats()), nullptr};
}

bool Complete(const vzwino::WeightBuffers &b) { return b.V && b.Y && b.VT && b.YP && b.M; }

// The weight gradient from x and dy into dw. Whole: every buffer the calling thread's (shared); blocked:
// each thread's own, its partial sums added into thread 0's.
bool RunWinogradWeights(const vzwino::Plan &p, const float *x, const float *dy, float *dw) {
  vzwino::WeightBuffers shared{};
  if (p.whole && !Complete(shared = WeightScratch(p))) return false;
  std::vector<float *> partials(omp_get_max_threads(), nullptr);
  std::atomic<bool> ok{true};
#pragma omp parallel
  {
    ScratchLease lease;  // the calling thread (tid 0) keeps its own
    vzwino::WeightBuffers b = p.whole ? shared : WeightScratch(p);
    b.buf = Floats(Slot::kWinoRows, p.row_floats());
    if (!Complete(b) || !b.buf) ok = false;
#pragma omp barrier
    if (ok) vzwino::RunWeights(p, x, dy, dw, b, partials.data());
  }
  return ok;
}

}  // namespace

int64_t SetWinogradWholeBytes(int64_t bytes) { return g_whole_bytes.exchange(bytes); }

vzwino::Plan WinogradPlan(const Geometry &g) {
  if (g.KH != 3 || g.KW != 3 || g.sh != 1 || g.sw != 1) return vzwino::Plan();
  const int isa = WinogradIsa(), threads = omp_get_max_threads();
  const int64_t whole = g_whole_bytes.load();
  if (g.direction == kBackwardData)
    return vzwino::MakePlan(isa, threads, g.N, g.O, g.OH, g.OW, g.C, g.H, g.W, 2 - g.pt, 2 - g.pl, whole);
  if (g.direction == kBackwardWeights)
    return vzwino::MakeWeightPlan(isa, threads, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl, whole);
  return vzwino::MakePlan(isa, threads, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl, whole);
}

// The transformed weights (and, in the whole schedule, the transformed input and products) are the
// calling thread's scratch, shared by the call's threads; in the blocked schedule each thread has its own
// block buffers.
bool RunWinograd(const vzwino::Plan &p, int direction, const float *in0, const float *in1, float *out,
                 const float *bias) {
  if (p.weights) return RunWinogradWeights(p, in0, in1, out);
  float *U = Floats(Slot::kWinoWeights, p.u_floats());
  float *V = nullptr, *M = nullptr;
  if (p.whole) {
    V = Floats(Slot::kWinoInput, p.v_floats());
    M = Floats(Slot::kWinoProducts, p.m_floats());
    if (V == nullptr || M == nullptr) return false;
  }
  if (U == nullptr) return false;
  const bool relu = direction == kInferenceBiasRelu, flip = direction == kBackwardData;
  const float *b = HasBias(direction) ? bias : nullptr;
  std::atomic<bool> ok{true};
#pragma omp parallel
  {
    ScratchLease lease;  // the calling thread (tid 0) keeps its own
    float *v = p.whole ? V : Floats(Slot::kWinoInput, p.v_floats());
    float *m = p.whole ? M : Floats(Slot::kWinoProducts, p.m_floats());
    float *rows = Floats(Slot::kWinoRows, p.row_floats());
    if (v == nullptr || m == nullptr || rows == nullptr) ok = false;
#pragma omp barrier
    // every thread runs the plan's worksharing loops (all or none: a failed allocation stops them all)
    if (ok) vzwino::Run(p, in1, flip, in0, b, relu, out, U, v, m, rows);
  }
  return ok;
}

void TouchWinograd(const vzwino::Plan &p) {
  if (!p.weights) ScratchBuffer(Slot::kWinoWeights).Touch(sizeof(float) * p.u_floats());
#pragma omp parallel
  {
    ScratchLease lease;
    if (!p.whole || omp_get_thread_num() == 0) {  // whole: the caller's buffers serve every thread
      ScratchBuffer(Slot::kWinoInput).Touch(sizeof(float) * p.v_floats());
      ScratchBuffer(Slot::kWinoProducts).Touch(sizeof(float) * (p.weights ? p.y_floats() : p.m_floats()));
      if (p.weights) {
        ScratchBuffer(Slot::kWinoInputT).Touch(sizeof(float) * p.vt_floats());
        ScratchBuffer(Slot::kWinoOutputT).Touch(sizeof(float) * p.yp_floats());
        ScratchBuffer(Slot::kWinoWeights).Touch(sizeof(float) * p.w_floats());
      }
    }
    ScratchBuffer(Slot::kWinoRows).Touch(sizeof(float) * p.row_floats());
  }
}

}  // namespace vzconv
