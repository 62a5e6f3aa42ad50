"""visionzoo.ops.Conv2d's CPU fast path against mindspore.nn.Conv2d: outputs, input and weight gradients."""

import ctypes

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

import visionzoo
from op_utils import WeightedSum, candidate_runs, forced_candidate
from visionzoo import runtime
from visionzoo.ops import Conv2d, MaxPool2d, set_fast_ops, standard_ops
from visionzoo.ops.conv import build_conv_kernels

pytestmark = pytest.mark.cpu_only("visionzoo's fast convolution is a CPU aot Custom op, used with device_target CPU")

# (kwargs, input shape): the convolutions visionzoo's models use (googlenet's 7x7/2 stem on even and
# odd sizes, 1x1, 3x3 and 5x5 'same', VGG's 3x3 'pad' 1 with bias), plus 'valid', strided 'valid' on
# odd sizes and an asymmetric explicit padding.
CONFIGS = [
    (dict(in_channels=3, out_channels=8, kernel_size=7, stride=2, pad_mode="same"), (2, 3, 16, 16)),
    (dict(in_channels=3, out_channels=8, kernel_size=7, stride=2, pad_mode="same"), (2, 3, 15, 13)),
    (dict(in_channels=16, out_channels=24, kernel_size=1), (2, 16, 7, 7)),
    (dict(in_channels=16, out_channels=16, kernel_size=3, pad_mode="same"), (2, 16, 9, 8)),
    (dict(in_channels=8, out_channels=12, kernel_size=5, pad_mode="same"), (2, 8, 7, 7)),
    (dict(in_channels=3, out_channels=16, kernel_size=3, pad_mode="pad", padding=1, has_bias=True), (3, 3, 8, 8)),
    (dict(in_channels=6, out_channels=5, kernel_size=3, pad_mode="valid", has_bias=True), (2, 6, 9, 10)),
    (dict(in_channels=6, out_channels=8, kernel_size=3, stride=2, pad_mode="valid"), (2, 6, 11, 9)),
    (
        dict(in_channels=4, out_channels=8, kernel_size=(3, 2), stride=(2, 1), pad_mode="pad", padding=(1, 0, 2, 1)),
        (2, 4, 9, 7),
    ),
]


# 3x3 stride-1 convolutions, where the Winograd formulation exists: VGG's padding 1 with bias, 'same' on odd
# sizes, 'valid' (its backward data pads 2), an asymmetric padding up to 2 (F(4x4) tiles, gathered: rows of
# under 8 tiles), a 2x2 map (F(2x2): VGG's last block at 32x32 input) with more output channels than the
# micro-kernel's rows and not a multiple of them, and rows of 9 and 17 tiles (transformed along the rows:
# a vector of 8 or 16 tiles, then the rest one by one).
WINOGRAD_CONFIGS = [
    (dict(in_channels=16, out_channels=16, kernel_size=3, pad_mode="pad", padding=1, has_bias=True), (2, 16, 8, 8)),
    (dict(in_channels=8, out_channels=12, kernel_size=3, pad_mode="same"), (3, 8, 7, 9)),
    (dict(in_channels=6, out_channels=5, kernel_size=3, pad_mode="valid"), (2, 6, 9, 10)),
    (dict(in_channels=8, out_channels=8, kernel_size=3, pad_mode="pad", padding=(2, 0, 1, 2)), (2, 8, 7, 6)),
    (dict(in_channels=40, out_channels=21, kernel_size=3, pad_mode="pad", padding=1), (4, 40, 2, 2)),
    (dict(in_channels=5, out_channels=7, kernel_size=3, pad_mode="same"), (2, 5, 6, 35)),
    (dict(in_channels=4, out_channels=6, kernel_size=3, pad_mode="pad", padding=1), (1, 4, 5, 67)),
]


def _fast_conv(**kwargs):
    runtime.use_fast_conv(True)
    try:
        return Conv2d(**kwargs)
    finally:
        runtime.use_fast_conv(None)


