// The oneDNN 3.x C API, the part the convolution kernel uses: declarations, enumeration values, and
// one function pointer per function, resolved by LoadDnnl() from a private copy of MindSpore's
// libdnnl.so.3.
//
// The kernel does not link against oneDNN: LoadDnnl() dlopens the copy (RTLD_LOCAL | RTLD_DEEPBIND, a
// copied file, so the loader maps a second instance with its own global state) and resolves every
// function below from it. oneDNN's maximum ISA is process-wide per library instance and fixed at its
// first use; with a private instance the kernel runs at the host's best ISA (AVX-512) while MindSpore's
// own instance keeps the AVX2 cap its plain-NCHW Conv2D needs (uncapped, it dispatches to
// "jit_uni_ncsp:conv+ref:any", 30-100x slower). docs/performance.md.
//
// The values are those of oneDNN 3.x's stable ABI; CheckEnumerations() verifies them against the loaded
// library's own *2str functions before visionzoo uses any of this (VzConvSelfCheck).
#pragma once

#include <cstddef>
#include <cstdint>

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

// Declarations only, for their types: the calls go through the pointers of the same names in vzconv.
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

#define VZ_DNNL_FUNCTIONS(X)                                                                                    \
  X(dnnl_engine_create) X(dnnl_threadpool_interop_stream_create) X(dnnl_threadpool_interop_set_max_concurrency) \
  X(dnnl_threadpool_interop_get_max_concurrency) X(dnnl_threadpool_interop_sgemm) X(dnnl_stream_wait)           \
  X(dnnl_memory_desc_create_with_tag) X(dnnl_memory_desc_destroy) X(dnnl_memory_desc_equal)                     \
  X(dnnl_memory_desc_get_size) X(dnnl_memory_create) X(dnnl_memory_set_data_handle) X(dnnl_memory_destroy)      \
  X(dnnl_convolution_forward_primitive_desc_create) X(dnnl_convolution_backward_data_primitive_desc_create)     \
  X(dnnl_convolution_backward_weights_primitive_desc_create) X(dnnl_reorder_primitive_desc_create)              \
  X(dnnl_primitive_desc_query_md) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_create)                      \
  X(dnnl_primitive_execute) X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy)                       \
  X(dnnl_primitive_attr_set_scratchpad_mode) X(dnnl_scratchpad_mode2str) X(dnnl_dt2str) X(dnnl_fmt_tag2str)     \
  X(dnnl_prop_kind2str) X(dnnl_alg_kind2str) X(dnnl_engine_kind2str) X(dnnl_set_max_cpu_isa)                   \
  X(dnnl_get_effective_cpu_isa) X(dnnl_primitive_desc_query) X(dnnl_primitive_desc_next_impl)                  \
  X(dnnl_post_ops_create) X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_eltwise)                             \
  X(dnnl_primitive_attr_set_post_ops)

namespace vzconv {

// One pointer per function, named as the function, so that the code reads as plain oneDNN calls.
#define VZ_DNNL_POINTER(name) extern decltype(&dnnl_decl::name) name;
VZ_DNNL_FUNCTIONS(VZ_DNNL_POINTER)
#undef VZ_DNNL_POINTER

// enumerations (oneDNN 3.x); checked against the library by CheckEnumerations()
constexpr int kCpu = 1;                  // dnnl_cpu
constexpr int kF32 = 3;                  // dnnl_f32
constexpr int kTagAny = 1;               // dnnl_format_tag_any
constexpr int kTagA = 2;                 // dnnl_a (a 1-D bias)
constexpr int kTagAbcd = 5;              // dnnl_abcd (NCHW / OIHW)
constexpr int kForwardTraining = 64;     // dnnl_forward_training
constexpr int kForwardInference = 96;    // dnnl_forward_inference
constexpr int kConvolutionDirect = 1;    // dnnl_convolution_direct
constexpr int kEltwiseRelu = 0x20;       // dnnl_eltwise_relu
constexpr int kQuerySrcMd = 129;         // dnnl_query_src_md; then diff_src, weights, diff_weights, dst, diff_dst
constexpr int kQueryDiffSrcMd = 130;
constexpr int kQueryWeightsMd = 131;
constexpr int kQueryDiffWeightsMd = 132;
constexpr int kQueryDstMd = 133;
constexpr int kQueryDiffDstMd = 134;
constexpr int kQueryScratchpadMd = 136;  // after workspace (135)
constexpr int kQueryImplInfoStr = 8;     // dnnl_query_impl_info_str
constexpr int kScratchpadUser = 1;       // dnnl_scratchpad_mode_user
// DNNL_ARG_*; reorders use FROM = SRC, TO = DST
constexpr int kArgSrc = 1, kArgDst = 17, kArgWeights = 33, kArgBias = 41, kArgDiffSrc = 129, kArgDiffDst = 145,
              kArgDiffWeights = 161, kArgScratchpad = 80;
// dnnl_cpu_isa_t bits (nested: each level includes the bits of those below)
constexpr int kIsaAvx2Bits = 0x7, kIsaAvx512CoreBits = 0x27;

// Loads oneDNN from `path` and, when isa >= 0, caps its ISA (a dnnl_cpu_isa_t value). Once per process;
// later calls return 0. Returns 0, or 1 (dlopen failed), 2 (a function is missing), 3 (ISA refused).
int LoadDnnl(const char *path, int isa);
// Whether LoadDnnl succeeded (every pointer above is then set).
bool DnnlLoaded();
// Whether the enumeration values above are the loaded library's (its *2str functions agree).
bool CheckEnumerations();

}  // namespace vzconv
