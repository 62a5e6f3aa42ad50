"""Max pooling.

Same constructor as :class:`mindspore.nn.MaxPool2d`; models use this class so that a faster CPU
formulation can be chosen in one place (see docs/performance.md).

On CPU, MindSpore 2.10 runs ``MaxPool``/``MaxPoolGrad`` through oneDNN's reference ``simple_nchw``
pooling, whose backward pass alone is ~40% of a GoogLeNet training step. When
:func:`visionzoo.runtime.fast_pool_enabled` says so (CPU target, not switched off), float32 NCHW
inputs go through a small C++ kernel (``csrc/maxpool2d_cpu.cc``) run as an ``aot`` Custom op with
its own backward. It is compiled once per machine on first use (g++, cached, see
:func:`visionzoo.runtime.cache_dir`); if it cannot be built the standard op is used.

Numerics: forward values are bit-identical to ``nn.MaxPool2d`` (max is exact; padded cells never
win). The gradient routes each output's gradient to the first maximum of its window in row-major
order, which is also what oneDNN does in every case we tested; for windows with tied maxima
another backend may pick a different (equally valid) element.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Tuple

import mindspore as ms
from mindspore import nn, ops

from .. import runtime
from ._build import build_library, load_once
from ._fast import FastPathLayer, same_pads

_logger = logging.getLogger(__name__)


def vector_level() -> int:
    """The pooling loops' vector level: 2 AVX-512, 1 AVX2, 0 the baseline; the fast convolution's ISA
    (:func:`visionzoo.runtime.fast_isa`), or where the user set ``ONEDNN_MAX_CPU_ISA``, the lower of that
    and the CPU's best."""

    def level(isa: str) -> int:
        isa = isa.upper()
        if isa.startswith(("AVX512", "AVX10")) or isa in ("ALL", "DEFAULT"):
            return 2
        return 1 if isa.startswith("AVX2") else 0

    host = level(runtime.best_fp32_isa(runtime.cpu_flags()) or "")
    chosen = runtime.fast_isa() or os.environ.get(runtime.ISA_ENV, "")
    return min(level(chosen), host) if chosen else host


def _load(retry: bool = False) -> str:
    path = build_library("maxpool2d_cpu", what="CPU max pooling kernels", retry=retry)
    ctypes.CDLL(path).VzPoolSetIsa(vector_level())
    return path


#: Compile the CPU pooling kernels once and return the shared library's path, or None when impossible
#: (warned once; raises under ``VISIONZOO_FAST_OPS=require``); cached under
#: :func:`visionzoo.runtime.cache_dir` (see :func:`visionzoo.ops._build.build_library`).
build_cpu_kernels = load_once(_load)


def _pair(value) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _out_and_pad(size: int, k: int, s: int, mode: str, pad: int, ceil_mode: bool) -> Tuple[int, int]:
    """Output length and leading padding along one axis, as nn.MaxPool2d computes them."""
    if mode == "SAME":
        return (size + s - 1) // s, same_pads(size, k, s)[0]
    if mode == "VALID":
        return (size - k) // s + 1, 0
    span = size + 2 * pad - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pad:  # last window must start inside the input or left pad
        out -= 1
    return out, pad


class MaxPool2d(FastPathLayer, nn.MaxPool2d):
    """Drop-in for :class:`mindspore.nn.MaxPool2d` (NCHW) with a fast CPU path.

    The fast path is taken for float32 NCHW inputs (training and eval mode) when
    :func:`visionzoo.runtime.fast_pool_enabled` is true at construction time and dilation is 1 and
    ``return_indices`` is False; otherwise this is exactly ``nn.MaxPool2d``. ``layer.fast`` says which
    path a layer takes; :func:`visionzoo.ops.standard_ops` switches a network to the standard ops
    (for exports).
    """

    def __init__(
        self,
        kernel_size=1,
        stride=1,
        pad_mode="valid",
        padding=0,
        dilation=1,
        return_indices=False,
        ceil_mode=False,
        data_format="NCHW",
    ):
        super().__init__(kernel_size, stride, pad_mode, padding, dilation, return_indices, ceil_mode, data_format)
        self._k = _pair(self.kernel_size)
        self._s = _pair(self.stride)
        self._pad = _pair(padding) if self.pad_mode == "PAD" else (0, 0)
        self._ceil = bool(ceil_mode)
        lib = None
        if runtime.fast_pool_enabled() and _pair(dilation) == (1, 1) and not return_indices and self.format == "NCHW":
            lib = build_cpu_kernels()
        self._forward = None
        if lib is not None:
            backward = ops.Custom(
                f"{lib}:MaxPool2dBackward", out_shape=lambda x, dy, p: x, out_dtype=lambda x, dy, p: x, func_type="aot"
            )

            def bprop(x, params, out, dout):
                return backward(x, dout, params), ops.zeros_like(params)

            self._forward = ops.Custom(
                f"{lib}:MaxPool2dForward",
                out_shape=self._out_shape,
                out_dtype=lambda x, p: x,
                func_type="aot",
                bprop=bprop,
            )
            # The output shape depends on the configuration, not only on the inputs: make it part of the
            # primitive so that PyNative's per-primitive shape cache cannot mix two configurations.
            self._forward.add_prim_attr("pool_config", f"{self._k}{self._s}{self.pad_mode}{self._pad}{self._ceil}")
        self.fast = self.has_fast_path

    def _geometry(self, h, w):
        ho, pt = _out_and_pad(h, self._k[0], self._s[0], self.pad_mode, self._pad[0], self._ceil)
        wo, pl = _out_and_pad(w, self._k[1], self._s[1], self.pad_mode, self._pad[1], self._ceil)
        return ho, wo, pt, pl

    def _out_shape(self, x_shape, p_shape):
        ho, wo, _, _ = self._geometry(x_shape[2], x_shape[3])
        return [x_shape[0], x_shape[1], ho, wo]

    def construct(self, x):
        if self.fast and not self._low_precision and x.ndim == 4 and x.dtype == ms.float32:
            _, _, pt, pl = self._geometry(x.shape[2], x.shape[3])
            params = ms.Tensor([self._k[0], self._k[1], self._s[0], self._s[1], pt, pl], ms.int32)
            return self._forward(x, params)
        return super().construct(x)
