"""Shared by the fast-op tests: a cell whose gradients are a layer's backward pass, and a block in which
every fast convolution runs one formulation."""

import contextlib
import ctypes

from mindspore import nn


class WeightedSum(nn.Cell):
    """sum(layer(x) * upstream): its gradients (w.r.t. x and the layer's parameters) are the layer's
    backward pass applied to ``upstream``. Trains or evaluates as the layer does."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.set_train(layer.training)

    def construct(self, x, upstream):
        return (self.layer(x) * upstream).sum()


@contextlib.contextmanager
def forced_candidate(candidate):
    """Every fast convolution runs formulation ``candidate`` inside the block (-1: tuning); yields the
    setting it replaced, restored afterwards."""
    from visionzoo.ops.conv import build_conv_kernels

    lib = ctypes.CDLL(build_conv_kernels())
    previous = lib.VzConvForceCandidate(candidate)
    try:
        yield previous
    finally:
        lib.VzConvForceCandidate(previous)


def candidate_runs(candidate):
    """How many calls have run formulation ``candidate`` in this process."""
    from visionzoo.ops.conv import build_conv_kernels

    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvRuns.restype = ctypes.c_int64
    return lib.VzConvRuns(candidate)
