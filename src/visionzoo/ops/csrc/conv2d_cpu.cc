// 2-D convolution forward/backward for MindSpore's "aot" Custom op on CPU (NCHW, float32, groups 1).
//
// Why: MindSpore 2.10's CPU Conv2D and its gradients hand oneDNN plain NCHW tensors, so oneDNN runs
// them as im2col + GEMM ("x64:gemm:jit"). PyTorch hands oneDNN "any" layouts and gets its direct
// AVX2 kernels on channel-blocked tensors ("jit:avx2", nChw8c), which were ~1.6x faster on VGG's
// 3x3 convolutions here. These entry points do the same through the oneDNN library MindSpore already
// loads (libdnnl.so.3): the convolution picks its layouts, plain NCHW/OIHW tensors are reordered in
// and out around it. Same math as Conv2D; float summation order differs (results agree to ~1e-6).
// See docs/performance.md and visionzoo/ops/conv.py.
//
// The oneDNN C API is declared here (only what is used): the values are those of oneDNN 3.x's stable
// ABI, and VzConvSelfCheck() verifies the enumerations against the loaded library's own *2str
// functions and a convolution against a direct loop before visionzoo uses any of this.
//
// The kernel does not link against oneDNN: VzConvLoadDnnl() dlopens a private copy of MindSpore's
// libdnnl.so.3 (RTLD_LOCAL | RTLD_DEEPBIND, a copied file, so the loader maps a second instance with its
// own global state) and resolves every function below from it. oneDNN's maximum ISA is process-wide
// per library instance and fixed at its first use; with a private instance the fast kernel runs at the
// host's best ISA (AVX-512) while MindSpore's own instance keeps the AVX2 cap its plain-NCHW Conv2D
// needs (uncapped, it dispatches to "jit_uni_ncsp:conv+ref:any", 30-100x slower). docs/performance.md.
//
// MindSpore's oneDNN is built with the "threadpool" CPU runtime: a stream needs a threadpool, given
// here as an OpenMP-backed implementation of oneDNN's threadpool interface.
//
// Parameters arrive as an int32 tensor p = [sh, sw, pad_top, pad_bottom, pad_left, pad_right].
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "winograd.h"

// ---------------------------------------------------------------------------------------------
// oneDNN 3.x C API, the part used here: declarations only (in namespace dnnl_decl, for their types);
// the calls go through the function pointers of the same names below, resolved by VzConvLoadDnnl()
// ---------------------------------------------------------------------------------------------
extern "C" {
typedef int64_t dnnl_dim_t;
typedef dnnl_dim_t dnnl_dims_t[12];
typedef int dnnl_status_t;  // dnnl_success == 0
typedef struct dnnl_engine *dnnl_engine_t;
typedef struct dnnl_stream *dnnl_stream_t;
typedef struct dnnl_memory_desc *dnnl_memory_desc_t;
typedef const struct dnnl_memory_desc *const_dnnl_memory_desc_t;
typedef struct dnnl_memory *dnnl_memory_t;
typedef struct dnnl_primitive_desc *dnnl_primitive_desc_t;
typedef const struct dnnl_primitive_desc *const_dnnl_primitive_desc_t;
typedef struct dnnl_primitive *dnnl_primitive_t;
typedef const struct dnnl_primitive *const_dnnl_primitive_t;
typedef struct dnnl_primitive_attr *dnnl_primitive_attr_t;
typedef const struct dnnl_primitive_attr *const_dnnl_primitive_attr_t;
typedef struct dnnl_post_ops *dnnl_post_ops_t;
typedef const struct dnnl_post_ops *const_dnnl_post_ops_t;
typedef struct {
  int arg;
  dnnl_memory_t memory;
} dnnl_exec_arg_t;
}

namespace dnnl_decl {
extern "C" {

dnnl_status_t dnnl_engine_create(dnnl_engine_t *engine, int kind, size_t index);
dnnl_status_t dnnl_threadpool_interop_stream_create(dnnl_stream_t *stream, dnnl_engine_t engine, void *threadpool);
dnnl_status_t dnnl_threadpool_interop_set_max_concurrency(int max_concurrency);
dnnl_status_t dnnl_threadpool_interop_get_max_concurrency(int *max_concurrency);
// row-major C := alpha * op(A) * op(B) + beta * C on the given threadpool
dnnl_status_t dnnl_threadpool_interop_sgemm(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                            float alpha, const float *A, dnnl_dim_t lda, const float *B,
                                            dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc, void *threadpool);
dnnl_status_t dnnl_stream_wait(dnnl_stream_t stream);
dnnl_status_t dnnl_memory_desc_create_with_tag(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                                               int data_type, int tag);
dnnl_status_t dnnl_memory_desc_destroy(dnnl_memory_desc_t md);
int dnnl_memory_desc_equal(const_dnnl_memory_desc_t lhs, const_dnnl_memory_desc_t rhs);
size_t dnnl_memory_desc_get_size(const_dnnl_memory_desc_t md);
dnnl_status_t dnnl_memory_create(dnnl_memory_t *memory, const_dnnl_memory_desc_t md, dnnl_engine_t engine,
                                 void *handle);
dnnl_status_t dnnl_memory_set_data_handle(dnnl_memory_t memory, void *handle);
dnnl_status_t dnnl_memory_destroy(dnnl_memory_t memory);
dnnl_status_t dnnl_convolution_forward_primitive_desc_create(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, int prop_kind, int alg_kind, const_dnnl_memory_desc_t src,
    const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t bias, const_dnnl_memory_desc_t dst,
    const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r,
    const_dnnl_primitive_attr_t attr);
dnnl_status_t dnnl_convolution_backward_data_primitive_desc_create(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, int alg_kind, const_dnnl_memory_desc_t diff_src,
    const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t diff_dst, const dnnl_dims_t strides,
    const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r,
    const_dnnl_primitive_desc_t hint_fwd_pd, const_dnnl_primitive_attr_t attr);
dnnl_status_t dnnl_convolution_backward_weights_primitive_desc_create(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, int alg_kind, const_dnnl_memory_desc_t src,
    const_dnnl_memory_desc_t diff_weights, const_dnnl_memory_desc_t diff_bias, const_dnnl_memory_desc_t diff_dst,
    const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l,
    const dnnl_dims_t padding_r, const_dnnl_primitive_desc_t hint_fwd_pd, const_dnnl_primitive_attr_t attr);
dnnl_status_t dnnl_reorder_primitive_desc_create(dnnl_primitive_desc_t *pd, const_dnnl_memory_desc_t src,
                                                 dnnl_engine_t src_engine, const_dnnl_memory_desc_t dst,
                                                 dnnl_engine_t dst_engine, const_dnnl_primitive_attr_t attr);
const_dnnl_memory_desc_t dnnl_primitive_desc_query_md(const_dnnl_primitive_desc_t pd, int what, int index);
dnnl_status_t dnnl_primitive_desc_destroy(dnnl_primitive_desc_t pd);
dnnl_status_t dnnl_primitive_create(dnnl_primitive_t *primitive, const_dnnl_primitive_desc_t pd);
dnnl_status_t dnnl_primitive_execute(const_dnnl_primitive_t primitive, dnnl_stream_t stream, int nargs,
                                     const dnnl_exec_arg_t *args);
dnnl_status_t dnnl_primitive_attr_create(dnnl_primitive_attr_t *attr);
dnnl_status_t dnnl_primitive_attr_destroy(dnnl_primitive_attr_t attr);
dnnl_status_t dnnl_primitive_attr_set_scratchpad_mode(dnnl_primitive_attr_t attr, int mode);
dnnl_status_t dnnl_post_ops_create(dnnl_post_ops_t *post_ops);
dnnl_status_t dnnl_post_ops_destroy(dnnl_post_ops_t post_ops);
dnnl_status_t dnnl_post_ops_append_eltwise(dnnl_post_ops_t post_ops, int alg_kind, float alpha, float beta);
dnnl_status_t dnnl_primitive_attr_set_post_ops(dnnl_primitive_attr_t attr, const_dnnl_post_ops_t post_ops);
const char *dnnl_scratchpad_mode2str(int v);
const char *dnnl_dt2str(int v);
const char *dnnl_fmt_tag2str(int v);
const char *dnnl_prop_kind2str(int v);
const char *dnnl_alg_kind2str(int v);
const char *dnnl_engine_kind2str(int v);
dnnl_status_t dnnl_primitive_desc_query(const_dnnl_primitive_desc_t pd, int what, int index, void *result);
dnnl_status_t dnnl_primitive_desc_next_impl(dnnl_primitive_desc_t pd);
dnnl_status_t dnnl_set_max_cpu_isa(int isa);
int dnnl_get_effective_cpu_isa(void);
}
}  // namespace dnnl_decl

