// The batch-split runner (batch_split.h).
#include "batch_split.h"

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "dnnl_stream.h"

namespace vzconv {
namespace {
std::atomic<int> g_split_threads{0};
}  // namespace

int SetSplitThreads(int limit) { return g_split_threads.exchange(limit); }

bool RunSplit(const Conv &c, int direction, int parts, void *in0, void *in1, void *out, const void *bias) {
  const bool reduce = direction == kBackwardWeights;
  const size_t bytes[3] = {dnnl_memory_desc_get_size(c.ops[0].user_md), dnnl_memory_desc_get_size(c.ops[1].user_md),
                           dnnl_memory_desc_get_size(c.ops[2].user_md)};
  void *shared = reduce ? nullptr : PrimBuffer(c, 1, in1, Slot::kSharedWeights, Stream());
  if (!reduce && (shared == nullptr || dnnl_stream_wait(Stream()) != 0)) return false;
  std::vector<float *> partial(parts, nullptr);  // per thread: the sum of its slices' weight gradients
  std::atomic<bool> ok{true};
  const int limit = g_split_threads.load();
#pragma omp parallel num_threads(limit > 0 && limit < parts ? limit : parts)
  {
    ScratchLease lease;  // the calling thread (tid 0) keeps its own
    const int tid = omp_get_thread_num(), nthr = omp_get_num_threads();  // nthr < parts when nested
    const dnnl_stream_t stream = SerialStream();
    float *mine = nullptr;
    if (reduce) {
      mine = tid == 0 ? static_cast<float *>(out) : static_cast<float *>(ScratchBuffer(Slot::kPartial).Get(bytes[2]));
      if (mine == nullptr) ok = false;
      partial[tid] = mine;
    }
    for (int t = tid; t < parts && ok; t += nthr) {  // thread tid runs slices tid, tid + nthr, ...
      const bool first = t == tid;
      void *gradient = !reduce ? nullptr : first ? static_cast<void *>(mine) : ScratchBuffer(Slot::kExtra).Get(bytes[2]);
      char *user[3] = {static_cast<char *>(in0) + t * bytes[0],
                       reduce ? static_cast<char *>(in1) + t * bytes[1] : nullptr,
                       reduce ? static_cast<char *>(gradient) : static_cast<char *>(out) + t * bytes[2]};
      void *prim[3] = {PrimBuffer(c, 0, user[0], Slot::kInput0, stream),
                       reduce ? PrimBuffer(c, 1, user[1], Slot::kInput1, stream) : shared,
                       user[2] == nullptr ? nullptr : PrimBuffer(c, 2, user[2], Slot::kOutput, stream)};
      if (prim[0] == nullptr || prim[1] == nullptr || prim[2] == nullptr || !ExecutePrimitive(c, prim, bias, stream) ||
          !ReorderOutput(c, prim[2], user[2], stream) || dnnl_stream_wait(stream) != 0) {
        ok = false;
      } else if (reduce && !first) {  // only when there are fewer threads than slices
        const float *extra = reinterpret_cast<const float *>(user[2]);
        for (size_t i = 0; i < bytes[2] / sizeof(float); ++i) mine[i] += extra[i];
      }
    }
#pragma omp barrier
    if (reduce && ok) {  // the same for every thread after the barrier
      float *sum = static_cast<float *>(out);
      const int64_t n = static_cast<int64_t>(bytes[2] / sizeof(float));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i)
        for (int t = 1; t < nthr; ++t) sum[i] += partial[t][i];
    }
  }
  return ok;
}

void TouchSplit(const Conv &c, int direction, int parts) {
  if (direction != kBackwardWeights && !c.ops[1].same)
    ScratchBuffer(Slot::kSharedWeights).Touch(dnnl_memory_desc_get_size(c.ops[1].prim_md));
#pragma omp parallel num_threads(parts)
  {
    ScratchLease lease;
    TouchOperands(c);
    if (direction == kBackwardWeights && omp_get_thread_num() > 0)
      ScratchBuffer(Slot::kPartial).Touch(dnnl_memory_desc_get_size(c.ops[2].user_md));
  }
}

}  // namespace vzconv
