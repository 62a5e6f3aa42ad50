// Loading the private oneDNN instance and checking the declared enumerations (dnnl_api.h).
#include "dnnl_api.h"

#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace vzconv {

#define VZ_DNNL_POINTER(name) decltype(&dnnl_decl::name) name = nullptr;
VZ_DNNL_FUNCTIONS(VZ_DNNL_POINTER)
#undef VZ_DNNL_POINTER

namespace {
std::atomic<bool> g_loaded{false};
}  // namespace

bool DnnlLoaded() { return g_loaded.load(); }

int LoadDnnl(const char *path, int isa) {
  static std::mutex load;
  std::lock_guard<std::mutex> lock(load);
  if (g_loaded.load()) return 0;
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) return 1;
  bool all = true;
#define VZ_DNNL_RESOLVE(name)                                                \
  name = reinterpret_cast<decltype(&dnnl_decl::name)>(dlsym(handle, #name)); \
  all = all && name != nullptr;
  VZ_DNNL_FUNCTIONS(VZ_DNNL_RESOLVE)
#undef VZ_DNNL_RESOLVE
  if (!all) return 2;
  if (isa >= 0 && dnnl_set_max_cpu_isa(isa) != 0) return 3;
  g_loaded = true;
  return 0;
}

bool CheckEnumerations() {
  auto eq = [](const char *a, const char *b) { return a != nullptr && std::strcmp(a, b) == 0; };
  return eq(dnnl_dt2str(kF32), "f32") && eq(dnnl_fmt_tag2str(kTagAny), "any") &&
         eq(dnnl_fmt_tag2str(kTagAbcd), "abcd") && eq(dnnl_prop_kind2str(kForwardTraining), "forward_training") &&
         eq(dnnl_prop_kind2str(kForwardInference), "forward_inference") &&
         eq(dnnl_alg_kind2str(kConvolutionDirect), "convolution_direct") && eq(dnnl_engine_kind2str(kCpu), "cpu") &&
         eq(dnnl_scratchpad_mode2str(kScratchpadUser), "user") && eq(dnnl_fmt_tag2str(kTagA), "a") &&
         eq(dnnl_alg_kind2str(kEltwiseRelu), "eltwise_relu");
}

}  // namespace vzconv
