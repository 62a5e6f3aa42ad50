"""visionzoo.ops.MaxPool2d's CPU fast path against mindspore.nn.MaxPool2d, forward and backward; switching
networks to the standard ops for export."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from op_utils import WeightedSum
from visionzoo import runtime
from visionzoo.ops import Conv2d, MaxPool2d, set_fast_ops, standard_ops
from visionzoo.ops.pooling import build_cpu_kernels

pytestmark = pytest.mark.cpu_only("visionzoo's fast pooling is a CPU aot Custom op, used with device_target CPU")

# (kwargs, input shape): every pooling configuration visionzoo's models use, plus the explicit
# padding / ceil modes nn.MaxPool2d offers. Odd and even sizes exercise the asymmetric 'same' pad.
CONFIGS = [
    (dict(kernel_size=3, stride=2, pad_mode="same"), (2, 3, 12, 12)),  # googlenet stem pools, even
    (dict(kernel_size=3, stride=2, pad_mode="same"), (2, 3, 13, 11)),  # odd: pad on both sides
    (dict(kernel_size=3, stride=1, pad_mode="same"), (2, 4, 7, 7)),  # inception pool branch
    (dict(kernel_size=2, stride=2, pad_mode="same"), (2, 4, 14, 14)),  # googlenet maxpool4
    (dict(kernel_size=2, stride=2, pad_mode="same"), (1, 2, 7, 7)),  # ... on an odd size
    (dict(kernel_size=2, stride=2), (3, 4, 8, 8)),  # VGG
    (dict(kernel_size=3, stride=2, pad_mode="pad", padding=1), (2, 3, 10, 10)),
    (dict(kernel_size=3, stride=2, pad_mode="pad", padding=1, ceil_mode=True), (2, 3, 10, 10)),
    (dict(kernel_size=3, stride=2, pad_mode="pad", padding=0, ceil_mode=True), (1, 2, 8, 9)),
    (dict(kernel_size=(3, 2), stride=(1, 2), pad_mode="valid"), (1, 2, 6, 8)),
]


def _forward_backward(pool):
    grad_fn = ms.grad(WeightedSum(pool), grad_position=0)  # built once: its graph is reused

    def run(x, upstream):
        return pool(Tensor(x)).asnumpy(), grad_fn(Tensor(x), Tensor(upstream)).asnumpy()

    return run


def _inputs(shape, out_shape, seed):
    """Yield (name, x, upstream): distinct mostly-negative values (padding must never win), then few
    distinct values, so that many windows have tied maxima, as after ReLU."""
    rng = np.random.default_rng(seed)
    yield "distinct", rng.standard_normal(shape).astype(np.float32) - 2.0, rng.standard_normal(out_shape)
    yield "ties", rng.integers(0, 3, size=shape).astype(np.float32), rng.standard_normal(out_shape)


def test_kernels_build():
    assert build_cpu_kernels() is not None


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs,shape", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_fast_maxpool_matches_nn(mode, kwargs, shape, training):
    runtime.use_fast_pool(True)
    try:
        fast = MaxPool2d(**kwargs)
    finally:
        runtime.use_fast_pool(None)
    ref = nn.MaxPool2d(**kwargs)
    assert fast.fast
    fast.set_train(training)
    ref.set_train(training)
    if mode == ms.PYNATIVE_MODE:  # prove the Custom op really runs (PyNative executes construct in Python)
        calls, kernel = [], fast._forward
        fast._forward = lambda *args: calls.append(1) or kernel(*args)
    before = _kernel_calls()
    ref_shape = ref(Tensor(np.zeros(shape, np.float32))).shape
    run_ref, run_fast = _forward_backward(ref), _forward_backward(fast)
    for name, x, upstream in _inputs(shape, ref_shape, seed=sum(shape)):
        upstream = upstream.astype(np.float32)
        out_ref, grad_ref = run_ref(x, upstream)
        out, grad = run_fast(x, upstream)
        assert out.shape == out_ref.shape, name
        np.testing.assert_array_equal(out, out_ref, err_msg=name)
        # Each output's gradient goes to the first maximum of its window, as oneDNN's does: identical
        # even with ties (a different tie-break would still conserve the sum; see pooling.py).
        np.testing.assert_array_equal(grad, grad_ref, err_msg=name)
    if mode == ms.PYNATIVE_MODE:
        assert len(calls) >= 4
    # in graph mode too: the kernel's own counters prove it ran, forward and backward, for both inputs
    forward, backward = (after - b for after, b in zip(_kernel_calls(), before))
    assert forward >= 2 and backward >= 2, (forward, backward)


def _kernel_calls():
    """(forward, backward) calls the fast pooling kernel has served in this process."""
    lib = ctypes.CDLL(build_cpu_kernels())
    lib.VzPoolCalls.restype = ctypes.c_int64
    return lib.VzPoolCalls(0), lib.VzPoolCalls(1)


def test_non_float32_and_3d_inputs_use_standard_op(mode):
    runtime.use_fast_pool(True)
    try:
        pool = MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
    finally:
        runtime.use_fast_pool(None)
    x = np.random.default_rng(0).standard_normal((3, 9, 9)).astype(np.float16)
    ref = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
    np.testing.assert_array_equal(pool(Tensor(x)).asnumpy(), ref(Tensor(x)).asnumpy())
    np.testing.assert_array_equal(pool(Tensor(x[None])).asnumpy(), ref(Tensor(x[None])).asnumpy())


# (environment variable, override function, decision function, a layer that can take the fast path)
SWITCHES = {
    "pool": (runtime.FAST_POOL_ENV, runtime.use_fast_pool, runtime.fast_pool_enabled, lambda: MaxPool2d(2, 2)),
    "conv": (runtime.FAST_CONV_ENV, runtime.use_fast_conv, runtime.fast_conv_enabled, lambda: Conv2d(2, 2, 3)),
}


@pytest.mark.parametrize("kind", sorted(SWITCHES))
def test_switches(monkeypatch, kind):
    env, use, enabled, layer = SWITCHES[kind]
    monkeypatch.delenv(env, raising=False)
    assert ms.get_context("device_target") == "CPU"
    assert enabled()
    assert layer().fast
    monkeypatch.setenv(env, "0")
    assert not enabled()
    assert not layer().fast
    use(True)  # the function beats the environment
    try:
        assert layer().fast
    finally:
        use(None)
    assert not enabled()  # None restored the automatic choice (here: the environment's "0")
    monkeypatch.delenv(env)
    real_get_context = ms.get_context
    monkeypatch.setattr(ms, "get_context", lambda key: "Ascend" if key == "device_target" else real_get_context(key))
    assert not enabled()  # Ascend / GPU keep the standard op


def test_unsupported_options_fall_back():
    pool = MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1, return_indices=True)
    assert not pool.fast


def test_standard_ops_for_export(tmp_path):
    runtime.use_fast_pool(True)
    try:
        net = nn.SequentialCell([nn.Conv2d(1, 2, 3), MaxPool2d(kernel_size=2, stride=2), nn.ReLU()])
    finally:
        runtime.use_fast_pool(None)
    net.set_train(False)
    assert net[1].fast
    with standard_ops(net):  # ONNX cannot express the fast path's aot Custom op
        assert not net[1].fast
        ms.export(net, Tensor(np.zeros((1, 1, 8, 8), np.float32)), file_name=str(tmp_path / "net"), file_format="ONNX")
    assert (tmp_path / "net.onnx").stat().st_size > 0
    assert net[1].fast  # restored
    assert set_fast_ops(net, False) == 0 and not net[1].fast
    assert set_fast_ops(net, True) == 1 and net[1].fast


@pytest.mark.parametrize("level", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
def test_each_vector_level_matches_nn(level):
    """The pooling loops are compiled for the baseline, AVX2 and AVX-512; each level the CPU has gives the
    same values and gradients as nn.MaxPool2d (ties included), on every configuration."""
    from visionzoo.ops.pooling import vector_level

    if level > vector_level():
        pytest.skip(f"this CPU (or its ONEDNN_MAX_CPU_ISA cap) does not run level {level}")
    lib = ctypes.CDLL(build_cpu_kernels())
    previous = lib.VzPoolSetIsa(level)
    try:
        for kwargs, shape in CONFIGS:
            test_fast_maxpool_matches_nn(ms.get_context("mode"), kwargs, shape, training=True)
    finally:
        assert lib.VzPoolSetIsa(previous) == level
    assert previous == vector_level()


def test_vector_level_follows_the_fast_paths_isa(monkeypatch):
    """AVX-512 where the fast convolution runs AVX512_CORE, AVX2 under a user's AVX2 cap, never above the CPU."""
    from visionzoo.ops import pooling

    avx512 = frozenset({"sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"})
    monkeypatch.setattr(runtime, "cpu_flags", lambda: avx512)
    monkeypatch.setattr(runtime, "fast_isa", lambda: "AVX512_CORE")
    assert pooling.vector_level() == 2
    monkeypatch.setattr(runtime, "fast_isa", lambda: None)  # a user-set ONEDNN_MAX_CPU_ISA
    monkeypatch.setenv(runtime.ISA_ENV, "AVX2")
    assert pooling.vector_level() == 1
    monkeypatch.setenv(runtime.ISA_ENV, "SSE41")
    assert pooling.vector_level() == 0
    monkeypatch.setenv(runtime.ISA_ENV, "AVX512_CORE_AMX")
    assert pooling.vector_level() == 2
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"sse4_1", "avx", "avx2", "fma"}))
    assert pooling.vector_level() == 1  # the cap asks for more than the CPU has
