"""Eval-mode fusion of Conv2d -> BatchNorm2d -> ReLU (issue #14): the fused kernel call equals the
layers run one by one, in graph and PyNative mode, for the models that use it; parameters, checkpoints,
gradients and exports are unchanged."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

import visionzoo
from op_utils import candidate_runs, forced_candidate
from visionzoo import runtime
from visionzoo.ops import Conv2d, set_eval_fusion, standard_ops

pytestmark = pytest.mark.cpu_only("the fused call is visionzoo's CPU aot Custom op")


def _randomise_batch_norms(net, seed=0):
    """Non-trivial statistics, affine parameters and conv biases, so that folding them is exercised."""
    rng = np.random.default_rng(seed)
    for _, cell in net.cells_and_names():
        if isinstance(cell, Conv2d) and cell.has_bias:
            cell.bias.set_data(Tensor(rng.normal(0, 0.2, cell.out_channels).astype(np.float32)))
        if isinstance(cell, nn.BatchNorm2d):
            n = cell.num_features
            cell.gamma.set_data(Tensor(rng.uniform(0.5, 1.5, n).astype(np.float32)))
            cell.beta.set_data(Tensor(rng.normal(0, 0.2, n).astype(np.float32)))
            cell.moving_mean.set_data(Tensor(rng.normal(0, 0.3, n).astype(np.float32)))
            cell.moving_variance.set_data(Tensor(rng.uniform(0.2, 2.0, n).astype(np.float32)))


def _fast_model(name, **kwargs):
    """The model with the fast path and the fusion on (the fusion is off by default for networks built in
    PyNative mode, the mode most tests run in)."""
    runtime.use_fast_conv(True)
    try:
        net = visionzoo.create_model(name, **kwargs)
    finally:
        runtime.use_fast_conv(None)
    set_eval_fusion(net, True)
    for _, cell in net.cells_and_names():
        if isinstance(cell, Conv2d):
            cell.fuse_min_elements = 0  # the tests' small inputs: fuse every layer
    return net


def _fused_calls(net):
    """How many Conv2d layers take the fused call on a 4-D float32 input in eval mode."""
    x = Tensor(np.zeros((1, 1, 4, 4), np.float32))
    return sum(cell.can_fuse(x) for _, cell in net.cells_and_names() if isinstance(cell, Conv2d))


@pytest.mark.parametrize(
    "name, kwargs, size",
    [
        ("vgg11_bn_cifar", {}, 32),
        ("vgg11", {"head": "cifar", "has_bias": True}, 32),  # conv bias, no BatchNorm: bias + ReLU post-op
        ("googlenet_bn", {"aux_logits": False}, 64),
        ("googlenet", {}, 64),  # MindCV's GoogLeNet: no BatchNorm
    ],
)
def test_fused_eval_equals_the_layers_one_by_one(mode, name, kwargs, size):
    net = _fast_model(name, num_classes=10, **kwargs)
    _randomise_batch_norms(net)
    net.set_train(False)
    assert _fused_calls(net) > 0
    x = Tensor(np.random.default_rng(1).normal(0, 1, (2, 3, size, size)).astype(np.float32))
    fused = net(x).asnumpy()
    assert set_eval_fusion(net, False) == 0
    unfused = net(x).asnumpy()
    scale = float(np.abs(unfused).max())
    assert scale > 0
    np.testing.assert_allclose(fused, unfused, rtol=0, atol=1e-5 * scale)
    assert not np.array_equal(fused, np.zeros_like(fused))


@pytest.mark.parametrize("candidate", [0, 2, 4, 5], ids=["blocked", "blocked-split", "inference-kind", "winograd"])
def test_each_fused_formulation_equals_the_layers_one_by_one(candidate):
    """The fused call's formulations (forward_training primitives, blocked, whole batch or split, oneDNN's
    forward_inference choice, and Winograd with the bias and ReLU in its output transform) each equal the
    layers run one by one."""
    net = _fast_model("vgg11_bn_cifar", num_classes=10)
    _randomise_batch_norms(net, seed=2)
    net.set_train(False)
    x = Tensor(np.random.default_rng(3).normal(0, 1, (4, 3, 32, 32)).astype(np.float32))
    assert set_eval_fusion(net, False) == 0
    unfused = net(x).asnumpy()
    assert set_eval_fusion(net, True) > 0
    runs = candidate_runs(candidate)
    with forced_candidate(candidate):
        fused = net(x).asnumpy()
    assert candidate_runs(candidate) >= runs + 8  # each of the 8 convolutions (all 3x3 stride 1) ran it
    scale = float(np.abs(unfused).max())
    assert scale > 0
    np.testing.assert_allclose(fused, unfused, rtol=0, atol=1e-5 * scale)


def test_fusion_changes_no_parameter_name_and_training_is_unfused():
    plain = _fast_model("vgg11_bn_cifar", num_classes=10)
    names = [p.name for p in plain.get_parameters()]
    assert "features.1.gamma" in names and "features.0.weight" in names
    plan = plain.features.fusion_units
    assert plan[0] == (0, 1, 2) and plan[1] == (3,)  # conv-bn-relu, then the first max pool
    # training mode runs the layers one by one (BatchNorm on batch statistics cannot be folded)
    plain.set_train(True)
    x = Tensor(np.zeros((1, 3, 32, 32), np.float32))
    bn = plain.features[1]
    assert not plain.features[0].can_fuse(x, bn)
    plain.set_train(False)
    assert plain.features[0].can_fuse(x, bn)
    bn.use_batch_statistics = True  # a BatchNorm told to use batch statistics is never folded
    assert not plain.features[0].can_fuse(x, bn)


def test_a_replaced_layer_changes_the_plan():
    net = _fast_model("vgg11_bn_cifar", num_classes=10)
    net.features[2] = nn.LeakyReLU(0.2)  # not a ReLU: the conv+bn fuse, the LeakyReLU runs on its own
    plan = net.features.fusion_units
    assert plan[0] == (0, 1, -1) and plan[1] == (2,)
    _randomise_batch_norms(net)
    net.set_train(False)
    x = Tensor(np.random.default_rng(2).normal(0, 1, (2, 3, 32, 32)).astype(np.float32))
    fused = net(x).asnumpy()
    set_eval_fusion(net, False)
    np.testing.assert_allclose(fused, net(x).asnumpy(), rtol=0, atol=1e-5 * float(np.abs(fused).max()))


def test_input_gradient_through_the_fused_eval_path():
    """Perceptual losses differentiate a VGG in eval mode with respect to its input."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = _fast_model("vgg11_bn_cifar", num_classes=10)
    _randomise_batch_norms(net)
    net.set_train(False)
    x = Tensor(np.random.default_rng(3).normal(0, 1, (2, 3, 32, 32)).astype(np.float32))
    weights = Tensor(np.random.default_rng(4).normal(0, 1, (2, 10)).astype(np.float32))

    def loss(inp):
        return (net(inp) * weights).sum()

    fused = ms.grad(loss)(x).asnumpy()
    set_eval_fusion(net, False)
    unfused = ms.grad(loss)(x).asnumpy()
    # 8 layers of backward kernels whose formulations the tuning may pick differently: float32 rounding
    np.testing.assert_allclose(fused, unfused, rtol=0, atol=1e-4 * float(np.abs(unfused).max()))