#define VZ_DNNL_FUNCTIONS(X)                                                                                  \
  X(dnnl_engine_create) X(dnnl_threadpool_interop_stream_create) X(dnnl_threadpool_interop_set_max_concurrency) \
  X(dnnl_threadpool_interop_get_max_concurrency) X(dnnl_threadpool_interop_sgemm) X(dnnl_stream_wait)           \
  X(dnnl_memory_desc_create_with_tag) X(dnnl_memory_desc_destroy) X(dnnl_memory_desc_equal)                   \
  X(dnnl_memory_desc_get_size) X(dnnl_memory_create) X(dnnl_memory_set_data_handle) X(dnnl_memory_destroy)    \
  X(dnnl_convolution_forward_primitive_desc_create) X(dnnl_convolution_backward_data_primitive_desc_create)   \
  X(dnnl_convolution_backward_weights_primitive_desc_create) X(dnnl_reorder_primitive_desc_create)            \
  X(dnnl_primitive_desc_query_md) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_create)                    \
  X(dnnl_primitive_execute) X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy)                     \
  X(dnnl_primitive_attr_set_scratchpad_mode) X(dnnl_scratchpad_mode2str) X(dnnl_dt2str) X(dnnl_fmt_tag2str)   \
  X(dnnl_prop_kind2str) X(dnnl_alg_kind2str) X(dnnl_engine_kind2str) X(dnnl_set_max_cpu_isa)                 \
  X(dnnl_get_effective_cpu_isa) X(dnnl_primitive_desc_query) X(dnnl_primitive_desc_next_impl) X(dnnl_post_ops_create)                    \
  X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_eltwise) X(dnnl_primitive_attr_set_post_ops)

namespace {
// One pointer per function, named as the function, so that the code below reads as plain oneDNN calls.
#define VZ_DNNL_POINTER(name) decltype(&dnnl_decl::name) name = nullptr;
VZ_DNNL_FUNCTIONS(VZ_DNNL_POINTER)
#undef VZ_DNNL_POINTER
std::atomic<bool> g_dnnl_loaded{false};
}  // namespace

namespace {
// enumerations (oneDNN 3.x); checked against the library by VzConvSelfCheck()
constexpr int kCpu = 1;                 // dnnl_cpu
constexpr int kF32 = 3;                 // dnnl_f32
constexpr int kTagAny = 1;              // dnnl_format_tag_any
constexpr int kTagA = 2;                // dnnl_a (a 1-D bias)
constexpr int kTagAbcd = 5;             // dnnl_abcd (NCHW / OIHW)
constexpr int kForwardTraining = 64;    // dnnl_forward_training
constexpr int kForwardInference = 96;   // dnnl_forward_inference
constexpr int kConvolutionDirect = 1;   // dnnl_convolution_direct
constexpr int kEltwiseRelu = 0x20;      // dnnl_eltwise_relu
constexpr int kQuerySrcMd = 129;        // dnnl_query_src_md; then diff_src, weights, diff_weights, dst, diff_dst
constexpr int kQueryDiffSrcMd = 130;
constexpr int kQueryWeightsMd = 131;
constexpr int kQueryDiffWeightsMd = 132;
constexpr int kQueryDstMd = 133;
constexpr int kQueryDiffDstMd = 134;
constexpr int kQueryScratchpadMd = 136;  // after workspace (135)
constexpr int kQueryImplInfoStr = 8;    // dnnl_query_impl_info_str
constexpr int kScratchpadUser = 1;      // dnnl_scratchpad_mode_user
constexpr int kArgSrc = 1, kArgDst = 17, kArgWeights = 33, kArgBias = 41, kArgDiffSrc = 129, kArgDiffDst = 145,
              kArgDiffWeights = 161, kArgScratchpad = 80;  // DNNL_ARG_*; reorders use FROM = SRC, TO = DST

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

// One thread: for the batch-split candidates, where each thread runs its own slice of the batch.
struct SerialThreadpool final : ThreadpoolIface {
  int get_num_threads() const override { return 1; }
  bool get_in_parallel() const override { return false; }
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    for (int i = 0; i < n; ++i) fn(i, n);
  }
  uint64_t get_flags() const override { return 0; }
  void wait() override {}
};

#define VZ_CHECK(call)           \
  do {                           \
    if ((call) != 0) return false; \
  } while (0)

dnnl_engine_t Engine() {
  static dnnl_engine_t engine = [] {
    dnnl_engine_t e = nullptr;
    if (dnnl_engine_create(&e, kCpu, 0) != 0) e = nullptr;
    return e;
  }();
  return engine;
}

template <class Pool>
dnnl_stream_t MakeStream(Pool *pool) {
  dnnl_stream_t s = nullptr;
  if (Engine() == nullptr || dnnl_threadpool_interop_stream_create(&s, Engine(), pool) != 0) s = nullptr;
  return s;
}

// One stream per calling thread (MindSpore may run independent ops on several threads): Stream() runs
// a primitive on all OpenMP threads, SerialStream() on the calling thread only.
OmpThreadpool *Pool() {
  thread_local OmpThreadpool pool;
  return &pool;
}

dnnl_stream_t Stream() {
  thread_local dnnl_stream_t stream = MakeStream(Pool());
  return stream;
}

dnnl_stream_t SerialStream() {
  thread_local SerialThreadpool pool;
  thread_local dnnl_stream_t stream = MakeStream(&pool);
  return stream;
}

// Growable 64-byte-aligned scratch buffers, per calling thread, for the reordered tensors.
struct Scratch {
  void *ptr = nullptr;
  size_t size = 0;
  void *Get(size_t n) {
    if (n > size) {
      std::free(ptr);
      ptr = std::aligned_alloc(64, (n + 63) / 64 * 64);
      size = ptr ? n : 0;
    }
    return ptr;
  }
  void Touch(size_t n) {  // grow to n bytes and fault the pages in
    const size_t before = size;
    if (n > before && Get(n) != nullptr) std::memset(ptr, 0, size);
  }
  ~Scratch() { std::free(ptr); }
};
// [0..2]: the operands (input 0, input 1, output) in the primitive's layout; [3]: the weights shared by
// the threads of a batch-split run; [4]: a thread's partial weight gradient in a batch-split run; [5]: a
// further slice's gradient when a thread runs several slices; [6]: oneDNN's scratchpad; [7], [8]: the
// whole-batch im2col and the transposed output gradient of BatchGemmBackwardWeights; [9]: Winograd's
// transformed weights (the calling thread's set, shared by the call's threads; the weight gradient's
// products); [10]-[12]: a Winograd block (transformed input, products or the weight gradient's transformed
// output gradient, row buffers); [13], [14]: the weight gradient's transposed operands.
enum { kSharedWeights = 3, kPartial = 4, kExtra = 5, kScratchpad = 6, kColumns = 7, kTransposed = 8, kWinoU = 9,
       kWinoV = 10, kWinoM = 11, kWinoRows = 12, kWinoVT = 13, kWinoYP = 14, kScratchSlots = 15 };
//
// The buffers come in sets, one set per thread *running* a convolution, not per thread that ever ran one:
// MindSpore launches kernels from several actor threads, and thread-local sets each grown to the largest
// layer multiplied the scratch memory by their number. Execute() leases a set from a pool for the call
// (and so does each OpenMP worker of a batch-split run), so the number of sets is the peak concurrency.
struct ScratchSet {
  Scratch buffers[kScratchSlots];
};
std::mutex g_scratch_mutex;
std::vector<ScratchSet *> g_scratch_all, g_scratch_free;  // guarded by g_scratch_mutex; never freed
thread_local ScratchSet *t_scratch = nullptr;

// Holds a set for this thread for its lifetime (nested leases share the outer one).
struct ScratchLease {
  bool owner = false;
  ScratchLease() {
    if (t_scratch != nullptr) return;
    std::lock_guard<std::mutex> lock(g_scratch_mutex);
    if (g_scratch_free.empty()) {
      g_scratch_all.push_back(new ScratchSet());
      g_scratch_free.push_back(g_scratch_all.back());
    }
    t_scratch = g_scratch_free.back();
    g_scratch_free.pop_back();
    owner = true;
  }
  ~ScratchLease() {
    if (!owner) return;
    std::lock_guard<std::mutex> lock(g_scratch_mutex);
    g_scratch_free.push_back(t_scratch);
    t_scratch = nullptr;
  }
  ScratchLease(const ScratchLease &) = delete;
  ScratchLease &operator=(const ScratchLease &) = delete;
};

Scratch &ScratchBuffer(int i) {
  if (t_scratch == nullptr) {  // outside a lease (should not happen): a set of the thread's own
    thread_local ScratchLease own;
  }
  return t_scratch->buffers[i];
}

// Every primitive is created with a user-managed scratchpad, and each calling thread passes its own
// (ScratchBuffer(kScratchpad)): the same primitive may run on several threads at once (the batch-split
// candidates; MindSpore's parallel actors), where a library-managed scratchpad was found to be shared
// (oneDNN 3.10's brgemm convolution gave wrong results when two threads ran it concurrently).
const_dnnl_primitive_attr_t Attr() {
  static dnnl_primitive_attr_t attr = [] {
    dnnl_primitive_attr_t a = nullptr;
    if (dnnl_primitive_attr_create(&a) != 0) return static_cast<dnnl_primitive_attr_t>(nullptr);
    if (dnnl_primitive_attr_set_scratchpad_mode(a, kScratchpadUser) != 0) {
      dnnl_primitive_attr_destroy(a);
      return static_cast<dnnl_primitive_attr_t>(nullptr);
    }
    return a;
  }();
  return attr;
}

