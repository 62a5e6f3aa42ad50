"""2-D convolution.

Same constructor as :class:`mindspore.nn.Conv2d` (same parameters, names and checkpoints); models use
this class so that a faster CPU formulation can be chosen in one place (see docs/performance.md).

On CPU, MindSpore 2.10's ``Conv2D`` and its gradients hand oneDNN plain NCHW tensors, so oneDNN runs
them as im2col + GEMM. When :func:`visionzoo.runtime.fast_conv_enabled` says so (CPU target, not
switched off), float32 NCHW convolutions with ``group=1`` and dilation 1 go through a small C++ kernel
(``csrc/conv2d_cpu/``, one unit per job) run as an ``aot`` Custom op with its own backward: it calls the same oneDNN
library MindSpore loads, but lets the convolution choose its memory layouts (channel-blocked, as
PyTorch does), which selects oneDNN's direct AVX2/AVX-512 kernels; inputs and outputs are reordered
from and to NCHW around each call. Neither that nor MindSpore's plain-NCHW GEMM formulation wins for
every shape (a 3-channel 7x7/2 stem's backward-data is faster as GEMM), on some layers splitting the
batch between threads beats one primitive threaded by oneDNN, and the weight gradient of small images is
fastest as one GEMM over many images, and in eval mode oneDNN's direct kernel of a training-kind
primitive usually beats its inference-kind (brgemm, NHWC) choice. 3x3 stride-1 convolutions (all of
VGG's, most of GoogLeNet's 3x3 branches) have one more, the kernel's own Winograd F(4x4, 3x3) / F(2x2,
3x3) (``csrc/winograd.h``: 2.25-4x fewer multiply-adds, on the plain NCHW tensors, in every direction).
So each geometry and direction chooses one in its first call (``csrc/conv2d_cpu/chooser.h``): a rule table
built from per-layer measurements on both ISA classes decides where they give a rule (Winograd for 3x3
stride-1 layers with at least 64 reduced channels, the batched GEMM for weight gradients on maps of up
to 4 pixels; the batch-split and forward_inference formulations, and the batched GEMM on maps of 64
pixels or more, are never timed); otherwise that call times blocked, plain and Winograd / the batched
GEMM where they exist on its own operands, once each (twice where calls are short and close), and keeps
the fastest, which also computes that first result
(``VISIONZOO_CONV_TUNING=0``: always the blocked one). Choices are kept per (geometry, ISA, thread
count) in the cache directory and reused by later runs, so that a noisy machine's timing cannot make two
runs differ (``python -m visionzoo.ops clear`` forgets them; ``VISIONZOO_CONV_TUNING=fresh`` tunes
without reading or writing them).

The kernel is compiled once per machine on first use (g++, cached, see :mod:`visionzoo.ops._build`) and
runs on a private copy of MindSpore's ``libdnnl.so.3`` (copied into the cache, dlopened by the kernel
with its own global state), whose ISA is set to :func:`visionzoo.runtime.fast_isa` (AVX-512 where the
host has it) while MindSpore's own instance keeps the AVX2 cap its standard convolution needs. It is
then checked by a self-test against direct loops; if it cannot be built or the check fails, the
standard op is used with a warning (an error under ``VISIONZOO_FAST_OPS=require``).

Numerics: the same convolution with a different summation order (and, for Winograd, the transforms'
scalings); outputs and gradients agree with ``nn.Conv2d`` to float32 rounding (``tests/test_ops_conv.py``).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import logging
import os
from typing import List, Optional, Tuple

import mindspore as ms
from mindspore import nn, ops

from .. import runtime
from ..files import write_text_atomic
from ._build import KernelBuildError, build_library, cached_artifact, copy_file, file_lock, load_once
from ._fast import FastPathLayer, same_pads

_logger = logging.getLogger(__name__)

_DNNL = "libdnnl.so.3"


def mindspore_dnnl_dir() -> Optional[str]:
    """The directory holding the oneDNN library MindSpore's CPU kernels use, or None."""
    lib_dir = os.path.join(os.path.dirname(os.path.abspath(ms.__file__)), "lib")
    return lib_dir if os.path.exists(os.path.join(lib_dir, _DNNL)) else None