def _forward_backward(conv, x, upstream):
    grad_fn = ms.grad(WeightedSum(conv), grad_position=0, weights=conv.trainable_params())
    dx, dparams = grad_fn(Tensor(x), Tensor(upstream))
    return conv(Tensor(x)).asnumpy(), dx.asnumpy(), [g.asnumpy() for g in dparams]


def _close(got, want, what):
    # float32 sums of up to 16*7*7 products in another order: relative to the magnitude of the values
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale, err_msg=what)


def test_kernels_build_and_pass_their_self_check():
    lib = build_conv_kernels()
    assert lib is not None
    assert ctypes.CDLL(lib).VzConvSelfCheck() == 0  # enumerations and a conv + gradients vs direct loops


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs,shape", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_fast_conv_matches_nn(mode, kwargs, shape, training):
    fast = _fast_conv(**kwargs)
    assert fast.fast
    ref = nn.Conv2d(**kwargs)
    rng = np.random.default_rng(sum(shape))
    fast.weight.set_data(Tensor(rng.standard_normal(fast.weight.shape).astype(np.float32)))
    ref.weight.set_data(fast.weight.data.copy())
    if fast.has_bias:
        fast.bias.set_data(Tensor(rng.standard_normal(fast.bias.shape).astype(np.float32)))
        ref.bias.set_data(fast.bias.data.copy())
    fast.set_train(training)
    ref.set_train(training)
    if mode == ms.PYNATIVE_MODE:  # prove the Custom op really runs (PyNative executes construct in Python)
        calls = []
        for name in ("_forward", "_inference"):
            kernel = getattr(fast, name)
            setattr(fast, name, lambda *args, _k=kernel: calls.append(1) or _k(*args))
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = ref(Tensor(x)).shape
    upstream = rng.standard_normal(out_shape).astype(np.float32)
    out_ref, dx_ref, dp_ref = _forward_backward(ref, x, upstream)
    out, dx, dp = _forward_backward(fast, x, upstream)
    assert out.shape == out_ref.shape and dx.shape == dx_ref.shape
    _close(out, out_ref, "output")
    _close(dx, dx_ref, "input gradient")
    assert len(dp) == len(dp_ref) == (2 if fast.has_bias else 1)
    for got, want, name in zip(dp, dp_ref, ("weight gradient", "bias gradient")):
        _close(got, want, name)
    if mode == ms.PYNATIVE_MODE:
        assert len(calls) >= 2