// The same with a ReLU applied to the convolution's output inside the primitive (a post-op: no extra
// pass over the output), for the fused eval-mode Conv -> BatchNorm -> ReLU (docs/performance.md).
const_dnnl_primitive_attr_t ReluAttr() {
  static dnnl_primitive_attr_t attr = [] {
    dnnl_primitive_attr_t a = nullptr;
    dnnl_post_ops_t post = nullptr;
    bool ok = dnnl_primitive_attr_create(&a) == 0 && dnnl_primitive_attr_set_scratchpad_mode(a, kScratchpadUser) == 0 &&
              dnnl_post_ops_create(&post) == 0 && dnnl_post_ops_append_eltwise(post, kEltwiseRelu, 0.0f, 0.0f) == 0 &&
              dnnl_primitive_attr_set_post_ops(a, post) == 0;
    if (post) dnnl_post_ops_destroy(post);
    if (!ok && a) dnnl_primitive_attr_destroy(a);
    return ok ? a : static_cast<dnnl_primitive_attr_t>(nullptr);
  }();
  return attr;
}

// A primitive with its descriptor (kept for the scratchpad's memory descriptor).
struct Primitive {
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_primitive_t prim = nullptr;
  const_dnnl_memory_desc_t scratchpad_md = nullptr;  // owned by pd
  size_t scratchpad_bytes = 0;
};

bool MakePrimitive(Primitive *p) {  // p->pd set
  VZ_CHECK(dnnl_primitive_create(&p->prim, p->pd));
  p->scratchpad_md = dnnl_primitive_desc_query_md(p->pd, kQueryScratchpadMd, 0);
  p->scratchpad_bytes = p->scratchpad_md ? dnnl_memory_desc_get_size(p->scratchpad_md) : 0;
  return true;
}

// Runs p with args plus, when it needs one, the calling thread's scratchpad.
bool ExecuteWithScratchpad(const Primitive &p, int nargs, const dnnl_exec_arg_t *args, dnnl_stream_t stream) {
  dnnl_exec_arg_t all[5];
  for (int i = 0; i < nargs; ++i) all[i] = args[i];
  dnnl_memory_t scratchpad = nullptr;
  if (p.scratchpad_bytes > 0) {
    void *buffer = ScratchBuffer(kScratchpad).Get(p.scratchpad_bytes);
    if (buffer == nullptr || dnnl_memory_create(&scratchpad, p.scratchpad_md, Engine(), buffer) != 0) return false;
    all[nargs++] = {kArgScratchpad, scratchpad};
  }
  const bool ok = dnnl_primitive_execute(p.prim, stream, nargs, all) == 0;
  if (scratchpad) dnnl_memory_destroy(scratchpad);
  return ok;
}

// A tensor as the user holds it (plain NCHW/OIHW) and as the primitive wants it.
struct Operand {
  dnnl_memory_desc_t user_md = nullptr;
  const_dnnl_memory_desc_t prim_md = nullptr;  // owned by the primitive descriptor
  Primitive reorder;                           // user -> prim (inputs) or prim -> user (outputs)
  bool same = true;
};

bool MakeOperand(Operand *op, const dnnl_dims_t dims, const_dnnl_primitive_desc_t pd, int query, bool is_input) {
  VZ_CHECK(dnnl_memory_desc_create_with_tag(&op->user_md, 4, dims, kF32, kTagAbcd));
  op->prim_md = dnnl_primitive_desc_query_md(pd, query, 0);
  if (op->prim_md == nullptr) return false;
  op->same = dnnl_memory_desc_equal(op->user_md, op->prim_md) != 0;
  if (op->same) return true;
  const_dnnl_memory_desc_t from = is_input ? op->user_md : op->prim_md;
  const_dnnl_memory_desc_t to = is_input ? op->prim_md : op->user_md;
  VZ_CHECK(dnnl_reorder_primitive_desc_create(&op->reorder.pd, from, Engine(), to, Engine(), Attr()));
  return MakePrimitive(&op->reorder);
}

bool Reorder(const Primitive &reorder, const_dnnl_memory_desc_t from_md, void *from,
             const_dnnl_memory_desc_t to_md, void *to, dnnl_stream_t stream) {
  dnnl_memory_t a = nullptr, b = nullptr;
  bool ok = dnnl_memory_create(&a, from_md, Engine(), from) == 0 && dnnl_memory_create(&b, to_md, Engine(), to) == 0;
  if (ok) {
    const dnnl_exec_arg_t args[2] = {{kArgSrc, a}, {kArgDst, b}};
    ok = ExecuteWithScratchpad(reorder, 2, args, stream);
  }
  if (a) dnnl_memory_destroy(a);
  if (b) dnnl_memory_destroy(b);
  return ok;
}

// kInferenceBias / kInferenceBiasRelu: eval-mode forward with a per-channel bias added (and a ReLU
// applied) inside the primitive: the fused Conv -> BatchNorm -> ReLU, BatchNorm folded into the
// weights and bias by the caller (visionzoo/ops/conv.py).
enum Kind { kForward = 0, kInference = 1, kBackwardData = 2, kBackwardWeights = 3, kInferenceBias = 4,
            kInferenceBiasRelu = 5 };
bool IsInference(int kind) { return kind == kInference || kind == kInferenceBias || kind == kInferenceBiasRelu; }
bool HasBias(int kind) { return kind == kInferenceBias || kind == kInferenceBiasRelu; }
// kind, N, C, H, W, O, kh, kw, OH, OW, sh, sw, pt, pb, pl, pr
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                       int, int, int, int, int>;

// A convolution primitive for one geometry and direction, with its three operands in the order
// (input 0, input 1, output): forward (src, weights, dst), backward data (diff_dst, weights, diff_src),
// backward weights (src, diff_dst, diff_weights).
struct Conv {
  Primitive p;
  Operand ops[3];
  int args[3];
  dnnl_memory_desc_t bias_md = nullptr;  // plain 1-D [O], for kInferenceBias*
};

// Moves pd past reference implementations ("ref" in the name, e.g. "jit_uni_ncsp:conv+ref:any", which
// oneDNN picks first for plain NCHW tensors at the AVX-512 level and which runs 30-100x slower than
// "x64:gemm:jit"); false when only reference implementations remain.
bool SkipReference(dnnl_primitive_desc_t pd) {
  for (;;) {
    const char *impl = nullptr;
    if (dnnl_primitive_desc_query(pd, kQueryImplInfoStr, 0, &impl) != 0 || impl == nullptr) return false;
    if (std::strstr(impl, "ref") == nullptr) return true;
    if (dnnl_primitive_desc_next_impl(pd) != 0) return false;
  }
}

// Builds the primitive for key k with every tensor in `layout`: kTagAny (oneDNN chooses) or kTagAbcd.
// Eval-mode kinds use a forward_training primitive, as PyTorch does (the same convolution: the kind only
// tells oneDNN whether a backward pass may follow), unless `inference_kind`: for forward_inference with
// "any" layouts oneDNN 3.10 at the AVX-512 level picks its brgemm kernel on NHWC tensors
// ("brg_conv_fwd", acdb) instead of the direct kernel on channel-blocked ones ("jit:avx512_core",
// nChw16c), which was slower on VGG's layers (0.57 s vs 0.42-0.49 s for vgg16_bn_cifar's eval forward at
// batch 128) and is kept as a fifth candidate of the eval kinds (GetCandidates).
bool Build(Conv *c, const Key &k, int layout, bool inference_kind = false) {
  const int kind = std::get<0>(k);
  const dnnl_dims_t src = {std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k)};
  const dnnl_dims_t wei = {std::get<5>(k), std::get<2>(k), std::get<6>(k), std::get<7>(k)};
  const dnnl_dims_t dst = {std::get<1>(k), std::get<5>(k), std::get<8>(k), std::get<9>(k)};
  const dnnl_dims_t strides = {std::get<10>(k), std::get<11>(k)};
  const dnnl_dims_t dilates = {0, 0};
  const dnnl_dims_t pad_l = {std::get<12>(k), std::get<14>(k)};
  const dnnl_dims_t pad_r = {std::get<13>(k), std::get<15>(k)};
  dnnl_memory_desc_t src_md = nullptr, wei_md = nullptr, dst_md = nullptr;
  bool ok = dnnl_memory_desc_create_with_tag(&src_md, 4, src, kF32, layout) == 0 &&
            dnnl_memory_desc_create_with_tag(&wei_md, 4, wei, kF32, layout) == 0 &&
            dnnl_memory_desc_create_with_tag(&dst_md, 4, dst, kF32, layout) == 0;
  dnnl_primitive_desc_t fwd = nullptr;
  const int prop = inference_kind ? kForwardInference : kForwardTraining;
  if (ok && HasBias(kind)) {
    const dnnl_dims_t bias = {std::get<5>(k)};
    ok = dnnl_memory_desc_create_with_tag(&c->bias_md, 1, bias, kF32, kTagA) == 0;
  }
  const_dnnl_primitive_attr_t attr = kind == kInferenceBiasRelu ? ReluAttr() : Attr();
  ok = ok && attr != nullptr &&
       dnnl_convolution_forward_primitive_desc_create(&fwd, Engine(), prop, kConvolutionDirect, src_md, wei_md,
                                                      c->bias_md, dst_md, strides, dilates, pad_l, pad_r, attr) == 0;
  if (ok && (kind == kForward || IsInference(kind))) {
    c->p.pd = fwd;
    fwd = nullptr;
    ok = SkipReference(c->p.pd) && MakeOperand(&c->ops[0], src, c->p.pd, kQuerySrcMd, true) &&
         MakeOperand(&c->ops[1], wei, c->p.pd, kQueryWeightsMd, true) &&
         MakeOperand(&c->ops[2], dst, c->p.pd, kQueryDstMd, false);
    c->args[0] = kArgSrc; c->args[1] = kArgWeights; c->args[2] = kArgDst;
  } else if (ok && kind == kBackwardData) {
    ok = dnnl_convolution_backward_data_primitive_desc_create(&c->p.pd, Engine(), kConvolutionDirect, src_md, wei_md,
                                                              dst_md, strides, dilates, pad_l, pad_r, fwd,
                                                              Attr()) == 0 &&
         SkipReference(c->p.pd) && MakeOperand(&c->ops[0], dst, c->p.pd, kQueryDiffDstMd, true) &&
         MakeOperand(&c->ops[1], wei, c->p.pd, kQueryWeightsMd, true) &&
         MakeOperand(&c->ops[2], src, c->p.pd, kQueryDiffSrcMd, false);
    c->args[0] = kArgDiffDst; c->args[1] = kArgWeights; c->args[2] = kArgDiffSrc;
  } else if (ok) {
    ok = dnnl_convolution_backward_weights_primitive_desc_create(&c->p.pd, Engine(), kConvolutionDirect, src_md,
                                                                 wei_md, nullptr, dst_md, strides, dilates, pad_l,
                                                                 pad_r, fwd, Attr()) == 0 &&
         SkipReference(c->p.pd) && MakeOperand(&c->ops[0], src, c->p.pd, kQuerySrcMd, true) &&
         MakeOperand(&c->ops[1], dst, c->p.pd, kQueryDiffDstMd, true) &&
         MakeOperand(&c->ops[2], wei, c->p.pd, kQueryDiffWeightsMd, false);
    c->args[0] = kArgSrc; c->args[1] = kArgDiffDst; c->args[2] = kArgDiffWeights;
  }
  ok = ok && MakePrimitive(&c->p);
  if (fwd) dnnl_primitive_desc_destroy(fwd);
  if (src_md) dnnl_memory_desc_destroy(src_md);
  if (wei_md) dnnl_memory_desc_destroy(wei_md);
  if (dst_md) dnnl_memory_desc_destroy(dst_md);
  return ok;
}

