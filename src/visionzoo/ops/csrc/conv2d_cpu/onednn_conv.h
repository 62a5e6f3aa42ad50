// oneDNN's convolution primitives for one geometry and direction, with the reorders between the user's
// plain NCHW/OIHW tensors and the primitive's layouts.
//
// Why: MindSpore 2.10's CPU Conv2D and its gradients hand oneDNN plain NCHW tensors, so oneDNN runs them
// as im2col + GEMM ("x64:gemm:jit"). PyTorch hands oneDNN "any" layouts and gets its direct AVX2 kernels
// on channel-blocked tensors ("jit:avx2", nChw8c), which were ~1.6x faster on VGG's 3x3 convolutions
// here. With kTagAny the convolution picks its layouts and plain tensors are reordered in and out around
// it. Same math as Conv2D; float summation order differs (results agree to ~1e-6).
#pragma once

#include "dnnl_api.h"
#include "geometry.h"
#include "scratch.h"

namespace vzconv {

// A primitive with its descriptor (kept for the scratchpad's memory descriptor).
struct Primitive {
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_primitive_t prim = nullptr;
  const_dnnl_memory_desc_t scratchpad_md = nullptr;  // owned by pd
  size_t scratchpad_bytes = 0;
};

// A tensor as the user holds it (plain NCHW/OIHW) and as the primitive wants it.
struct Operand {
  dnnl_memory_desc_t user_md = nullptr;
  const_dnnl_memory_desc_t prim_md = nullptr;  // owned by the primitive descriptor
  Primitive reorder;                           // user -> prim (inputs) or prim -> user (outputs)
  bool same = true;
};

// A convolution primitive for one geometry and direction, with its three operands in the order
// (input 0, input 1, output): forward (src, weights, dst), backward data (diff_dst, weights, diff_src),
// backward weights (src, diff_dst, diff_weights).
struct Conv {
  Primitive p;
  Operand ops[3];
  int args[3];
  dnnl_memory_desc_t bias_md = nullptr;  // plain 1-D [O], for kInferenceBias*
};

// Builds the primitive for g with every tensor in `layout`: kTagAny (oneDNN chooses) or kTagAbcd.
// Eval-mode directions use a forward_training primitive, as PyTorch does, unless `inference_prop`.
bool Build(Conv *c, const Geometry &g, int layout, bool inference_prop = false);
// Executes c on buffers already in its layouts (bias: the plain [O] bias of kInferenceBias*).
bool ExecutePrimitive(const Conv &c, void *const prim[3], const void *bias, dnnl_stream_t stream);
// Operand i of c in the primitive's layout: the user's buffer itself, or scratch buffer `slot`, filled
// from the user's buffer when it is an input; nullptr on failure.
void *PrimBuffer(const Conv &c, int i, void *user, Slot slot, dnnl_stream_t stream);
// Reorders operand 2 (the output) of c from the primitive's layout into the user's buffer.
bool ReorderOutput(const Conv &c, void *prim, void *user, dnnl_stream_t stream);
// Runs c on user buffers in0, in1 -> out (plain layouts) on all threads, reordering through scratch.
bool Run(const Conv &c, void *in0, void *in1, void *out, const void *bias);
// Grows (and faults in) the calling thread's scratch for running c (operands and scratchpad).
void TouchOperands(const Conv &c);

}  // namespace vzconv