@pytest.mark.parametrize(
    "candidate", [0, 1, 2, 3, 4], ids=["blocked", "plain", "blocked-split", "plain-split", "batch-gemm"]
)
@pytest.mark.parametrize("kwargs,shape", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_each_candidate_matches_nn(kwargs, shape, candidate):
    """The kernel keeps, per geometry and direction, the fastest of four oneDNN formulations (blocked
    layouts / plain NCHW, one primitive on all threads / the batch split between threads) and, for the
    weight gradient, a GEMM over the whole batch; each must be right, whichever a machine's timing picks.
    An odd batch cannot be split: there the split candidates fall back to the unsplit one of the same
    layout; the batch GEMM exists only for the weight gradient (the training forward and the backward
    data fall back to the blocked formulation; eval mode has its own fifth, tested below)."""
    with forced_candidate(candidate) as previous:
        test_fast_conv_matches_nn(ms.get_context("mode"), kwargs, shape, training=True)
    assert previous == -1  # tuning is the default


@pytest.mark.parametrize("candidate", [0, 4], ids=["training-kind-blocked", "inference-kind"])
@pytest.mark.parametrize("kwargs,shape", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_each_eval_candidate_matches_nn(kwargs, shape, candidate):
    """In eval mode the blocked formulation runs a forward_training primitive (oneDNN's direct kernel on
    channel-blocked tensors, as PyTorch runs it) and a fifth candidate oneDNN's forward_inference choice
    (brgemm on NHWC at the AVX-512 level); both must be right, outputs and input gradients."""
    with forced_candidate(candidate):
        test_fast_conv_matches_nn(ms.get_context("mode"), kwargs, shape, training=False)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs,shape", WINOGRAD_CONFIGS, ids=[str(i) for i in range(len(WINOGRAD_CONFIGS))])
def test_winograd_matches_nn(kwargs, shape, training):
    """Winograd, the sixth formulation of 3x3 stride-1 convolutions: the output (training and eval kinds),
    the input gradient (backward data, the same transform on the flipped kernel) and the weight gradient
    (G^T [(B^T d B) (.) (A dy A^T)] G summed over tiles) equal nn.Conv2d's. It ran for all four calls: the
    gradient call's forward, backward data and backward weights, and the plain forward call."""
    winograd = 5
    runs = candidate_runs(winograd)
    with forced_candidate(winograd):
        test_fast_conv_matches_nn(ms.get_context("mode"), kwargs, shape, training=training)
    assert candidate_runs(winograd) == runs + 4


def test_winograd_blocked_schedule_matches_nn():
    """Geometries whose transformed input exceeds the whole schedule's bound run in blocks of tile rows,
    one block per thread at a time: with the bound at 1 byte, every geometry planned meanwhile is blocked
    (rows path and gathered, F(4x4) and F(2x2), blocks ending inside an image)."""
    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvWinogradWholeBytes.restype = ctypes.c_int64
    lib.VzConvWinogradWholeBytes.argtypes = [ctypes.c_int64]
    previous = lib.VzConvWinogradWholeBytes(1)
    try:  # geometries no other test plans (a plan is kept per geometry for the process)
        for kwargs, shape in (
            (dict(in_channels=3, out_channels=9, kernel_size=3, pad_mode="same"), (3, 3, 13, 37)),
            (dict(in_channels=7, out_channels=5, kernel_size=3, pad_mode="same"), (5, 7, 11, 6)),
            (dict(in_channels=9, out_channels=4, kernel_size=3, pad_mode="same"), (7, 9, 3, 2)),
        ):
            test_winograd_matches_nn(kwargs, shape, training=True)
    finally:
        assert lib.VzConvWinogradWholeBytes(previous) == 1
    assert previous == 16 << 20


_AVX2_WINOGRAD = r"""
import ctypes, json
import numpy as np
import mindspore as ms
from mindspore import Tensor, nn
from visionzoo import runtime
from visionzoo.ops import Conv2d
from visionzoo.ops.conv import build_conv_kernels, effective_isa


class Loss(nn.Cell):  # sum(conv(x) * upstream): its gradients are the layer's backward pass
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def construct(self, x, upstream):
        return (self.conv(x) * upstream).sum()


lib = ctypes.CDLL(build_conv_kernels())
lib.VzConvRuns.restype = ctypes.c_int64
lib.VzConvForceCandidate(5)
runtime.use_fast_conv(True)
errors, before = [], lib.VzConvRuns(5)
for cin, cout, shape in ((8, 13, (2, 8, 9, 9)), (16, 7, (3, 16, 2, 3)), (3, 5, (1, 3, 6, 40))):
    conv, ref = Conv2d(cin, cout, 3, pad_mode="same"), nn.Conv2d(cin, cout, 3, pad_mode="same")
    ref.weight.set_data(conv.weight.data.copy())
    rng = np.random.default_rng(cin)
    x = Tensor(rng.standard_normal(shape).astype(np.float32))
    upstream = Tensor(rng.standard_normal(ref(x).shape).astype(np.float32))
    for training in (True, False):
        conv.set_train(training), ref.set_train(training)
        got = [conv(x)] + list(ms.grad(Loss(conv), grad_position=0, weights=conv.trainable_params())(x, upstream))
        want = [ref(x)] + list(ms.grad(Loss(ref), grad_position=0, weights=ref.trainable_params())(x, upstream))
        for g, w in zip(got, want):  # output, input gradient, weight gradient
            g, w = (g[0] if isinstance(g, tuple) else g).asnumpy(), (w[0] if isinstance(w, tuple) else w).asnumpy()
            errors.append(float(np.abs(g - w).max() / np.abs(w).max()))
print("RESULT", json.dumps({"isa": effective_isa(lib), "runs": lib.VzConvRuns(5) - before, "errors": errors}))
"""


def test_winograd_avx2_kernels_match_nn():
    """The AVX2+FMA build of the Winograd formulation (the micro-kernel, the 8-lane transforms), as an AVX2
    host or a user's ONEDNN_MAX_CPU_ISA=AVX2 cap gets it, in a process of its own: outputs, input gradients
    and weight gradients of F(4x4) and F(2x2), gathered and along rows, equal nn.Conv2d's."""
    import json
    import subprocess
    import sys

    from script_utils import script_env

    out = subprocess.run(
        [sys.executable, "-c", _AVX2_WINOGRAD],
        env=script_env({"ONEDNN_MAX_CPU_ISA": "AVX2"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT ") :])
    assert result["isa"] == "AVX2"
    assert result["runs"] == 3 * 2 * 4  # three geometries, training and eval: forward twice, both gradients
    assert len(result["errors"]) == 3 * 2 * 3 and max(result["errors"]) < 2e-5


def test_winograd_exists_only_for_3x3_stride_1():
    """Forced on a geometry without it (stride 2, 1x1, 7x7), the kernel runs the blocked formulation."""
    winograd = 5
    runs = candidate_runs(winograd)
    with forced_candidate(winograd):
        for kwargs, shape in (CONFIGS[0], CONFIGS[2], CONFIGS[7]):
            test_fast_conv_matches_nn(ms.get_context("mode"), kwargs, shape, training=True)
    assert candidate_runs(winograd) == runs


@pytest.mark.parametrize("kwargs,shape", [CONFIGS[1], CONFIGS[5], CONFIGS[8]], ids=["stem", "vgg", "asymmetric"])
def test_batch_gemm_in_groups_of_images_matches_nn(kwargs, shape):
    """The weight-gradient GEMM gathers as many images per GEMM as fit its column buffer and adds the
    groups' products: with room for one image only, every image is its own group."""
    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvMaxColumnBytes.restype = ctypes.c_size_t
    lib.VzConvMaxColumnBytes.argtypes = [ctypes.c_size_t]
    previous_limit = lib.VzConvMaxColumnBytes(1)
    try:
        with forced_candidate(4):
            test_fast_conv_matches_nn(ms.get_context("mode"), kwargs, shape, training=True)
    finally:
        assert lib.VzConvMaxColumnBytes(previous_limit) == 1
    assert previous_limit == 64 << 20


def test_tuning_chooses_in_the_first_call_whose_result_is_the_chosen_formulations():
    """A geometry no rule decides (3x3 stride 2, 5 channels) times its candidates in its first call, each at
    most twice, and keeps one; that call's result is already the kept candidate's, bit for bit, and right."""
    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvClearPresets()  # choices persisted by earlier runs would skip the tuning watched here
    conv = _fast_conv(in_channels=5, out_channels=7, kernel_size=3, stride=2, pad_mode="same")
    ref = nn.Conv2d(in_channels=5, out_channels=7, kernel_size=3, stride=2, pad_mode="same")
    ref.weight.set_data(conv.weight.data.copy())
    x = Tensor(np.random.default_rng(3).standard_normal((4, 5, 11, 11)).astype(np.float32))
    geometry = [
        np.array(v, dtype=d)
        for v, d in (
            ((4, 5, 11, 11), np.int64),
            ((7, 5, 3, 3), np.int64),
            ((4, 7, 6, 6), np.int64),
            ((2, 2, 1, 1, 1, 1), np.int32),
        )
    ]
    pointers = [g.ctypes.data_as(ctypes.c_void_p) for g in geometry]
    inference = 1  # the kernel's direction numbers: 0 forward (training), 1 inference, 2/3 backward
    assert lib.VzConvChosenCandidate(inference, *pointers) == -1  # not run yet
    conv.set_train(False)
    ref.set_train(False)
    want = ref(x).asnumpy()
    first = conv(x).asnumpy()
    _close(first, want, "the tuning call's output")
    chosen = lib.VzConvChosenCandidate(inference, *pointers)
    assert chosen in (0, 1)  # timed: blocked and plain (never the split ones or forward_inference)
    assert lib.VzConvDecision(inference, *pointers) == DECISIONS["timed"]
    assert lib.VzConvTuning() == 0  # nothing left half-tuned between calls
    with forced_candidate(chosen):
        np.testing.assert_array_equal(conv(x).asnumpy(), first)
    np.testing.assert_array_equal(conv(x).asnumpy(), first)
    assert lib.VzConvChosenCandidate(inference, *pointers) == chosen


# chooser.h's Decision values (VzConvDecision)
DECISIONS = {"only": 1, "winograd rule": 2, "tiny-map gemm rule": 3, "timed": 4, "saved": 5}


def _geometry(x, w, y, p):
    arrays = [np.array(x, np.int64), np.array(w, np.int64), np.array(y, np.int64), np.array(p, np.int32)]
    return arrays, [a.ctypes.data_as(ctypes.c_void_p) for a in arrays]


# (direction, x, w, y, p, decision, the formulations built): chooser.h's rule table, on geometries no
# other test uses. Directions: 0 forward, 1 inference, 2 backward data, 3 backward weights.
RULES = [
    # 3x3 stride 1, >= 64 reduced channels: Winograd, nothing else built
    (0, (2, 64, 6, 6), (8, 64, 3, 3), (2, 8, 6, 6), (1, 1, 1, 1, 1, 1), "winograd rule", {5}),
    (3, (2, 64, 6, 6), (8, 64, 3, 3), (2, 8, 6, 6), (1, 1, 1, 1, 1, 1), "winograd rule", {5}),
    # the data gradient reduces over the output's channels (VGG's first layer, 3 -> 64)
    (2, (2, 3, 6, 6), (64, 3, 3, 3), (2, 64, 6, 6), (1, 1, 1, 1, 1, 1), "winograd rule", {5}),
    # ... whose forward (3 input channels) is timed between blocked, plain and Winograd
    (0, (2, 3, 6, 6), (64, 3, 3, 3), (2, 64, 6, 6), (1, 1, 1, 1, 1, 1), "timed", {0, 1, 5}),
    # the weight gradient on a map of <= 4 pixels: the batched GEMM
    (3, (2, 24, 2, 2), (16, 24, 1, 1), (2, 16, 2, 2), (1, 1, 0, 0, 0, 0), "tiny-map gemm rule", {4}),
    # otherwise timed: blocked, plain and the batched GEMM below 64 pixels; eval never builds forward_inference
    (3, (2, 24, 5, 5), (16, 24, 1, 1), (2, 16, 5, 5), (1, 1, 0, 0, 0, 0), "timed", {0, 1, 4}),
    (3, (2, 24, 8, 8), (16, 24, 1, 1), (2, 16, 8, 8), (1, 1, 0, 0, 0, 0), "timed", {0, 1}),
    (1, (2, 24, 5, 5), (16, 24, 1, 1), (2, 16, 5, 5), (1, 1, 0, 0, 0, 0), "timed", {0, 1}),
]


@pytest.mark.parametrize("direction, x, w, y, p, decision, built", RULES)
def test_the_rule_table_decides_what_is_built_and_timed(direction, x, w, y, p, decision, built):
    """chooser.h's rules: a rule-decided geometry builds one formulation and times nothing; the others
    build only what is timed (never the batch-split formulations, never forward_inference)."""
    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvClearPresets()
    _, pointers = _geometry(x, w, y, p)
    assert lib.VzConvDecision(direction, *pointers) == DECISIONS[decision]
    assert lib.VzConvBuiltCandidates(direction, *pointers) == sum(1 << i for i in built)
    if decision != "timed":
        assert lib.VzConvChosenCandidate(direction, *pointers) == min(built)


def test_a_rule_decided_layer_runs_its_formulation_once_in_its_first_call():
    """A 3x3 stride-1 layer with 64 input channels: its first call runs Winograd once (no timing of the
    others) and agrees with nn.Conv2d."""
    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvClearPresets()
    conv = _fast_conv(in_channels=64, out_channels=6, kernel_size=3, pad_mode="pad", padding=1)
    ref = nn.Conv2d(in_channels=64, out_channels=6, kernel_size=3, pad_mode="pad", padding=1)
    ref.weight.set_data(conv.weight.data.copy())
    conv.set_train(False)
    ref.set_train(False)
    x = Tensor(np.random.default_rng(11).standard_normal((3, 64, 5, 7)).astype(np.float32))
    before = [candidate_runs(i) for i in range(6)]
    _close(conv(x).asnumpy(), ref(x).asnumpy(), "the rule-decided first call")
    assert [candidate_runs(i) - before[i] for i in range(6)] == [0, 0, 0, 0, 0, 1]
    _, pointers = _geometry((3, 64, 5, 7), (6, 64, 3, 3), (3, 6, 5, 7), (1, 1, 1, 1, 1, 1))
    assert lib.VzConvDecision(1, *pointers) == DECISIONS["winograd rule"]


def test_a_saved_choice_builds_only_its_formulation_until_another_is_forced():
    """A geometry whose choice a tuning file supplied starts on it with only its primitives built (no
    tuning, less memory); forcing another formulation builds that one on demand, and both are right."""
    lib = ctypes.CDLL(build_conv_kernels())
    conv = _fast_conv(in_channels=6, out_channels=10, kernel_size=3, pad_mode="same")
    ref = nn.Conv2d(in_channels=6, out_channels=10, kernel_size=3, pad_mode="same")
    ref.weight.set_data(conv.weight.data.copy())
    shapes = ((6, 6, 13, 11), (10, 6, 3, 3), (6, 10, 13, 11), (1, 1, 1, 1, 1, 1))  # a geometry no other test uses
    geometry = [np.array(v, dtype=np.int32 if len(v) == 6 else np.int64) for v in shapes]
    pointers = [g.ctypes.data_as(ctypes.c_void_p) for g in geometry]
    inference, plain = 1, 1
    row = np.array([inference, *shapes[0], shapes[1][0], *shapes[1][2:], *shapes[2][2:], *shapes[3], plain], np.int64)
    assert lib.VzConvPresetChoice(row.ctypes.data_as(ctypes.c_void_p)) == 0
    x = Tensor(np.random.default_rng(9).standard_normal(shapes[0]).astype(np.float32))
    conv.set_train(False)
    ref.set_train(False)
    want = ref(x).asnumpy()
    _close(conv(x).asnumpy(), want, "the saved choice's output")
    assert lib.VzConvChosenCandidate(inference, *pointers) == plain
    assert lib.VzConvBuiltCandidates(inference, *pointers) == 1 << plain  # no other primitive built
    assert lib.VzConvDecision(inference, *pointers) == DECISIONS["saved"]
    with forced_candidate(0):
        _close(conv(x).asnumpy(), want, "a forced formulation's output")
    assert lib.VzConvBuiltCandidates(inference, *pointers) == (1 << plain) | 1
    lib.VzConvClearPresets()


def test_amp_float16_and_unsupported_configurations_use_standard_op():
    conv = _fast_conv(in_channels=4, out_channels=4, kernel_size=3, pad_mode="same")
    ref = nn.Conv2d(4, 4, 3, pad_mode="same")
    conv.weight.set_data(ref.weight.data.copy())
    conv.to_float(ms.float16)
    ref.to_float(ms.float16)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 4, 6, 6)).astype(np.float32))
    np.testing.assert_array_equal(conv(x).asnumpy(), ref(x).asnumpy())
    runtime.use_fast_pool(True)
    try:
        pool = MaxPool2d(kernel_size=2, stride=2)
    finally:
        runtime.use_fast_pool(None)
    assert pool.fast
    pool.to_float(ms.float16)  # PyNative then casts the op's input: the float32 kernel must not run
    np.testing.assert_array_equal(pool(x).asnumpy(), nn.MaxPool2d(2, 2).to_float(ms.float16)(x).asnumpy())
    assert not _fast_conv(in_channels=4, out_channels=4, kernel_size=3, group=2).fast
    assert not _fast_conv(in_channels=4, out_channels=4, kernel_size=3, dilation=2).fast


def test_model_with_fast_ops_equals_standard_ops():
    """A whole model (convolutions with BN and bias, pooling) trains one optimizer step in train mode
    either way from the same weights: the same weights and BatchNorm statistics after it, to float32
    rounding; the fast kernels ran (counted); standard_ops switches every layer and restores them."""
    ms.set_seed(0)
    net = visionzoo.create_model("vgg11_bn_cifar", num_classes=10, drop_rate=0.0)
    fast_layers = [c for _, c in net.cells_and_names() if getattr(c, "fast", False)]
    assert len(fast_layers) == 8 + 5  # 8 convolutions, 5 pools
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32))
    y = Tensor(np.array([0, 3, 5, 9], np.int32))
    start = {p.name: p.asnumpy().copy() for p in net.get_parameters()}

    def one_step():
        for p in net.get_parameters():
            p.set_data(Tensor(start[p.name]))
        step = nn.TrainOneStepCell(
            nn.WithLossCell(net, nn.CrossEntropyLoss()), nn.SGD(net.trainable_params(), learning_rate=0.1)
        )
        step.set_train(True)
        loss = float(step(x, y).asnumpy())
        return loss, {p.name: p.asnumpy().copy() for p in net.get_parameters()}

    calls = []
    for layer in fast_layers:  # PyNative runs construct in Python: count the fast kernels' training calls
        kernel = layer._forward
        layer._forward = lambda *args, _k=kernel: calls.append(1) or _k(*args)
    loss_fast, w_fast = one_step()
    assert len(calls) == len(fast_layers)  # every layer's fast forward ran once, in training mode
    with standard_ops(net):
        assert not any(c.fast for c in fast_layers)
        loss_std, w_std = one_step()
    assert len(calls) == len(fast_layers)  # the standard run did not touch the fast kernels
    assert all(c.fast for c in fast_layers)
    assert loss_fast == pytest.approx(loss_std, rel=1e-5)
    moved = 0
    for name in start:
        _close(w_fast[name], w_std[name], name)
        moved += not np.array_equal(w_std[name], start[name])
    assert moved >= 8 + 3  # the step changed the weights (and the BatchNorm statistics)
    assert set_fast_ops(net, False) == 0