// Executes the primitive on buffers already in its layouts (bias: the plain [O] bias of kInferenceBias*).
bool ExecutePrimitive(const Conv &c, void *const prim[3], const void *bias, dnnl_stream_t stream) {
  dnnl_memory_t mem[4] = {nullptr, nullptr, nullptr, nullptr};
  bool ok = true;
  for (int i = 0; i < 3 && ok; ++i) ok = dnnl_memory_create(&mem[i], c.ops[i].prim_md, Engine(), prim[i]) == 0;
  if (ok && c.bias_md != nullptr)
    ok = bias != nullptr && dnnl_memory_create(&mem[3], c.bias_md, Engine(), const_cast<void *>(bias)) == 0;
  if (ok) {
    const dnnl_exec_arg_t args[4] = {{c.args[0], mem[0]}, {c.args[1], mem[1]}, {c.args[2], mem[2]},
                                     {kArgBias, mem[3]}};
    ok = ExecuteWithScratchpad(c.p, c.bias_md != nullptr ? 4 : 3, args, stream);
  }
  for (auto m : mem)
    if (m) dnnl_memory_destroy(m);
  return ok;
}

// Operand i of c in the primitive's layout: the user's buffer itself, or scratch buffer `slot`, filled
// from the user's buffer when it is an input.
void *PrimBuffer(const Conv &c, int i, void *user, int slot, dnnl_stream_t stream) {
  if (c.ops[i].same) return user;
  void *prim = ScratchBuffer(slot).Get(dnnl_memory_desc_get_size(c.ops[i].prim_md));
  if (prim == nullptr || (i < 2 && !Reorder(c.ops[i].reorder, c.ops[i].user_md, user, c.ops[i].prim_md, prim, stream)))
    return nullptr;
  return prim;
}

// Runs conv on user buffers in0, in1 -> out (plain layouts) on all threads, reordering through scratch.
bool Run(const Conv &c, void *in0, void *in1, void *out, const void *bias) {
  void *user[3] = {in0, in1, out};
  void *prim[3];
  for (int i = 0; i < 3; ++i)
    if ((prim[i] = PrimBuffer(c, i, user[i], i, Stream())) == nullptr) return false;
  bool ok = ExecutePrimitive(c, prim, bias, Stream());
  if (ok && !c.ops[2].same) ok = Reorder(c.ops[2].reorder, c.ops[2].prim_md, prim[2], c.ops[2].user_md, out, Stream());
  return ok && dnnl_stream_wait(Stream()) == 0;
}

// At most this many threads per split run (0: one per slice); the self-check sets 1 to cover a thread
// running several slices, as happens when called from inside a parallel region.
std::atomic<int> g_split_threads{0};

// The batch-split formulation: c is built for one of `parts` equal slices of the batch, and each
// OpenMP thread runs whole slices on its own with single-threaded primitives. Forward and backward data
// slice their activations (contiguous in NCHW) and share the weights, reordered once; backward weights
// slices both inputs and adds the threads' partial gradients. No synchronisation inside a primitive,
// but a reduction for the weights and less cache sharing: faster on some layers, slower on others.

bool RunSplit(const Conv &c, int kind, int parts, void *in0, void *in1, void *out, const void *bias) {
  const bool reduce = kind == kBackwardWeights;
  const size_t bytes[3] = {dnnl_memory_desc_get_size(c.ops[0].user_md), dnnl_memory_desc_get_size(c.ops[1].user_md),
                           dnnl_memory_desc_get_size(c.ops[2].user_md)};
  void *shared = reduce ? nullptr : PrimBuffer(c, 1, in1, kSharedWeights, Stream());
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
      mine = tid == 0 ? static_cast<float *>(out) : static_cast<float *>(ScratchBuffer(kPartial).Get(bytes[2]));
      if (mine == nullptr) ok = false;
      partial[tid] = mine;
    }
    for (int t = tid; t < parts && ok; t += nthr) {  // thread tid runs slices tid, tid + nthr, ...
      const bool first = t == tid;
      char *user[3] = {static_cast<char *>(in0) + t * bytes[0],
                       reduce ? static_cast<char *>(in1) + t * bytes[1] : nullptr,
                       reduce ? reinterpret_cast<char *>(first ? mine : static_cast<float *>(
                                                                            ScratchBuffer(kExtra).Get(bytes[2])))
                              : static_cast<char *>(out) + t * bytes[2]};
      void *prim[3] = {PrimBuffer(c, 0, user[0], 0, stream), reduce ? PrimBuffer(c, 1, user[1], 1, stream) : shared,
                       user[2] == nullptr ? nullptr : PrimBuffer(c, 2, user[2], 2, stream)};
      if (prim[0] == nullptr || prim[1] == nullptr || prim[2] == nullptr || !ExecutePrimitive(c, prim, bias, stream) ||
          (!c.ops[2].same &&
           !Reorder(c.ops[2].reorder, c.ops[2].prim_md, prim[2], c.ops[2].user_md, user[2], stream)) ||
          dnnl_stream_wait(stream) != 0) {
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

// the batch GEMM's im2col buffer is at most this large, or one image's (kept per thread, like all
// scratch); VzConvMaxColumnBytes changes it for tests
std::atomic<size_t> g_max_column_bytes{size_t(64) << 20};

// Images per GEMM of BatchGemmBackwardWeights: as many as keep its im2col columns within the limit.
int64_t ImagesPerGemm(const Key &k) {
  const size_t per_image = sizeof(float) * size_t(std::get<2>(k) * std::get<6>(k) * std::get<7>(k)) *
                           size_t(std::get<8>(k) * std::get<9>(k));
  return std::max<int64_t>(1, std::min<int64_t>(std::get<1>(k), int64_t(g_max_column_bytes.load() / per_image)));
}

// Bytes of BatchGemmBackwardWeights' two buffers for one group of images: the im2col columns
// [C*KH*KW, images*OH*OW] and the transposed output gradient [O, images*OH*OW].
std::pair<size_t, size_t> BatchGemmBufferBytes(const Key &k) {
  const size_t inner = sizeof(float) * size_t(ImagesPerGemm(k) * std::get<8>(k) * std::get<9>(k));
  return {inner * size_t(std::get<2>(k) * std::get<6>(k) * std::get<7>(k)), inner * size_t(std::get<5>(k))};
}

// dw[O, C*KH*KW] = sum over groups of images of dyt[O, n*OH*OW] x col[C*KH*KW, n*OH*OW]^T, where
// dyt[o, m*OH*OW + p] = dy[m, o, p] and col[(c, a, b), m*OH*OW + i*OW + j] = x[m, c, i*sh - pt + a,
// j*sw - pl + b] (0 in the padding), m running over the group's images.
bool BatchGemmBackwardWeights(const Key &k, const float *x, const float *dy, float *dw) {
  const int64_t N = std::get<1>(k), C = std::get<2>(k), H = std::get<3>(k), W = std::get<4>(k), O = std::get<5>(k),
                KH = std::get<6>(k), KW = std::get<7>(k), OH = std::get<8>(k), OW = std::get<9>(k);
  const int sh = std::get<10>(k), sw = std::get<11>(k), pt = std::get<12>(k), pl = std::get<14>(k);
  const int64_t P = OH * OW, CK = C * KH * KW, group = ImagesPerGemm(k);
  const auto bytes = BatchGemmBufferBytes(k);
  float *col = static_cast<float *>(ScratchBuffer(kColumns).Get(bytes.first));
  float *dyt = static_cast<float *>(ScratchBuffer(kTransposed).Get(bytes.second));
  if (col == nullptr || dyt == nullptr) return false;
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    const int64_t images = std::min(group, N - n0), K = images * P;
#pragma omp parallel
    {
#pragma omp for collapse(2) schedule(static) nowait
      for (int64_t o = 0; o < O; ++o)
        for (int64_t m = 0; m < images; ++m)
          std::memcpy(dyt + o * K + m * P, dy + ((n0 + m) * O + o) * P, sizeof(float) * P);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < CK; ++r) {
        const int64_t c = r / (KH * KW), a = r / KW % KH, b = r % KW;
        float *row = col + r * K;
        for (int64_t m = 0; m < images; ++m) {
          const float *plane = x + ((n0 + m) * C + c) * H * W;
          for (int64_t i = 0; i < OH; ++i) {
            const int64_t hi = i * sh - pt + a;
            float *out = row + m * P + i * OW;
            if (hi < 0 || hi >= H) {
              std::memset(out, 0, sizeof(float) * OW);
              continue;
            }
            for (int64_t j = 0; j < OW; ++j) {
              const int64_t wi = j * sw - pl + b;
              out[j] = wi >= 0 && wi < W ? plane[hi * W + wi] : 0.0f;
            }
          }
        }
      }
    }
    if (dnnl_threadpool_interop_sgemm('N', 'T', O, CK, K, 1.0f, dyt, K, col, K, n0 == 0 ? 0.0f : 1.0f, dw, CK,
                                      Pool()) != 0)
      return false;
  }
  return true;
}