def test_standard_ops_switch_off_the_fused_call():
    net = _fast_model("vgg11_bn_cifar", num_classes=10)
    net.set_train(False)
    assert _fused_calls(net) == 8
    with standard_ops(net):  # exports: the standard graph, no Custom op
        assert _fused_calls(net) == 0
    assert _fused_calls(net) == 8


def test_a_slice_ending_at_a_convolution_returns_the_convolution():
    """Perceptual losses take VGG features before an activation (a slice ending at a conv)."""
    net = _fast_model("vgg11_bn_cifar", num_classes=10)
    _randomise_batch_norms(net)
    net.set_train(False)
    head = net.features[:4]  # conv bn relu pool: fused
    cut = net.features[:5]  # ... then the second conv alone (its bn is not in the slice)
    assert type(cut).__name__ == "FusedSequential" and cut.fusion_units == ((0, 1, 2), (3,), (4,))
    x = Tensor(np.random.default_rng(5).normal(0, 1, (2, 3, 32, 32)).astype(np.float32))
    got = cut(x).asnumpy()
    want = net.features[4](head(x)).asnumpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))  # tuning: rounding
    assert (got < 0).any()  # no BatchNorm or ReLU applied after the last convolution


def test_fusion_is_on_for_networks_built_in_graph_mode_and_off_in_pynative():
    old = ms.get_context("mode")
    try:
        for mode, expected in ((ms.GRAPH_MODE, 8), (ms.PYNATIVE_MODE, 0)):
            ms.set_context(mode=mode)
            runtime.use_fast_conv(True)
            try:
                net = visionzoo.create_model("vgg11_bn_cifar", num_classes=10)
            finally:
                runtime.use_fast_conv(None)
            net.set_train(False)
            big = Tensor(np.zeros((128, 64, 32, 32), np.float32))  # an output of 2**23 elements
            assert sum(c.can_fuse(big) for _, c in net.cells_and_names() if isinstance(c, Conv2d)) == expected
    finally:
        ms.set_context(mode=old)


def test_small_outputs_are_not_fused():
    """The folding's small ops cost about the same per layer at any batch: below fuse_min_elements output
    elements the layers run one by one."""
    runtime.use_fast_conv(True)
    try:
        conv = Conv2d(64, 64, 3, pad_mode="same")
    finally:
        runtime.use_fast_conv(None)
    conv.set_train(False)
    conv.fuse_eval = True
    assert conv.fuse_min_elements == 1 << 18
    assert not conv.can_fuse(Tensor(np.zeros((8, 64, 8, 8), np.float32)))  # 32,768 output elements
    assert conv.can_fuse(Tensor(np.zeros((64, 64, 8, 8), np.float32)))  # 262,144
