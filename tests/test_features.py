"""features_only / out_indices / feature_info / forward_intermediates: shapes, and equality with the
corresponding slices of the full model's forward pass (same weights, up to float32 rounding)."""

import mindspore as ms
import numpy as np
import pytest

from visionzoo import ModelError, create_model
from visionzoo.checkpoint import load_checkpoint


def _x(size, seed=0):
    return ms.Tensor(np.random.default_rng(seed).standard_normal((2, 3, size, size)).astype(np.float32))


def _same(a, b):
    """Equal up to float32 rounding (the fast convolution may pick another summation order per call)."""
    a, b = a.asnumpy(), b.asnumpy()
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1e-5 * max(float(np.abs(b).max()), 1e-6)


def _weights(model):
    return {p.name: p for p in model.get_parameters()}


@pytest.mark.parametrize(
    "name, size, channels, reductions",
    [
        ("googlenet", 64, [192, 480, 832, 1024], [4, 8, 16, 32]),
        ("googlenet_cifar", 32, [192, 480, 832, 1024], [1, 1, 2, 4]),
        ("vgg11_bn_cifar", 32, [64, 128, 256, 512, 512], [2, 4, 8, 16, 32]),
    ],
)
def test_features_only_shapes_and_equality_with_the_full_forward(name, size, channels, reductions):
    full = create_model(name, num_classes=10)
    full.set_train(False)
    assert [f["num_chs"] for f in full.feature_info] == channels
    assert [f["reduction"] for f in full.feature_info] == reductions
    x = _x(size)
    final, maps = full.forward_intermediates(x)
    for m, c, r in zip(maps, channels, reductions):
        assert m.shape == (2, c, size // r, size // r)
    _same(final, full.forward_features(x))
    _same(maps[-1], full.forward_features(x))

    picked = (1, len(channels) - 1)
    trunk = create_model(name, features_only=True, out_indices=picked)
    report = load_checkpoint(trunk, _weights(full))  # the full model's weights, head ignored
    assert report.ok and not report.dropped_classifier
    trunk.set_train(False)
    assert [f["stage"] for f in trunk.feature_info] == list(picked)
    out = trunk(x)
    assert isinstance(out, tuple) and len(out) == 2
    for got, k in zip(out, picked):
        _same(got, maps[k])
    assert full.forward_intermediates(x, indices=[-1], intermediates_only=True)[0].shape == maps[-1].shape


def test_vgg_stage_maps_are_the_outputs_of_its_pools():
    model = create_model("vgg11_bn_cifar", num_classes=10)
    model.set_train(False)
    x = _x(32, seed=1)
    maps = model.forward_intermediates(x, intermediates_only=True)
    y, k = x, 0
    for i in range(len(model.features)):  # the sequential trunk, run layer by layer
        y = model.features[i](y)
        if model.feature_info[k]["module"] == f"features.{i}":
            _same(maps[k], y)
            k += 1
    assert k == 5


def test_features_only_vgg_builds_only_the_stages_it_returns():
    trunk = create_model("vgg16", features_only=True, out_indices=(0, 1))  # no 102M-parameter head
    names = [p.name for p in trunk.get_parameters()]
    assert names == ["features.0.weight", "features.2.weight", "features.5.weight", "features.7.weight"]
    assert trunk.num_features == 128 and [o.shape[1] for o in trunk(_x(32))] == [64, 128]


def test_out_indices_out_of_range_is_an_error_naming_the_stages():
    with pytest.raises(ModelError, match=r"out_indices \(5,\) must name stages 0..4"):
        create_model("vgg11_bn_cifar", features_only=True, out_indices=(5,))
    with pytest.raises(ModelError, match="features_only builds no heads"):
        create_model("googlenet", features_only=True, aux_logits=True)