// The formulations tried for each geometry and direction. Layout: oneDNN's choice (channel-blocked,
// direct kernels; what PyTorch asks for) or plain NCHW/OIHW (im2col + GEMM; what MindSpore's Conv2D asks
// for). Threading: one primitive run by all threads, or the batch split between threads (RunSplit).
// None wins everywhere (a 3-channel 7x7/2 stem's backward data is fastest as GEMM, some of VGG's layers
// when split), so each geometry and direction tunes itself in its first call, as cuDNN-style "benchmark"
// modes do: that call runs the candidates (they all compute the same result, to float32 rounding) on its
// own operands one after another, round after round, timing each, until every remaining candidate has
// kRounds timings (kShortRounds when all are short, being noisier); a candidate slower than kDropRatio x
// the best so far leaves after a round, and the one with the best timing computes that call's result and
// every later one. Repeated, interleaved timings resist the noise of a shared machine better than one
// run each. Every result of a process thus comes from the formulation it keeps, so a run that tunes and
// a later run that starts with the persisted choice (VzConvPresetChoice) compute bit-identical results.
//
// The eval-mode kinds have a fifth candidate: oneDNN's own choice for a forward_inference primitive
// (brgemm on NHWC at the AVX-512 level; the four others use forward_training primitives, see Build).
//
// Backward weights has a fifth candidate, BatchGemmBackwardWeights: oneDNN's GEMM formulation runs one
// GEMM per image, whose inner dimension is that image's output pixels: 4 or 16 on VGG's last layers at
// 32x32 input, far too few to run a GEMM near peak (0.08 s for 2.4 GFLOP there). Gathering many images
// first makes one GEMM with (images x OH*OW) inner products, as many images at a time as fit in
// g_max_column_bytes (64 MiB) of im2col columns.
//
// A sixth candidate exists for 3x3 stride-1 convolutions (padding up to 2) in every direction: Winograd's
// F(4x4, 3x3) or F(2x2, 3x3) (winograd.h), 36 (or 16) multiply-adds per 4x4 (2x2) output tile and input
// channel instead of 144 (36), on the plain NCHW tensors (no reorders), with the bias and ReLU of the
// fused eval kinds applied in its output transform. It needs AVX2+FMA at least, and uses AVX-512 where the
// kernels' oneDNN instance does (the same ISA choice, a user's cap included).
constexpr int kCandidates = 6;
constexpr int kFifth = 4;  // BatchGemmBackwardWeights, or the eval kinds' forward_inference primitive
constexpr int kWinograd = 5;
constexpr int kLayout[kCandidates] = {kTagAny, kTagAbcd, kTagAny, kTagAbcd, kTagAbcd, kTagAbcd};
constexpr bool kSplit[kCandidates] = {false, false, true, true, false, false};
constexpr int kRounds = 3, kShortRounds = 3;  // timings per candidate (best of): 3 resists a noisy machine
constexpr double kShort = 0.02, kDropRatio = 1.5;

struct Candidates {
  Conv conv[kCandidates];
  std::mutex build;               // guards tried and built
  bool tried[kCandidates] = {};   // Build attempted (EnsureBuilt)
  bool built[kCandidates] = {};
  vzwino::Plan wino;  // the Winograd candidate's plan (wino.isa == kNone: not built)
  Key key;
  int kind = 0;
  int parts = 1;  // slices of the batch for the split candidates
  std::atomic<int> chosen{-1};
  std::mutex tune;  // guards the tuning state below
  bool active[kCandidates] = {};
  int timings[kCandidates] = {};
  double best[kCandidates] = {1e300, 1e300, 1e300, 1e300, 1e300, 1e300};
  std::atomic<int> calls{0};  // tuning runs so far
};

// Built once per key (JIT compilation is the expensive part) and kept for the process. The split
// candidates exist when there are several threads and the batch divides evenly between them; their
// primitives are built for one slice and for a single thread.
std::mutex g_cache_mutex;
std::map<Key, std::unique_ptr<Candidates>> g_cache;
// Choices persisted by an earlier process (VzConvPresetChoice), applied when a geometry is first built and
// the candidate exists for it; guarded by g_cache_mutex.
std::map<Key, int> g_preset;

// The Winograd level the kernels' oneDNN instance allows: AVX-512 where it dispatches to AVX512_CORE
// or above, AVX2 (with FMA) where to AVX2 or above, none below.
int WinogradIsa() {
  const int isa = dnnl_get_effective_cpu_isa();
  constexpr int kAvx2Bits = 0x7, kAvx512CoreBits = 0x27;  // dnnl_cpu_isa_avx2 / _avx512_core (nested bits)
  if ((isa & kAvx512CoreBits) == kAvx512CoreBits) return vzwino::kAvx512;
  return (isa & kAvx2Bits) == kAvx2Bits ? vzwino::kAvx2 : vzwino::kNone;
}

// The whole schedule's bound on its transformed input and products (bytes each); VzConvWinogradWholeBytes
// changes it for tests (the blocked schedule on small geometries).
std::atomic<int64_t> g_wino_whole_bytes{int64_t(16) << 20};

// The Winograd plan of a geometry and direction (isa kNone where it does not apply: not 3x3 stride 1, a
// padding above 2, buffers past their bounds, or a CPU below AVX2). Backward data runs the forward plan
// of dy -> dx with the padding 2 - pad; the weight gradient has a plan of its own (winograd.h).
vzwino::Plan WinogradPlan(const Key &k, int kind) {
  const int64_t N = std::get<1>(k), C = std::get<2>(k), H = std::get<3>(k), W = std::get<4>(k), O = std::get<5>(k),
                OH = std::get<8>(k), OW = std::get<9>(k);
  if (std::get<6>(k) != 3 || std::get<7>(k) != 3 || std::get<10>(k) != 1 || std::get<11>(k) != 1)
    return vzwino::Plan();
  const int isa = WinogradIsa(), threads = omp_get_max_threads(), pt = std::get<12>(k), pl = std::get<14>(k);
  const int64_t whole = g_wino_whole_bytes.load();
  if (kind == kBackwardData) return vzwino::MakePlan(isa, threads, N, O, OH, OW, C, H, W, 2 - pt, 2 - pl, whole);
  if (kind == kBackwardWeights) return vzwino::MakeWeightPlan(isa, threads, N, C, H, W, O, OH, OW, pt, pl, whole);
  return vzwino::MakePlan(isa, threads, N, C, H, W, O, OH, OW, pt, pl, whole);
}

