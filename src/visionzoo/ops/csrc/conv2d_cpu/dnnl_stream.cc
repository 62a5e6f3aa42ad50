// oneDNN's threadpool interface on OpenMP, the engine, the per-thread streams and the attributes.
#include "dnnl_stream.h"

#include <omp.h>

#include <cstdint>
#include <functional>

namespace vzconv {
namespace {

// oneDNN's dnnl::threadpool_interop::threadpool_iface, same virtual functions in the same order.
struct ThreadpoolIface {
  virtual int get_num_threads() const = 0;
  virtual bool get_in_parallel() const = 0;
  virtual void parallel_for(int n, const std::function<void(int, int)> &fn) = 0;
  virtual uint64_t get_flags() const = 0;
  virtual void wait() = 0;
  virtual ~ThreadpoolIface() = default;
};

struct OmpThreadpool final : ThreadpoolIface {
  int get_num_threads() const override { return omp_get_max_threads(); }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    if (n == 1 || omp_in_parallel()) {
      for (int i = 0; i < n; ++i) fn(i, n);
      return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; ++i) fn(i, n);
  }
  uint64_t get_flags() const override { return 0; }  // synchronous
  void wait() override {}
};

// One thread: for the batch split, where each thread runs its own slices of the batch.
struct SerialThreadpool final : ThreadpoolIface {
  int get_num_threads() const override { return 1; }
  bool get_in_parallel() const override { return false; }
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    for (int i = 0; i < n; ++i) fn(i, n);
  }
  uint64_t get_flags() const override { return 0; }
  void wait() override {}
};

dnnl_stream_t MakeStream(ThreadpoolIface *pool) {
  dnnl_stream_t s = nullptr;
  if (Engine() == nullptr || dnnl_threadpool_interop_stream_create(&s, Engine(), pool) != 0) s = nullptr;
  return s;
}

OmpThreadpool *OmpPool() {
  thread_local OmpThreadpool pool;
  return &pool;
}

// A user-scratchpad attribute, with a ReLU post-op when `relu`; nullptr when oneDNN refused.
dnnl_primitive_attr_t MakeAttr(bool relu) {
  dnnl_primitive_attr_t a = nullptr;
  dnnl_post_ops_t post = nullptr;
  bool ok = dnnl_primitive_attr_create(&a) == 0 && dnnl_primitive_attr_set_scratchpad_mode(a, kScratchpadUser) == 0;
  if (ok && relu)
    ok = dnnl_post_ops_create(&post) == 0 && dnnl_post_ops_append_eltwise(post, kEltwiseRelu, 0.0f, 0.0f) == 0 &&
         dnnl_primitive_attr_set_post_ops(a, post) == 0;
  if (post) dnnl_post_ops_destroy(post);
  if (!ok && a) dnnl_primitive_attr_destroy(a);
  return ok ? a : nullptr;
}

}  // namespace

dnnl_engine_t Engine() {
  static dnnl_engine_t engine = [] {
    dnnl_engine_t e = nullptr;
    if (dnnl_engine_create(&e, kCpu, 0) != 0) e = nullptr;
    return e;
  }();
  return engine;
}

void *Pool() { return OmpPool(); }

dnnl_stream_t Stream() {
  thread_local dnnl_stream_t stream = MakeStream(OmpPool());
  return stream;
}

dnnl_stream_t SerialStream() {
  thread_local SerialThreadpool pool;
  thread_local dnnl_stream_t stream = MakeStream(&pool);
  return stream;
}

const_dnnl_primitive_attr_t Attr() {
  static dnnl_primitive_attr_t attr = MakeAttr(false);
  return attr;
}

const_dnnl_primitive_attr_t ReluAttr() {
  static dnnl_primitive_attr_t attr = MakeAttr(true);
  return attr;
}

}  // namespace vzconv
