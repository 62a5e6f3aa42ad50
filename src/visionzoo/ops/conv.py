"""2-D convolution.

Same constructor as :class:`mindspore.nn.Conv2d` (same parameters, names and checkpoints); models use
this class so that a faster CPU formulation can be chosen in one place (see docs/performance.md).

On CPU, MindSpore 2.10's ``Conv2D`` and its gradients hand oneDNN plain NCHW tensors, so oneDNN runs
them as im2col + GEMM. When :func:`visionzoo.runtime.fast_conv_enabled` says so (CPU target, not
switched off), float32 NCHW convolutions with ``group=1`` and dilation 1 go through a small C++ kernel
(``csrc/conv2d_cpu.cc``) run as an ``aot`` Custom op with its own backward: it calls the same oneDNN
library MindSpore loads, but lets the convolution choose its memory layouts (channel-blocked, as
PyTorch does), which selects oneDNN's direct AVX2/AVX-512 kernels; inputs and outputs are reordered
from and to NCHW around each call. Neither that nor MindSpore's plain-NCHW GEMM formulation wins for
every shape (a 3-channel 7x7/2 stem's backward-data is faster as GEMM), on some layers splitting the
batch between threads beats one primitive threaded by oneDNN, and the weight gradient of small images is
fastest as one GEMM over many images; so each geometry and direction times its formulations (four, five
for the weight gradient) over its first few calls, one per call, each at least twice, and keeps the
fastest (``VISIONZOO_CONV_TUNING=0``: always the blocked one). It is compiled once per machine on first
use (g++, linked against MindSpore's ``libdnnl.so.3``, cached), then checked by a self-test against
direct loops; if it cannot be built or the check fails, the standard op is used with a warning.

Numerics: the same convolution with a different summation order; outputs and gradients agree with
``nn.Conv2d`` to float32 rounding (``tests/test_ops_conv.py``).
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
from typing import Optional, Tuple

import mindspore as ms
from mindspore import nn, ops

from .. import runtime
from ._fast import FastPathLayer, same_pads
from ._build import build_library

_logger = logging.getLogger(__name__)

_DNNL = "libdnnl.so.3"


def mindspore_dnnl_dir() -> Optional[str]:
    """The directory holding the oneDNN library MindSpore's CPU kernels use, or None."""
    lib_dir = os.path.join(os.path.dirname(os.path.abspath(ms.__file__)), "lib")
    return lib_dir if os.path.exists(os.path.join(lib_dir, _DNNL)) else None


@functools.lru_cache(maxsize=None)
def build_conv_kernels() -> Optional[str]:
    """Compile and self-check the CPU convolution kernels once; return the library path or None."""
    lib_dir = mindspore_dnnl_dir()
    if lib_dir is None:
        _logger.warning("MindSpore's %s was not found; visionzoo uses the standard CPU convolution", _DNNL)
        return None
    lib = build_library("conv2d_cpu", link_args=(f"-L{lib_dir}", f"-l:{_DNNL}", f"-Wl,-rpath,{lib_dir}"),
                        what="CPU convolution kernels")
    if lib is None:
        return None
    try:
        status = ctypes.CDLL(lib).VzConvSelfCheck()
    except (OSError, AttributeError) as err:
        status = str(err)
    if status != 0:
        _logger.warning("visionzoo's CPU convolution kernels failed their self-check (%s) against this MindSpore's "
                        "oneDNN; using the standard CPU convolution", status)
        return None
    if not runtime.conv_tuning_enabled():
        ctypes.CDLL(lib).VzConvForceCandidate(0)  # always the blocked formulation: reproducible rounding
    return lib


def tuning_pending() -> int:
    """How many convolution geometries and directions this process has started tuning and not finished
    (0 when the kernels are not in use). Tuning runs one candidate formulation per call over a layer's
    first few calls (docs/performance.md); benchmarks warm up until this is 0."""
    lib = build_conv_kernels() if runtime.fast_conv_enabled() else None
    return int(ctypes.CDLL(lib).VzConvTuning()) if lib else 0


def _bprop(backward_data, backward_weights):
    def bprop(x, w, params, out, dout):
        return backward_data(dout, w, x, params), backward_weights(x, dout, w, params), ops.zeros_like(params)

    return bprop


class Conv2d(FastPathLayer, nn.Conv2d):
    """Drop-in for :class:`mindspore.nn.Conv2d` (NCHW) with a fast CPU path.

    The fast path is taken for float32 NCHW inputs (training and eval mode) when
    :func:`visionzoo.runtime.fast_conv_enabled` is true at construction time and ``group`` is 1 and
    dilation is 1; otherwise this is exactly ``nn.Conv2d``. Under AMP (float16 inputs) the standard op
    runs. :func:`visionzoo.ops.standard_ops` switches a network to the standard ops (for exports);
    ``layer.fast`` says which path a layer takes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lib = None
        if (runtime.fast_conv_enabled() and self.group == 1 and tuple(self.dilation) == (1, 1)
                and self.data_format == "NCHW"):
            lib = build_conv_kernels()
        self._forward = None
        if lib is not None:
            self._make_ops(lib)
        self.fast = self.has_fast_path

    def _make_ops(self, lib: str) -> None:
        def same_as(index):
            return lambda *shapes: shapes[index]

        backward_data = ops.Custom(f"{lib}:Conv2dBackwardData", out_shape=same_as(2), out_dtype=same_as(2),
                                   func_type="aot")
        backward_weights = ops.Custom(f"{lib}:Conv2dBackwardWeights", out_shape=same_as(2), out_dtype=same_as(2),
                                      func_type="aot")
        bprop = _bprop(backward_data, backward_weights)
        self._forward = ops.Custom(f"{lib}:Conv2dForward", out_shape=self._out_shape, out_dtype=same_as(0),
                                   func_type="aot", bprop=bprop)
        self._inference = ops.Custom(f"{lib}:Conv2dInference", out_shape=self._out_shape, out_dtype=same_as(0),
                                     func_type="aot", bprop=bprop)
        # The output shape depends on the configuration, not only on the input shapes: make it part of the
        # primitives so that PyNative's per-primitive shape cache cannot mix two configurations.
        config = f"{self.kernel_size}{self.stride}{self.pad_mode}{self.padding}"
        for prim in (self._forward, self._inference, backward_data, backward_weights):
            prim.add_prim_attr("conv_config", config)

    def _pads(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """(top, bottom, left, right) padding of an h x w input."""
        mode = self.pad_mode.lower()
        if mode == "same":
            return (*same_pads(h, self.kernel_size[0], self.stride[0]),
                    *same_pads(w, self.kernel_size[1], self.stride[1]))
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

    def construct(self, x):
        if (self.fast and not self._low_precision and x.ndim == 4 and x.dtype == ms.float32
                and self.weight.dtype == ms.float32):
            pt, pb, pl, pr = self._pads(x.shape[2], x.shape[3])
            params = ms.Tensor([self.stride[0], self.stride[1], pt, pb, pl, pr], ms.int32)
            if self.training:
                out = self._forward(x, self.weight, params)
            else:
                out = self._inference(x, self.weight, params)
            if self.has_bias:
                out = self.bias_add(out, self.bias)
            return out
        return super().construct(x)