// The Winograd weight gradient from x and dy into dw. Whole: every buffer the calling thread's (shared);
// blocked: each thread's own, its partial sums added into thread 0's.
bool RunWinogradWeights(const vzwino::Plan &p, const float *x, const float *dy, float *dw) {
  auto get = [](int slot, size_t floats) {
    return static_cast<float *>(ScratchBuffer(slot).Get(sizeof(float) * floats));
  };
  vzwino::WeightBuffers shared{};
  if (p.whole) {
    shared = {get(kWinoV, p.v_floats()), get(kWinoM, p.y_floats()), get(kWinoVT, p.vt_floats()),
              get(kWinoYP, p.yp_floats()), get(kWinoU, p.w_floats()), nullptr};
    if (!shared.V || !shared.Y || !shared.VT || !shared.YP || !shared.M) return false;
  }
  std::vector<float *> partials(omp_get_max_threads(), nullptr);
  std::atomic<bool> ok{true};
#pragma omp parallel
  {
    ScratchLease lease;  // the calling thread (tid 0) keeps its own
    vzwino::WeightBuffers b = shared;
    if (!p.whole)
      b = {get(kWinoV, p.v_floats()), get(kWinoM, p.y_floats()), get(kWinoVT, p.vt_floats()),
           get(kWinoYP, p.yp_floats()), get(kWinoU, p.w_floats()), nullptr};
    b.buf = get(kWinoRows, p.row_floats());
    if (!b.V || !b.Y || !b.VT || !b.YP || !b.M || !b.buf) ok = false;
#pragma omp barrier
    if (ok) vzwino::RunWeights(p, x, dy, dw, b, partials.data());
  }
  return ok;
}

// Runs the Winograd candidate: in0 the input (x, or dy for backward data; x for the weight gradient), in1
// the weights as the layer holds them (dy for the weight gradient), out the result; bias (and the ReLU)
// for the fused eval kinds. The transformed weights (and, in the whole schedule, the transformed input and
// products) are the calling thread's scratch, shared by the call's threads; in the blocked schedule each
// thread has its own block buffers.
bool RunWinograd(const Candidates *c, const float *in0, const float *in1, float *out, const float *bias) {
  const vzwino::Plan &p = c->wino;
  if (p.weights) return RunWinogradWeights(p, in0, in1, out);
  float *U = static_cast<float *>(ScratchBuffer(kWinoU).Get(sizeof(float) * p.u_floats()));
  float *V = nullptr, *M = nullptr;
  if (p.whole) {
    V = static_cast<float *>(ScratchBuffer(kWinoV).Get(sizeof(float) * p.v_floats()));
    M = static_cast<float *>(ScratchBuffer(kWinoM).Get(sizeof(float) * p.m_floats()));
    if (V == nullptr || M == nullptr) return false;
  }
  if (U == nullptr) return false;
  const bool relu = c->kind == kInferenceBiasRelu, flip = c->kind == kBackwardData;
  const float *b = HasBias(c->kind) ? bias : nullptr;
  std::atomic<bool> ok{true};
#pragma omp parallel
  {
    ScratchLease lease;  // the calling thread (tid 0) keeps its own
    float *v = p.whole ? V : static_cast<float *>(ScratchBuffer(kWinoV).Get(sizeof(float) * p.v_floats()));
    float *m = p.whole ? M : static_cast<float *>(ScratchBuffer(kWinoM).Get(sizeof(float) * p.m_floats()));
    float *rows = static_cast<float *>(ScratchBuffer(kWinoRows).Get(sizeof(float) * p.row_floats()));
    if (v == nullptr || m == nullptr || rows == nullptr) ok = false;
#pragma omp barrier
    // every thread runs the plan's worksharing loops (all or none: a failed allocation stops them all)
    if (ok) vzwino::Run(p, in1, flip, in0, b, relu, out, U, v, m, rows);
  }
  return ok;
}

// Builds candidate i of c once (JIT compilation is the expensive part, and each primitive holds memory);
// true when the formulation exists for c's geometry. The split candidates exist when there are several
// threads and the batch divides evenly between them; their primitives are built for one slice and for a
// single thread.
bool EnsureBuilt(Candidates *c, int i) {
  std::lock_guard<std::mutex> lock(c->build);
  if (c->tried[i]) return c->built[i];
  c->tried[i] = true;
  const Key &key = c->key;
  if (i == kFifth) {
    c->built[i] = c->kind == kBackwardWeights || (IsInference(c->kind) && Build(&c->conv[i], key, kTagAny, true));
  } else if (i == kWinograd) {
    c->wino = WinogradPlan(key, c->kind);
    c->built[i] = c->wino.isa != vzwino::kNone;
  } else if (kSplit[i]) {
    int concurrency = 0;
    if (c->parts > 1 && dnnl_threadpool_interop_get_max_concurrency(&concurrency) == 0) {
      Key slice = key;
      std::get<1>(slice) = std::get<1>(key) / c->parts;
      dnnl_threadpool_interop_set_max_concurrency(1);  // a per-thread setting, for primitive creation
      c->built[i] = Build(&c->conv[i], slice, kLayout[i]);
      dnnl_threadpool_interop_set_max_concurrency(concurrency);
    }
  } else {
    c->built[i] = Build(&c->conv[i], key, kLayout[i]);
  }
  return c->built[i];
}

// The candidates of a geometry and direction, kept for the process. With a choice persisted by an earlier
// process (VzConvPresetChoice) only that formulation is built (others only if forced); otherwise every
// one is, for the tuning.
Candidates *GetCandidates(const Key &key) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return it->second.get();
  std::unique_ptr<Candidates> c(new Candidates());
  c->key = key;
  c->kind = std::get<0>(key);
  const int threads = omp_get_max_threads();
  c->parts = threads > 1 && std::get<1>(key) % threads == 0 ? threads : 1;
  const auto preset = g_preset.find(key);
  if (preset != g_preset.end() && preset->second >= 0 && preset->second < kCandidates &&
      EnsureBuilt(c.get(), preset->second)) {
    c->chosen = preset->second;
    c->active[preset->second] = true;
    return (g_cache[key] = std::move(c)).get();
  }
  int count = 0, last = -1;
  for (int i = 0; i < kCandidates; ++i)
    if (EnsureBuilt(c.get(), i)) ++count, last = i;
  if (count == 0) return nullptr;  // leaks the partial builds on this error path only
  if (count == 1) c->chosen = last;
  for (int i = 0; i < kCandidates; ++i) c->active[i] = c->built[i];
  return (g_cache[key] = std::move(c)).get();
}

// -1: tune (default); 0-5: always that candidate (tests and measurements, VzConvForceCandidate); where it
// does not exist for a geometry: the same layout unsplit, else the blocked one, else the plain one.
std::atomic<int> g_force{-1};

// Calls per candidate since the library was loaded (tests: proof that a forced candidate ran).
std::atomic<int64_t> g_runs[kCandidates];

bool RunCandidate(Candidates *c, int i, void *in0, void *in1, void *out, const void *bias) {
  ++g_runs[i];
  if (i == kWinograd)
    return RunWinograd(c, static_cast<const float *>(in0), static_cast<const float *>(in1), static_cast<float *>(out),
                       static_cast<const float *>(bias));
  if (i == kFifth && c->kind == kBackwardWeights)
    return BatchGemmBackwardWeights(c->key, static_cast<const float *>(in0), static_cast<const float *>(in1),
                                    static_cast<float *>(out));
  return kSplit[i] ? RunSplit(c->conv[i], c->kind, c->parts, in0, in1, out, bias)
                   : Run(c->conv[i], in0, in1, out, bias);
}

// Grows the scratch buffers candidate i needs, on every thread that will use them, and faults their pages
// in, so that tuning does not time page faults (nothing to do once they are large enough).
void Touch(Candidates *c, int i) {
  if (i == kWinograd) {
    const vzwino::Plan &p = c->wino;
    if (!p.weights) ScratchBuffer(kWinoU).Touch(sizeof(float) * p.u_floats());
#pragma omp parallel
    {
      ScratchLease lease;
      if (!p.whole || omp_get_thread_num() == 0) {  // whole: the caller's buffers serve every thread
        ScratchBuffer(kWinoV).Touch(sizeof(float) * p.v_floats());
        ScratchBuffer(kWinoM).Touch(sizeof(float) * (p.weights ? p.y_floats() : p.m_floats()));
        if (p.weights) {
          ScratchBuffer(kWinoVT).Touch(sizeof(float) * p.vt_floats());
          ScratchBuffer(kWinoYP).Touch(sizeof(float) * p.yp_floats());
          ScratchBuffer(kWinoU).Touch(sizeof(float) * p.w_floats());
        }
      }
      ScratchBuffer(kWinoRows).Touch(sizeof(float) * p.row_floats());
    }
    return;
  }
  if (i == kFifth && c->kind == kBackwardWeights) {
    const auto bytes = BatchGemmBufferBytes(c->key);
    ScratchBuffer(kColumns).Touch(bytes.first);
    ScratchBuffer(kTransposed).Touch(bytes.second);
    return;
  }
  const Conv &conv = c->conv[i];
  auto touch_operands = [&conv] {
    for (int j = 0; j < 3; ++j)
      if (!conv.ops[j].same) ScratchBuffer(j).Touch(dnnl_memory_desc_get_size(conv.ops[j].prim_md));
    ScratchBuffer(kScratchpad).Touch(conv.p.scratchpad_bytes);
  };
  if (!kSplit[i]) return touch_operands();
  if (c->kind != kBackwardWeights && !conv.ops[1].same)
    ScratchBuffer(kSharedWeights).Touch(dnnl_memory_desc_get_size(conv.ops[1].prim_md));
#pragma omp parallel num_threads(c->parts)
  {
    ScratchLease lease;
    touch_operands();
    if (c->kind == kBackwardWeights && omp_get_thread_num() > 0)
      ScratchBuffer(kPartial).Touch(dnnl_memory_desc_get_size(conv.ops[2].user_md));
  }
}

