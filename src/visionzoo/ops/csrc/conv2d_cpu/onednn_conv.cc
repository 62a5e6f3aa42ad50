// oneDNN convolution primitives and their reorders (onednn_conv.h).
#include "onednn_conv.h"

#include <cstring>

#include "dnnl_stream.h"

namespace vzconv {
namespace {

#define VZ_CHECK(call)             \
  do {                             \
    if ((call) != 0) return false; \
  } while (0)

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
    void *buffer = ScratchBuffer(Slot::kScratchpad).Get(p.scratchpad_bytes);
    if (buffer == nullptr || dnnl_memory_create(&scratchpad, p.scratchpad_md, Engine(), buffer) != 0) return false;
    all[nargs++] = {kArgScratchpad, scratchpad};
  }
  const bool ok = dnnl_primitive_execute(p.prim, stream, nargs, all) == 0;
  if (scratchpad) dnnl_memory_destroy(scratchpad);
  return ok;
}

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

bool Reorder(const Primitive &reorder, const_dnnl_memory_desc_t from_md, void *from, const_dnnl_memory_desc_t to_md,
             void *to, dnnl_stream_t stream) {
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

// The primitive descriptor of g's direction from the forward one (consumed for the forward directions),
// with c's operands; the operand order is Conv's.
bool MakeDirection(Conv *c, const Geometry &g, dnnl_primitive_desc_t *fwd, const_dnnl_memory_desc_t src_md,
                   const_dnnl_memory_desc_t wei_md, const_dnnl_memory_desc_t dst_md, const dnnl_dims_t src,
                   const dnnl_dims_t wei, const dnnl_dims_t dst, const dnnl_dims_t strides, const dnnl_dims_t dilates,
                   const dnnl_dims_t pad_l, const dnnl_dims_t pad_r) {
  if (g.direction == kForward || IsInference(g.direction)) {
    c->p.pd = *fwd;
    *fwd = nullptr;
    c->args[0] = kArgSrc, c->args[1] = kArgWeights, c->args[2] = kArgDst;
    return SkipReference(c->p.pd) && MakeOperand(&c->ops[0], src, c->p.pd, kQuerySrcMd, true) &&
           MakeOperand(&c->ops[1], wei, c->p.pd, kQueryWeightsMd, true) &&
           MakeOperand(&c->ops[2], dst, c->p.pd, kQueryDstMd, false);
  }
  if (g.direction == kBackwardData) {
    c->args[0] = kArgDiffDst, c->args[1] = kArgWeights, c->args[2] = kArgDiffSrc;
    return dnnl_convolution_backward_data_primitive_desc_create(&c->p.pd, Engine(), kConvolutionDirect, src_md,
                                                                wei_md, dst_md, strides, dilates, pad_l, pad_r, *fwd,
                                                                Attr()) == 0 &&
           SkipReference(c->p.pd) && MakeOperand(&c->ops[0], dst, c->p.pd, kQueryDiffDstMd, true) &&
           MakeOperand(&c->ops[1], wei, c->p.pd, kQueryWeightsMd, true) &&
           MakeOperand(&c->ops[2], src, c->p.pd, kQueryDiffSrcMd, false);
  }
  c->args[0] = kArgSrc, c->args[1] = kArgDiffDst, c->args[2] = kArgDiffWeights;
  return dnnl_convolution_backward_weights_primitive_desc_create(&c->p.pd, Engine(), kConvolutionDirect, src_md,
                                                                 wei_md, nullptr, dst_md, strides, dilates, pad_l,
                                                                 pad_r, *fwd, Attr()) == 0 &&
         SkipReference(c->p.pd) && MakeOperand(&c->ops[0], src, c->p.pd, kQuerySrcMd, true) &&
         MakeOperand(&c->ops[1], dst, c->p.pd, kQueryDiffDstMd, true) &&
         MakeOperand(&c->ops[2], wei, c->p.pd, kQueryDiffWeightsMd, false);
}

}  // namespace