@pytest.mark.parametrize("setting,forced", [(None, -1), ("0", 0)], ids=["default", "off"])
def test_conv_tuning_switch_fixes_the_formulation(setting, forced):
    """VISIONZOO_CONV_TUNING=0 makes every geometry use the blocked formulation from the start (runs with
    the same seed then round identically); by default the kernel tunes (-1)."""
    import subprocess
    import sys

    from script_utils import script_env

    env = script_env()
    env.pop(runtime.CONV_TUNING_ENV, None)
    if setting is not None:
        env[runtime.CONV_TUNING_ENV] = setting
    code = (
        "import ctypes, visionzoo; from visionzoo.ops.conv import build_conv_kernels; "
        "print('FORCED', ctypes.CDLL(build_conv_kernels()).VzConvForceCandidate(-1))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"FORCED {forced}" in out.stdout.splitlines()


def test_graph_mode_runs_the_fast_kernel():
    """In graph mode construct is compiled, not run in Python: the kernel's own record proves it ran.
    A geometry no other test uses starts untuned (-1) and has a chosen formulation once the compiled
    cell has called the kernel."""
    lib = ctypes.CDLL(build_conv_kernels())
    conv = _fast_conv(in_channels=5, out_channels=7, kernel_size=3, stride=2, pad_mode="same")
    ref = nn.Conv2d(in_channels=5, out_channels=7, kernel_size=3, stride=2, pad_mode="same")
    ref.weight.set_data(conv.weight.data.copy())
    geometry = [
        np.array(v, dtype=d)
        for v, d in (
            ((3, 5, 11, 11), np.int64),
            ((7, 5, 3, 3), np.int64),
            ((3, 7, 6, 6), np.int64),
            ((2, 2, 1, 1, 1, 1), np.int32),
        )
    ]
    pointers = [g.ctypes.data_as(ctypes.c_void_p) for g in geometry]
    inference = 1
    assert lib.VzConvChosenCandidate(inference, *pointers) == -1
    ms.set_context(mode=ms.GRAPH_MODE)  # the autouse fixture restores PyNative afterwards
    conv.set_train(False)
    ref.set_train(False)
    x = Tensor(np.random.default_rng(5).standard_normal((3, 5, 11, 11)).astype(np.float32))
    want = ref(x).asnumpy()
    for _ in range(2):  # the first call tunes, the second runs the choice
        _close(conv(x).asnumpy(), want, "graph-mode output")
    assert lib.VzConvChosenCandidate(inference, *pointers) in (0, 1)  # timed: blocked or plain


def test_scratch_buffers_are_per_running_call_not_per_calling_thread():
    """MindSpore launches kernels from several threads; the kernel's scratch buffers are leased per call,
    so a new thread reuses the free sets instead of growing its own (the result stays right)."""
    import threading

    lib = ctypes.CDLL(build_conv_kernels())
    lib.VzConvScratchBytes.restype = ctypes.c_size_t
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    p = np.array([1, 1, 1, 1, 1, 1], np.int32)
    want = nn.Conv2d(16, 24, 3, pad_mode="same", weight_init=Tensor(w))(Tensor(x)).asnumpy()
    shapes = [np.array(s, np.int64) for s in (x.shape, w.shape, (6,), want.shape)]

    def run(out):
        y = np.zeros(want.shape, np.float32)
        params = (ctypes.c_void_p * 4)(*[a.ctypes.data for a in (x, w, p, y)])
        ndims = (ctypes.c_int * 4)(4, 4, 1, 4)
        shape_ptrs = (ctypes.POINTER(ctypes.c_int64) * 4)(
            *[s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) for s in shapes]
        )
        dtypes = (ctypes.c_char_p * 4)(b"float32", b"float32", b"int32", b"float32")
        out.append((lib.Conv2dInference(4, params, ndims, shape_ptrs, dtypes, None, None), y))

    results = []
    with forced_candidate(0):  # one formulation: a tuning run's split ones lease more sets
        run(results)
    sets = ctypes.c_int(0)
    lib.VzConvScratchBytes(ctypes.byref(sets))
    before = sets.value
    with forced_candidate(0):
        for _ in range(4):  # four new threads, one after another
            t = threading.Thread(target=run, args=(results,))
            t.start()
            t.join()
    lib.VzConvScratchBytes(ctypes.byref(sets))
    assert sets.value == before >= 1
    for status, y in results:
        assert status == 0
        _close(y, want, "output from another thread")