// Picks the candidate for this call while tuning: the active one with the fewest timings (the lowest
// index first). Ends tuning (sets c->chosen) when every active candidate has enough timings.
int NextCandidate(Candidates *c) {
  int next = -1, fewest = 1 << 30, pick = -1, active = 0;
  bool all_short = true;
  for (int i = 0; i < kCandidates; ++i) {
    if (!c->active[i]) continue;
    ++active;
    if (c->timings[i] < fewest) fewest = c->timings[i], next = i;
    if (pick < 0 || c->best[i] < c->best[pick]) pick = i;
    all_short = all_short && c->best[i] < kShort;
  }
  if (active == 1 || fewest >= (all_short ? kShortRounds : kRounds)) {
    c->chosen = pick;
    return pick;
  }
  return next;
}

bool RunTuned(Candidates *c, void *in0, void *in1, void *out, const void *bias) {
  const int force = g_force.load();
  if (force >= 0 && force < kCandidates) {
    int i = force;  // where it does not exist: the same layout unsplit, else blocked, else plain
    if (!EnsureBuilt(c, i) && kSplit[i]) i -= 2;
    if (!EnsureBuilt(c, i)) i = EnsureBuilt(c, 0) ? 0 : 1;
    return EnsureBuilt(c, i) && RunCandidate(c, i, in0, in1, out, bias);
  }
  const int chosen = c->chosen.load();
  if (chosen >= 0) return RunCandidate(c, chosen, in0, in1, out, bias);
  std::lock_guard<std::mutex> lock(c->tune);
  if (c->chosen.load() >= 0) return RunCandidate(c, c->chosen.load(), in0, in1, out, bias);  // chosen meanwhile
  // This geometry's first call: time the candidates on its own operands, round after round, until one is
  // chosen; then this call's result is the chosen candidate's, as every later call's will be.
  int last = -1;
  for (int i = NextCandidate(c); c->chosen.load() < 0; i = NextCandidate(c)) {
    Touch(c, i);
    const auto t0 = std::chrono::steady_clock::now();
    if (!RunCandidate(c, i, in0, in1, out, bias)) return false;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c->best[i] = std::min(c->best[i], dt);
    ++c->timings[i];
    ++c->calls;
    last = i;
    // after each round, candidates far behind the best so far stop being tried
    bool round_done = true;
    double best = 1e300;
    for (int j = 0; j < kCandidates; ++j)
      if (c->active[j]) round_done = round_done && c->timings[j] >= c->timings[i], best = std::min(best, c->best[j]);
    if (round_done)
      for (int j = 0; j < kCandidates; ++j)
        if (c->active[j] && c->best[j] > kDropRatio * best) c->active[j] = false;
  }
  const int kept = c->chosen.load();
  return kept == last || RunCandidate(c, kept, in0, in1, out, bias);
}

Key MakeKey(int kind, const int64_t *x, const int64_t *w, const int64_t *y, const int32_t *p) {
  return Key(kind, x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p[0], p[1], p[2], p[3], p[4], p[5]);
}

int Execute(int kind, const int64_t *x, const int64_t *w, const int64_t *y, const int32_t *p, void *in0, void *in1,
            void *out, const void *bias = nullptr) {
  if (!g_dnnl_loaded.load() || Engine() == nullptr || Stream() == nullptr) return 2;
  Candidates *c = GetCandidates(MakeKey(kind, x, w, y, p));
  if (c == nullptr) return 3;
  ScratchLease lease;
  return RunTuned(c, in0, in1, out, bias) ? 0 : 4;
}

bool Is4d(int *ndims, const char **dtypes, int n) {
  for (int i = 0; i < n; ++i)
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
  return true;
}
}  // namespace

// y = conv(x, w); inputs x, w, p; output y. Training and inference differ only in the primitive kind.
extern "C" int Conv2dForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 4 || !Is4d(ndims, dtypes, 2) || ndims[3] != 4) return 1;
  return Execute(kForward, shapes[0], shapes[1], shapes[3], static_cast<const int32_t *>(params[2]), params[0],
                 params[1], params[3]);
}

extern "C" int Conv2dInference(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 4 || !Is4d(ndims, dtypes, 2) || ndims[3] != 4) return 1;
  return Execute(kInference, shapes[0], shapes[1], shapes[3], static_cast<const int32_t *>(params[2]), params[0],
                 params[1], params[3]);
}

// y = conv(x, w) + b, then ReLU for the Relu variant (eval mode); inputs x, w, b (1-D [O]), p; output y.
int FusedInference(int kind, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[2] != 1 || std::strcmp(dtypes[2], "float32") != 0 ||
      shapes[2][0] != shapes[1][0] || ndims[3] != 1 || ndims[4] != 4)
    return 1;
  return Execute(kind, shapes[0], shapes[1], shapes[4], static_cast<const int32_t *>(params[3]), params[0],
                 params[1], params[4], params[2]);
}

extern "C" int Conv2dInferenceBias(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  return FusedInference(kInferenceBias, nparam, params, ndims, shapes, dtypes);
}

extern "C" int Conv2dInferenceBiasRelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                       void *stream, void *extra) {
  return FusedInference(kInferenceBiasRelu, nparam, params, ndims, shapes, dtypes);
}

// dx = conv_backward_data(dy, w); inputs dy, w, x (for its shape only), p; output dx.
extern "C" int Conv2dBackwardData(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[4] != 4) return 1;
  return Execute(kBackwardData, shapes[4], shapes[1], shapes[0], static_cast<const int32_t *>(params[3]), params[0],
                 params[1], params[4]);
}

// dw = conv_backward_weights(x, dy); inputs x, dy, w (for its shape only), p; output dw.
extern "C" int Conv2dBackwardWeights(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                     void *stream, void *extra) {
  if (nparam != 5 || !Is4d(ndims, dtypes, 2) || ndims[4] != 4) return 1;
  return Execute(kBackwardWeights, shapes[0], shapes[4], shapes[1], static_cast<const int32_t *>(params[3]),
                 params[0], params[1], params[4]);
}

namespace {
// Runs a convolution (p: sh, sw, pt, pb, pl, pr) and both its gradients in every candidate, and each split
// candidate with one thread running every slice, against direct loops; 0 when everything agrees.
int CheckGeometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, const int32_t p[6]) {
  const int64_t OH = (H + p[2] + p[3] - KH) / p[0] + 1, OW = (W + p[4] + p[5] - KW) / p[1] + 1;
  std::vector<float> x(N * C * H * W), w(O * C * KH * KW), y(N * O * OH * OW), ref(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.11f * i);
  const int64_t xs[4] = {N, C, H, W}, ws[4] = {O, C, KH, KW}, ys[4] = {N, O, OH, OW};
  // direct loops: y[n,o,i,j] = sum_{c,a,b} x[n,c,i*sh-pt+a, j*sw-pl+b] * w[o,c,a,b]
  std::vector<double> yref(y.size(), 0.0), dxref(x.size(), 0.0), dwref(w.size(), 0.0);
  std::vector<float> dy(y.size());
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = std::sin(0.05f * i + 1.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t a = 0; a < KH; ++a)
              for (int64_t b = 0; b < KW; ++b) {
                const int64_t hi = i * p[0] - p[2] + a, wi = j * p[1] - p[4] + b;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                const int64_t xi = ((n * C + c) * H + hi) * W + wi, wj = ((o * C + c) * KH + a) * KW + b;
                const int64_t yi = ((n * O + o) * OH + i) * OW + j;
                yref[yi] += double(x[xi]) * w[wj];
                dxref[xi] += double(dy[yi]) * w[wj];
                dwref[wj] += double(dy[yi]) * x[xi];
              }
  auto close = [](const std::vector<float> &got, const std::vector<double> &want) {
    for (size_t i = 0; i < got.size(); ++i)
      if (std::fabs(got[i] - want[i]) > 1e-4 * (1.0 + std::fabs(want[i]))) return false;
    return true;
  };
  std::vector<float> dx(x.size()), dw(w.size()), bias(O);
  for (int64_t o = 0; o < O; ++o) bias[o] = 0.3f * std::sin(1.7f * o);  // both signs, so the ReLU cuts
  std::vector<double> biased(y.size()), rectified(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    biased[i] = yref[i] + bias[(i / (OH * OW)) % O];
    rectified[i] = std::max(biased[i], 0.0);
  }
  const int previous = g_force.load();
  int status = 0;
  // each candidate, then each split candidate with one thread running every slice
  for (int run = 0; run < kCandidates + 2 && status == 0; ++run) {
    g_force = run < kCandidates ? run : run - kCandidates + 2;
    g_split_threads = run < kCandidates ? 0 : 1;
    if (Execute(kForward, xs, ws, ys, p, x.data(), w.data(), y.data()) != 0 || !close(y, yref)) status = 11;
    else if (Execute(kInference, xs, ws, ys, p, x.data(), w.data(), y.data()) != 0 || !close(y, yref)) status = 12;
    else if (Execute(kInferenceBias, xs, ws, ys, p, x.data(), w.data(), y.data(), bias.data()) != 0 ||
             !close(y, biased))
      status = 15;
    else if (Execute(kInferenceBiasRelu, xs, ws, ys, p, x.data(), w.data(), y.data(), bias.data()) != 0 ||
             !close(y, rectified))
      status = 16;
    else if (Execute(kBackwardData, xs, ws, ys, p, dy.data(), w.data(), dx.data()) != 0 || !close(dx, dxref))
      status = 13;
    else if (Execute(kBackwardWeights, xs, ws, ys, p, x.data(), dy.data(), dw.data()) != 0 || !close(dw, dwref))
      status = 14;
  }
  g_split_threads = 0;
  g_force = previous;
  return status;
}

}  // namespace