// Eval-mode directions use a forward_training primitive, as PyTorch does (the same convolution: the kind
// only tells oneDNN whether a backward pass may follow), unless `inference_prop`: for forward_inference
// with "any" layouts oneDNN 3.10 at the AVX-512 level picks its brgemm kernel on NHWC tensors
// ("brg_conv_fwd", acdb) instead of the direct kernel on channel-blocked ones ("jit:avx512_core",
// nChw16c), which was slower on VGG's layers (0.57 s vs 0.42-0.49 s for vgg16_bn_cifar's eval forward at
// batch 128) and is kept as the eval kinds' kDirectionSpecific formulation.
bool Build(Conv *c, const Geometry &g, int layout, bool inference_prop) {
  const dnnl_dims_t src = {g.N, g.C, g.H, g.W};
  const dnnl_dims_t wei = {g.O, g.C, g.KH, g.KW};
  const dnnl_dims_t dst = {g.N, g.O, g.OH, g.OW};
  const dnnl_dims_t strides = {g.sh, g.sw};
  const dnnl_dims_t dilates = {0, 0};
  const dnnl_dims_t pad_l = {g.pt, g.pl};
  const dnnl_dims_t pad_r = {g.pb, g.pr};
  dnnl_memory_desc_t src_md = nullptr, wei_md = nullptr, dst_md = nullptr;
  bool ok = dnnl_memory_desc_create_with_tag(&src_md, 4, src, kF32, layout) == 0 &&
            dnnl_memory_desc_create_with_tag(&wei_md, 4, wei, kF32, layout) == 0 &&
            dnnl_memory_desc_create_with_tag(&dst_md, 4, dst, kF32, layout) == 0;
  dnnl_primitive_desc_t fwd = nullptr;
  const int prop = inference_prop ? kForwardInference : kForwardTraining;
  if (ok && HasBias(g.direction)) {
    const dnnl_dims_t bias = {g.O};
    ok = dnnl_memory_desc_create_with_tag(&c->bias_md, 1, bias, kF32, kTagA) == 0;
  }
  const_dnnl_primitive_attr_t attr = g.direction == kInferenceBiasRelu ? ReluAttr() : Attr();
  ok = ok && attr != nullptr &&
       dnnl_convolution_forward_primitive_desc_create(&fwd, Engine(), prop, kConvolutionDirect, src_md, wei_md,
                                                      c->bias_md, dst_md, strides, dilates, pad_l, pad_r, attr) == 0;
  ok = ok && MakeDirection(c, g, &fwd, src_md, wei_md, dst_md, src, wei, dst, strides, dilates, pad_l, pad_r);
  ok = ok && MakePrimitive(&c->p);
  if (fwd) dnnl_primitive_desc_destroy(fwd);
  if (src_md) dnnl_memory_desc_destroy(src_md);
  if (wei_md) dnnl_memory_desc_destroy(wei_md);
  if (dst_md) dnnl_memory_desc_destroy(dst_md);
  return ok;
}

bool ExecutePrimitive(const Conv &c, void *const prim[3], const void *bias, dnnl_stream_t stream) {
  dnnl_memory_t mem[4] = {nullptr, nullptr, nullptr, nullptr};
  bool ok = true;
  for (int i = 0; i < 3 && ok; ++i) ok = dnnl_memory_create(&mem[i], c.ops[i].prim_md, Engine(), prim[i]) == 0;
  if (ok && c.bias_md != nullptr)
    ok = bias != nullptr && dnnl_memory_create(&mem[3], c.bias_md, Engine(), const_cast<void *>(bias)) == 0;
  if (ok) {
    const dnnl_exec_arg_t args[4] = {
        {c.args[0], mem[0]}, {c.args[1], mem[1]}, {c.args[2], mem[2]}, {kArgBias, mem[3]}};
    ok = ExecuteWithScratchpad(c.p, c.bias_md != nullptr ? 4 : 3, args, stream);
  }
  for (auto m : mem)
    if (m) dnnl_memory_destroy(m);
  return ok;
}

void *PrimBuffer(const Conv &c, int i, void *user, Slot slot, dnnl_stream_t stream) {
  if (c.ops[i].same) return user;
  void *prim = ScratchBuffer(slot).Get(dnnl_memory_desc_get_size(c.ops[i].prim_md));
  if (prim == nullptr ||
      (i < 2 && !Reorder(c.ops[i].reorder, c.ops[i].user_md, user, c.ops[i].prim_md, prim, stream)))
    return nullptr;
  return prim;
}

bool ReorderOutput(const Conv &c, void *prim, void *user, dnnl_stream_t stream) {
  return c.ops[2].same || Reorder(c.ops[2].reorder, c.ops[2].prim_md, prim, c.ops[2].user_md, user, stream);
}

bool Run(const Conv &c, void *in0, void *in1, void *out, const void *bias) {
  void *user[3] = {in0, in1, out};
  void *prim[3];
  for (int i = 0; i < 3; ++i)
    if ((prim[i] = PrimBuffer(c, i, user[i], OperandSlot(i), Stream())) == nullptr) return false;
  return ExecutePrimitive(c, prim, bias, Stream()) && ReorderOutput(c, prim[2], out, Stream()) &&
         dnnl_stream_wait(Stream()) == 0;
}

void TouchOperands(const Conv &c) {
  for (int j = 0; j < 3; ++j)
    if (!c.ops[j].same) ScratchBuffer(OperandSlot(j)).Touch(dnnl_memory_desc_get_size(c.ops[j].prim_md));
  ScratchBuffer(Slot::kScratchpad).Touch(c.p.scratchpad_bytes);
}

}  // namespace vzconv
