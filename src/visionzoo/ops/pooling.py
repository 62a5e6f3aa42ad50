"""Max pooling.

Same constructor as :class:`mindspore.nn.MaxPool2d`; models use this class so that a faster CPU
formulation can be chosen in one place (see docs/performance.md).

On CPU, MindSpore 2.10 runs ``MaxPool``/``MaxPoolGrad`` through oneDNN's reference ``simple_nchw``
pooling, whose backward pass alone is ~40% of a GoogLeNet training step. When
:func:`visionzoo.runtime.fast_pool_enabled` says so (CPU target, not switched off), float32 NCHW
inputs in training mode go through a small C++ kernel (``csrc/maxpool2d_cpu.cc``) run as an ``aot`` Custom op with
its own backward. It is compiled once per machine on first use (g++, cached, see
:func:`visionzoo.runtime.cache_dir`); if it cannot be built the standard op is used.

Numerics: forward values are bit-identical to ``nn.MaxPool2d`` (max is exact; padded cells never
win). The gradient routes each output's gradient to the first maximum of its window in row-major
order, which is also what oneDNN does in every case we tested; for windows with tied maxima
another backend may pick a different (equally valid) element.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from typing import Iterator, Optional, Tuple

import mindspore as ms
from mindspore import nn, ops

from .. import runtime

_logger = logging.getLogger(__name__)

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "maxpool2d_cpu.cc")
# No -march=native: the cache may be shared between machines; the loops gain little from it.
_CXXFLAGS = ["-O3", "-fPIC", "-shared", "-std=c++17", "-fopenmp"]


@functools.lru_cache(maxsize=None)
def build_cpu_kernels() -> Optional[str]:
    """Compile the CPU pooling kernels once and return the shared library's path (None if impossible).

    The library is cached under :func:`visionzoo.runtime.cache_dir`, keyed by a hash of the source and
    flags, and written atomically so that concurrent processes can share it.
    """
    with open(_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read() + " ".join(_CXXFLAGS).encode()).hexdigest()[:16]
    out_dir = runtime.cache_dir()
    lib = os.path.join(out_dir, f"maxpool2d_cpu_{digest}.so")
    if os.path.exists(lib):
        return lib
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        _logger.warning("no C++ compiler found; visionzoo uses the (slow) standard CPU max pooling")
        return None
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
        subprocess.run([cxx, *_CXXFLAGS, "-o", tmp, _SOURCE], check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        _logger.warning("building visionzoo's CPU pooling kernels failed (%s); using the standard op", detail.strip())
        return None
    _logger.debug("built CPU pooling kernels: %s", lib)
    return lib


def _pair(value) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _out_and_pad(size: int, k: int, s: int, mode: str, pad: int, ceil_mode: bool) -> Tuple[int, int]:
    """Output length and leading padding along one axis, as nn.MaxPool2d computes them."""
    if mode == "SAME":
        out = (size + s - 1) // s
        return out, max((out - 1) * s + k - size, 0) // 2
    if mode == "VALID":
        return (size - k) // s + 1, 0
    span = size + 2 * pad - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + pad:  # last window must start inside the input or left pad
        out -= 1
    return out, pad


class MaxPool2d(nn.MaxPool2d):
    """Drop-in for :class:`mindspore.nn.MaxPool2d` (NCHW) with a fast CPU path.

    The fast path is taken in training mode (``set_train(True)``) for float32 NCHW inputs when
    :func:`visionzoo.runtime.fast_pool_enabled` is true at construction time and dilation is 1 and
    ``return_indices`` is False; otherwise (eval mode included) this is exactly ``nn.MaxPool2d``.
    """

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1, return_indices=False,
                 ceil_mode=False, data_format="NCHW"):
        super().__init__(kernel_size, stride, pad_mode, padding, dilation, return_indices, ceil_mode, data_format)
        self._k = _pair(self.kernel_size)
        self._s = _pair(self.stride)
        self._pad = _pair(padding) if self.pad_mode == "PAD" else (0, 0)
        self._ceil = bool(ceil_mode)
        lib = None
        if (runtime.fast_pool_enabled() and _pair(dilation) == (1, 1) and not return_indices
                and self.format == "NCHW"):
            lib = build_cpu_kernels()
        self.fast = lib is not None
        self._forward = None
        if self.fast:
            backward = ops.Custom(f"{lib}:MaxPool2dBackward", out_shape=lambda x, dy, p: x,
                                  out_dtype=lambda x, dy, p: x, func_type="aot")

            def bprop(x, params, out, dout):
                return backward(x, dout, params), ops.zeros_like(params)

            self._forward = ops.Custom(f"{lib}:MaxPool2dForward", out_shape=self._out_shape,
                                       out_dtype=lambda x, p: x, func_type="aot", bprop=bprop)
            # The output shape depends on the configuration, not only on the inputs: make it part of the
            # primitive so that PyNative's per-primitive shape cache cannot mix two configurations.
            self._forward.add_prim_attr("pool_config", f"{self._k}{self._s}{self.pad_mode}{self._pad}{self._ceil}")

    def _geometry(self, h, w):
        ho, pt = _out_and_pad(h, self._k[0], self._s[0], self.pad_mode, self._pad[0], self._ceil)
        wo, pl = _out_and_pad(w, self._k[1], self._s[1], self.pad_mode, self._pad[1], self._ceil)
        return ho, wo, pt, pl

    def _out_shape(self, x_shape, p_shape):
        ho, wo, _, _ = self._geometry(x_shape[2], x_shape[3])
        return [x_shape[0], x_shape[1], ho, wo]

    def construct(self, x):
        # Training mode only: the gain is mostly in the backward, and eval-mode graphs (validation,
        # inference, export) stay standard ops that ONNX and other machines understand.
        if self.fast and self.training and x.ndim == 4 and x.dtype == ms.float32:
            _, _, pt, pl = self._geometry(x.shape[2], x.shape[3])
            params = ms.Tensor([self._k[0], self._k[1], self._s[0], self._s[1], pt, pl], ms.int32)
            return self._forward(x, params)
        return super().construct(x)


def set_fast_pool(network: nn.Cell, enabled: bool) -> int:
    """Switch every :class:`MaxPool2d` in ``network`` to the fast CPU path (where it was built with one)
    or to the standard op; returns how many layers run the fast path afterwards. Switch before the
    network's graph is compiled (or for a new compilation such as an export)."""
    count = 0
    for _, cell in network.cells_and_names():
        if isinstance(cell, MaxPool2d):
            cell.fast = bool(enabled) and cell._forward is not None
            count += cell.fast
    return count


@contextlib.contextmanager
def standard_pooling(network: nn.Cell) -> Iterator[nn.Cell]:
    """Run the block with every :class:`MaxPool2d` of ``network`` on the standard ``nn.MaxPool2d`` op.

    For exports: the fast path is an ``aot`` Custom op bound to a locally compiled library, which ONNX
    cannot express and a MINDIR file would reference by a local path. Use
    ``with standard_pooling(net): mindspore.export(net, ...)``.
    """
    previous = [(cell, cell.fast) for _, cell in network.cells_and_names() if isinstance(cell, MaxPool2d)]
    set_fast_pool(network, False)
    try:
        yield network
    finally:
        for cell, fast in previous:
            cell.fast = fast