// Checks the enumerations declared above against the loaded library, then small convolutions and both
// their gradients against direct loops: a strided, asymmetrically padded one, and three 3x3 stride-1 ones
// (the Winograd candidate's): unequal padding (2, 0, 1, 2) with odd output sizes (F(4x4), gathered), a
// 3x3 map (F(2x2)) and a row of 8 tiles (F(4x4), along rows). Returns 0 when everything agrees.
extern "C" int VzConvSelfCheck() {
  if (!g_dnnl_loaded.load()) return 9;
  auto eq = [](const char *a, const char *b) { return a != nullptr && std::strcmp(a, b) == 0; };
  if (!eq(dnnl_dt2str(kF32), "f32") || !eq(dnnl_fmt_tag2str(kTagAny), "any") ||
      !eq(dnnl_fmt_tag2str(kTagAbcd), "abcd") || !eq(dnnl_prop_kind2str(kForwardTraining), "forward_training") ||
      !eq(dnnl_prop_kind2str(kForwardInference), "forward_inference") ||
      !eq(dnnl_alg_kind2str(kConvolutionDirect), "convolution_direct") || !eq(dnnl_engine_kind2str(kCpu), "cpu") ||
      !eq(dnnl_scratchpad_mode2str(kScratchpadUser), "user") || !eq(dnnl_fmt_tag2str(kTagA), "a") ||
      !eq(dnnl_alg_kind2str(kEltwiseRelu), "eltwise_relu") || Attr() == nullptr || ReluAttr() == nullptr)
    return 10;
  const int32_t strided[6] = {2, 1, 1, 0, 0, 1}, unequal[6] = {1, 1, 2, 0, 1, 2}, same[6] = {1, 1, 1, 1, 1, 1};
  int status = CheckGeometry(2, 9, 7, 6, 10, 3, 2, strided);  // N, C, H, W, O, KH, KW, p
  if (status == 0) status = CheckGeometry(2, 9, 7, 6, 10, 3, 3, unequal);
  if (status == 0) status = CheckGeometry(2, 9, 3, 3, 10, 3, 3, same);
  return status == 0 ? CheckGeometry(2, 4, 5, 31, 5, 3, 3, same) : status;
}

// Loads oneDNN from `path` (a private copy of MindSpore's libdnnl.so.3) and, when isa >= 0, caps its ISA
// (a dnnl_cpu_isa_t value; -1 leaves ONEDNN_MAX_CPU_ISA / the host's best to oneDNN). Must run before any
// other entry point; later calls do nothing. Returns 0, or 1 (dlopen failed), 2 (a function is missing),
// 3 (oneDNN refused the ISA).
extern "C" int VzConvLoadDnnl(const char *path, int isa) {
  static std::mutex load;
  std::lock_guard<std::mutex> lock(load);
  if (g_dnnl_loaded.load()) return 0;
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) return 1;
  bool all = true;
#define VZ_DNNL_RESOLVE(name)                                                   \
  name = reinterpret_cast<decltype(&dnnl_decl::name)>(dlsym(handle, #name)); \
  all = all && name != nullptr;
  VZ_DNNL_FUNCTIONS(VZ_DNNL_RESOLVE)
#undef VZ_DNNL_RESOLVE
  if (!all) return 2;
  if (isa >= 0 && dnnl_set_max_cpu_isa(isa) != 0) return 3;
  g_dnnl_loaded = true;
  return 0;
}

// The ISA the loaded oneDNN instance dispatches to (a dnnl_cpu_isa_t value), -1 before VzConvLoadDnnl.
extern "C" int VzConvEffectiveIsa() { return g_dnnl_loaded.load() ? dnnl_get_effective_cpu_isa() : -1; }

// OpenMP threads the kernels run on (part of the key of persisted tuning choices).
extern "C" int VzConvThreads() { return omp_get_max_threads(); }

// Tests and measurements: -1 lets each geometry keep the fastest candidate (default); 0 always uses
// oneDNN-chosen (blocked) layouts, 1 always plain NCHW/OIHW, 2 and 3 the same with the batch split
// between threads, 4 the whole-batch GEMM for backward weights and the forward_inference primitive for the
// eval kinds, 5 Winograd F(2x2, 3x3) (see RunTuned for the fallbacks where a candidate does not exist).
// Returns the previous setting.
extern "C" int VzConvForceCandidate(int candidate) { return g_force.exchange(candidate); }

// How many formulations a geometry may have (persisted choices are below this).
extern "C" int VzConvCandidateCount() { return kCandidates; }

// Tests: how many calls have run candidate i in this process (-1 for an i out of range).
extern "C" int64_t VzConvRuns(int i) { return i >= 0 && i < kCandidates ? g_runs[i].load() : -1; }

// Tests: the Winograd whole schedule's bound (bytes), for geometries planned after the call. Returns the
// previous one.
extern "C" int64_t VzConvWinogradWholeBytes(int64_t bytes) { return g_wino_whole_bytes.exchange(bytes); }

// Tests: the im2col limit of the batch GEMM (bytes; 1 = one image per GEMM). Returns the previous one.
extern "C" size_t VzConvMaxColumnBytes(size_t bytes) { return g_max_column_bytes.exchange(bytes); }

// Tests: which formulations of a geometry have been built (bit i: candidate i), -1 for an error.
extern "C" int VzConvBuiltCandidates(int kind, const int64_t *x, const int64_t *w, const int64_t *y,
                                     const int32_t *p) {
  Candidates *c = GetCandidates(MakeKey(kind, x, w, y, p));
  if (c == nullptr) return -1;
  std::lock_guard<std::mutex> lock(c->build);
  int bits = 0;
  for (int i = 0; i < kCandidates; ++i) bits |= c->built[i] ? 1 << i : 0;
  return bits;
}

// Which candidate a geometry kept (-1: still tuning or unknown key), for tests.
extern "C" int VzConvChosenCandidate(int kind, const int64_t *x, const int64_t *w, const int64_t *y,
                                     const int32_t *p) {
  Candidates *c = GetCandidates(MakeKey(kind, x, w, y, p));
  return c == nullptr ? -1 : c->chosen.load();
}

Key KeyFromRow(const int64_t *r) {
  return Key(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], int(r[10]), int(r[11]), int(r[12]),
             int(r[13]), int(r[14]), int(r[15]));
}

// Persisted tuning: a row is the 16 numbers of a Key followed by the candidate. VzConvPresetChoice makes
// a geometry start with that candidate (ignored where it is not built); VzConvChoices writes up to
// max_rows rows of the choices this process has (tuned or preset) and returns how many there are.
extern "C" int VzConvPresetChoice(const int64_t *row) {
  if (row[16] < 0 || row[16] >= kCandidates) return 1;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  g_preset[KeyFromRow(row)] = int(row[16]);
  return 0;
}

// Forgets the presets (tests that watch a geometry tune from scratch); returns how many there were.
extern "C" int VzConvClearPresets() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  const int n = int(g_preset.size());
  g_preset.clear();
  return n;
}

extern "C" int VzConvChoices(int64_t *rows, int max_rows) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  int n = 0;
  for (const auto &entry : g_cache) {
    const int chosen = entry.second->chosen.load();
    if (chosen < 0) continue;
    if (n < max_rows) {
      const Key &k = entry.first;
      const int64_t r[17] = {std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k),
                             std::get<5>(k), std::get<6>(k), std::get<7>(k), std::get<8>(k), std::get<9>(k),
                             std::get<10>(k), std::get<11>(k), std::get<12>(k), std::get<13>(k), std::get<14>(k),
                             std::get<15>(k), chosen};
      std::memcpy(rows + 17 * n, r, sizeof(r));
    }
    ++n;
  }
  return n;
}

// Scratch memory held now (bytes, all sets); *sets receives how many sets exist (the peak concurrency).
extern "C" size_t VzConvScratchBytes(int *sets) {
  std::lock_guard<std::mutex> lock(g_scratch_mutex);
  size_t total = 0;
  for (const ScratchSet *set : g_scratch_all)
    for (const Scratch &b : set->buffers) total += b.size;
  if (sets != nullptr) *sets = int(g_scratch_all.size());
  return total;
}

// How many geometries and directions have started tuning and not finished (benchmarks warm up until 0).
extern "C" int VzConvTuning() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  int n = 0;
  for (const auto &entry : g_cache) n += entry.second->calls.load() > 0 && entry.second->chosen.load() < 0;
  return n;
}