#: oneDNN's dnnl_cpu_isa_t values (dnnl_types.h, oneDNN 3.x) for the ISA names runtime.choose_isa uses
#: and those the effective ISA of an uncapped library may report.
ISA_VALUES = {
    "DEFAULT": 0x0,
    "SSE41": 0x1,
    "AVX": 0x3,
    "AVX2": 0x7,
    "AVX2_VNNI": 0xF,
    "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27,
    "AVX512_CORE_VNNI": 0x67,
    "AVX512_CORE_BF16": 0xE7,
    "AVX512_CORE_FP16": 0x1EF,
    "AVX512_CORE_AMX": 0xFEF,
    "AVX512_CORE_AMX_FP16": 0x1FEF,
}
_ISA_NAMES = {v: k for k, v in ISA_VALUES.items()}
_WHAT = "CPU convolution kernels"
_ROW = 17  # a persisted tuning choice: the kernel's 16-number geometry key, then the candidate


def private_dnnl(retry: bool = False) -> str:
    """A private copy of MindSpore's oneDNN in the cache directory (made once per machine, under the build
    lock): loaded as a separate instance, its ISA is set apart from MindSpore's (docs/performance.md)."""
    lib_dir = mindspore_dnnl_dir()
    if lib_dir is None:
        raise KernelBuildError(_WHAT, f"MindSpore's {_DNNL} was not found")
    source = os.path.join(lib_dir, _DNNL)
    stat = os.stat(source)
    key = hashlib.sha256(f"{ms.__version__}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    path = os.path.join(runtime.cache_dir(), f"libdnnl_vz_{key}.so")
    return cached_artifact(path, f"private copy of {_DNNL}", functools.partial(copy_file, source), retry)


def _load(retry: bool = False) -> str:
    """Build (or find) the kernels, load them on the private oneDNN at :func:`runtime.fast_isa`, self-check
    them and apply the tuning settings; returns the library path or raises KernelBuildError."""
    dnnl = private_dnnl(retry)
    lib_path = build_library("conv2d_cpu", link_args=("-ldl",), what=_WHAT, retry=retry)
    lib = ctypes.CDLL(lib_path)
    isa = runtime.fast_isa()
    status = lib.VzConvLoadDnnl(dnnl.encode(), ISA_VALUES.get(isa, -1) if isa else -1)
    if status != 0:
        raise KernelBuildError(_WHAT, f"loading the private oneDNN {dnnl} failed (status {status}, ISA {isa})")
    status = lib.VzConvSelfCheck()
    if status != 0:
        raise KernelBuildError(_WHAT, f"the self-check against this MindSpore's oneDNN failed (status {status})")
    if not runtime.conv_tuning_enabled():
        lib.VzConvForceCandidate(0)  # always the blocked formulation: reproducible rounding
    elif runtime.conv_tuning_persistent():
        _TuningStore(lib, lib_path).load()
    effective = effective_isa(lib)
    _logger.info(
        "visionzoo fast convolution: oneDNN ISA %s (%s; MindSpore's standard ops: %s=%s), %d threads",
        effective,
        "set by the user" if runtime.isa_choice().source == "user" else "host's best fp32 level",
        runtime.ISA_ENV,
        os.environ.get(runtime.ISA_ENV, "unset"),
        lib.VzConvThreads(),
    )
    return lib_path


def effective_isa(lib: ctypes.CDLL) -> str:
    """The ISA name the kernels' oneDNN instance dispatches to."""
    value = lib.VzConvEffectiveIsa()
    return _ISA_NAMES.get(value, hex(value))


#: Compile, load and self-check the CPU convolution kernels once per process: the library path, or None
#: when they are unavailable (warned once; raises under ``VISIONZOO_FAST_OPS=require``).
build_conv_kernels = load_once(_load)


class _TuningStore:
    """The tuning choices of one kernel library, kept as JSON next to it (``<library>.tuning.json``):
    ``{"<ISA>/t<threads>": [[16 key numbers..., candidate], ...]}``. Loaded when the kernels are loaded;
    what this process chose is merged in at exit (under a lock, written atomically). Entries that do not
    validate (shape, candidate range) are ignored; the kernel ignores a candidate a geometry lacks."""

    def __init__(self, lib: ctypes.CDLL, lib_path: str):
        self.lib, self.path = lib, lib_path[:-3] + ".tuning.json"
        self.section = f"{effective_isa(lib)}/t{lib.VzConvThreads()}"
        self.candidates = lib.VzConvCandidateCount()
        self.loaded: List[List[int]] = []

    def _read(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _valid(self, row) -> bool:
        return (
            isinstance(row, list)
            and len(row) == _ROW
            and all(isinstance(v, int) for v in row)
            and 0 <= row[-1] < self.candidates
        )

    def load(self) -> None:
        rows = [r for r in self._read().get(self.section, []) if self._valid(r)]
        for row in rows:
            self.lib.VzConvPresetChoice((ctypes.c_int64 * _ROW)(*row))
        self.loaded = rows
        atexit.register(self.save)
        _logger.debug("conv tuning: %d choices for %s from %s", len(rows), self.section, self.path)

    def choices(self) -> List[List[int]]:
        count = self.lib.VzConvChoices(None, 0)
        buf = (ctypes.c_int64 * (_ROW * max(count, 1)))()
        count = min(count, self.lib.VzConvChoices(buf, count))
        return [list(buf[i * _ROW : (i + 1) * _ROW]) for i in range(count)]

    def save(self) -> None:
        if not runtime.conv_tuning_enabled():  # forced at run time (tests, measurements): nothing was tuned
            return
        mine = self.choices()
        known = {tuple(r[:-1]) for r in self.loaded}
        new = [r for r in mine if tuple(r[:-1]) not in known]
        if not new:
            return
        try:
            with file_lock(self.path + ".lock"):
                data = self._read()
                rows = [r for r in data.get(self.section, []) if self._valid(r)]
                present = {tuple(r[:-1]) for r in rows}
                data[self.section] = rows + [r for r in new if tuple(r[:-1]) not in present]  # the first choice stays
                write_text_atomic(self.path, json.dumps(data))
        except OSError as err:
            _logger.debug("conv tuning choices not saved (%s)", err)


def tuning_pending() -> int:
    """How many convolution geometries and directions this process has started tuning and not finished
    (0 when the kernels are not in use). A geometry tunes inside its first call (docs/performance.md), so
    this is 0 between calls; benchmarks warm up until it is 0."""
    lib = build_conv_kernels() if runtime.fast_conv_enabled() else None
    return int(ctypes.CDLL(lib).VzConvTuning()) if lib else 0


def _bprop(backward_data, backward_weights):
    def bprop(x, w, params, out, dout):
        return backward_data(dout, w, x, params), backward_weights(x, dout, w, params), ops.zeros_like(params)

    return bprop


def _fused_bprop(backward_data, backward_weights, relu: bool):
    """Gradients of y = [relu](conv(x, w) + b): eval-mode networks are differentiated too (perceptual
    losses, input gradients); the folding of BatchNorm into (w, b) is differentiated by MindSpore."""

    def bprop(x, w, b, params, out, dout):
        dz = dout * ops.cast(out > 0, dout.dtype) if relu else dout
        return (
            backward_data(dz, w, x, params),
            backward_weights(x, dz, w, params),
            dz.sum(axis=(0, 2, 3)),
            ops.zeros_like(params),
        )

    return bprop


def _foldable(bn) -> bool:
    """Whether ``bn`` normalises with its moving statistics now (eval mode), so that it can be folded."""
    if bn is None:
        return True
    return (
        isinstance(bn, nn.BatchNorm2d)
        and bn.format == "NCHW"
        and (bn.use_batch_statistics is False or (bn.use_batch_statistics is None and not bn.training))
    )


class Conv2d(FastPathLayer, nn.Conv2d):
    """Drop-in for :class:`mindspore.nn.Conv2d` (NCHW) with a fast CPU path.

    The fast path is taken for float32 NCHW inputs (training and eval mode) when
    :func:`visionzoo.runtime.fast_conv_enabled` is true at construction time and ``group`` is 1 and
    dilation is 1; otherwise this is exactly ``nn.Conv2d``. Under AMP (float16 inputs) the standard op
    runs. :func:`visionzoo.ops.standard_ops` switches a network to the standard ops (for exports);
    ``layer.fast`` says which path a layer takes.

    In eval mode a model can run this convolution together with the BatchNorm and ReLU after it as one
    kernel call (:meth:`fused`): the BatchNorm is folded into the weights and a bias, and the ReLU is a
    post-op of the convolution primitive. Parameters and checkpoints are unchanged (the folding is
    computed from them at every call). It is on for layers built in graph mode; in PyNative mode each
    of the folding's few small ops is a separate dispatch, which at small batches costs more than the
    fused call saves (docs/performance.md), so it is off there. ``layer.fuse_eval`` (or
    :func:`visionzoo.ops.set_eval_fusion`) sets it either way.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lib = None
        if (
            runtime.fast_conv_enabled()
            and self.group == 1
            and tuple(self.dilation) == (1, 1)
            and self.data_format == "NCHW"
        ):
            lib = build_conv_kernels()
        self._forward = None
        if lib is not None:
            self._make_ops(lib)
        self.fast = self.has_fast_path
        #: run :meth:`fused` as one kernel call where it can (eval mode, fast path, float32)
        self.fuse_eval = ms.get_context("mode") == ms.GRAPH_MODE

    def _make_ops(self, lib: str) -> None:
        def same_as(index):
            return lambda *shapes: shapes[index]

        backward_data = ops.Custom(
            f"{lib}:Conv2dBackwardData", out_shape=same_as(2), out_dtype=same_as(2), func_type="aot"
        )
        backward_weights = ops.Custom(
            f"{lib}:Conv2dBackwardWeights", out_shape=same_as(2), out_dtype=same_as(2), func_type="aot"
        )
        bprop = _bprop(backward_data, backward_weights)
        self._forward = ops.Custom(
            f"{lib}:Conv2dForward", out_shape=self._out_shape, out_dtype=same_as(0), func_type="aot", bprop=bprop
        )
        self._inference = ops.Custom(
            f"{lib}:Conv2dInference", out_shape=self._out_shape, out_dtype=same_as(0), func_type="aot", bprop=bprop
        )
        fused_shape = lambda x, w, b, p: self._out_shape(x, w, p)  # noqa: E731
        self._inference_bias = ops.Custom(
            f"{lib}:Conv2dInferenceBias",
            out_shape=fused_shape,
            out_dtype=same_as(0),
            func_type="aot",
            bprop=_fused_bprop(backward_data, backward_weights, False),
        )
        self._inference_bias_relu = ops.Custom(
            f"{lib}:Conv2dInferenceBiasRelu",
            out_shape=fused_shape,
            out_dtype=same_as(0),
            func_type="aot",
            bprop=_fused_bprop(backward_data, backward_weights, True),
        )
        # The output shape depends on the configuration, not only on the input shapes: make it part of the
        # primitives so that PyNative's per-primitive shape cache cannot mix two configurations.
        config = f"{self.kernel_size}{self.stride}{self.pad_mode}{self.padding}"
        for prim in (
            self._forward,
            self._inference,
            self._inference_bias,
            self._inference_bias_relu,
            backward_data,
            backward_weights,
        ):
            prim.add_prim_attr("conv_config", config)

    def _pads(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """(top, bottom, left, right) padding of an h x w input."""
        mode = self.pad_mode.lower()
        if mode == "same":
            return (
                *same_pads(h, self.kernel_size[0], self.stride[0]),
                *same_pads(w, self.kernel_size[1], self.stride[1]),
            )
        if mode == "valid":
            return 0, 0, 0, 0
        pad = self.padding
        if isinstance(pad, int):
            return pad, pad, pad, pad
        pad = tuple(pad)
        return (pad[0], pad[0], pad[1], pad[1]) if len(pad) == 2 else pad

    def _out_shape(self, x_shape, w_shape, p_shape):
        pt, pb, pl, pr = self._pads(x_shape[2], x_shape[3])
        ho = (x_shape[2] + pt + pb - self.kernel_size[0]) // self.stride[0] + 1
        wo = (x_shape[3] + pl + pr - self.kernel_size[1]) // self.stride[1] + 1
        return [x_shape[0], self.out_channels, ho, wo]

    def _conv_params(self, x):
        pt, pb, pl, pr = self._pads(x.shape[2], x.shape[3])
        return ms.Tensor([self.stride[0], self.stride[1], pt, pb, pl, pr], ms.int32)

    #: Fuse only calls whose output has at least this many elements: the folding's small ops cost about
    #: the same per layer whatever the batch, the passes it saves grow with the output (measured in
    #: graph mode: googlenet_bn at batch 8, 32x32, where no layer reaches 2**18, ran 0.69x as fast fused;
    #: vgg16_bn_cifar at batch 128 1.23x; benchmarks/bench_fusion.py, docs/performance.md).
    fuse_min_elements = 1 << 18

    def can_fuse(self, x, bn=None) -> bool:
        """Whether :meth:`fused` runs as one kernel call for input ``x`` (eval mode, fast path on, float32,
        ``bn`` absent or normalising with its moving statistics, an output of at least
        ``fuse_min_elements`` elements)."""
        if not (
            self.fuse_eval
            and self.fast
            and not self.training
            and not self._low_precision
            and x.ndim == 4
            and x.dtype == ms.float32
            and self.weight.dtype == ms.float32
            and _foldable(bn)
        ):
            return False
        n, o, h, w = self._out_shape(x.shape, self.weight.shape, None)
        return n * o * h * w >= self.fuse_min_elements

    def fused(self, x, bn=None, relu: bool = False):
        """``relu(bn(conv(x)))`` (``bn`` and ``relu`` optional) as one eval-mode kernel call: with ``s =
        gamma / sqrt(moving_variance + eps)``, the convolution runs on weights ``w * s`` and adds the bias
        ``beta - moving_mean * s`` (plus ``conv_bias * s``), the ReLU applied inside the primitive. Equal to
        the three layers to float32 rounding. Call only where :meth:`can_fuse` is true; the model's
        ``construct`` runs the layers one by one otherwise."""
        weight = self.weight
        if bn is None:
            bias = self.bias if self.has_bias else ops.zeros((self.out_channels,), ms.float32)
        else:
            scale = bn.gamma / ops.sqrt(bn.moving_variance + bn.eps)
            weight = weight * scale.reshape((-1, 1, 1, 1))
            bias = bn.beta - bn.moving_mean * scale
            if self.has_bias:
                bias = bias + self.bias * scale
        op = self._inference_bias_relu if relu else self._inference_bias
        return op(x, weight, bias, self._conv_params(x))

    def construct(self, x):
        if (
            self.fast
            and not self._low_precision
            and x.ndim == 4
            and x.dtype == ms.float32
            and self.weight.dtype == ms.float32
        ):
            params = self._conv_params(x)
            if self.training:
                out = self._forward(x, self.weight, params)
            else:
                out = self._inference(x, self.weight, params)
            if self.has_bias:
                out = self.bias_add(out, self.bias)
            return out
        return super().construct(x)
