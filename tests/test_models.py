"""Every registered model: builds, right shapes, right parameter count, metadata that matches the
model, a fresh head for another class count, and one SGD step that lowers the loss.

One model instance per name is shared by the tests of this module (VGG takes seconds to build);
pytest runs all tests of one parameter before building the next.
"""

import gc
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import visionzoo
from visionzoo import create_model, get_model_info, list_models
from visionzoo.config import load_yaml

# Published trainable-parameter counts at 1000 classes (MindCV README; torchvision's model docs).
PUBLISHED = {
    "googlenet": 6_991_272,  # MindCV
    "vgg16": 138_353_320,  # MindCV
    "googlenet_bn": 6_624_904,  # torchvision googlenet without aux heads
}
BUILTIN = {"googlenet", "googlenet_bn", "googlenet_cifar"} | {
    f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn", "_bn_cifar")
}
# Feature map of forward_features at the default input size.
FEATURE_SHAPES = {"googlenet": (1024, 7, 7), "googlenet_bn": (1024, 7, 7), "googlenet_cifar": (1024, 8, 8)}


def _feature_shape(name):
    if name in FEATURE_SHAPES:
        return FEATURE_SHAPES[name]
    return (512, 1, 1) if name.endswith("_cifar") else (512, 7, 7)


def _num_params(model):
    return sum(int(np.prod(p.shape)) for p in model.trainable_params())


def _batch(info, n, seed=0):
    rng = np.random.default_rng(seed)
    return ms.Tensor(rng.standard_normal((n, *info.input_size)).astype(np.float32))


def test_registry_lists_every_builtin_model():
    assert BUILTIN <= set(list_models())


@pytest.fixture(scope="module", params=sorted(BUILTIN))
def built(request):
    name = request.param
    # drop_rate 0: the training-mode forward of the loss test is deterministic
    yield name, create_model(name, drop_rate=0.0)
    gc.collect()  # free this model before the next one is built (VGG: 0.5 GB of weights + gradients)


def test_forward_shapes(built):
    name, model = built
    info = get_model_info(name)
    if name.endswith("_cifar"):
        assert info.input_size == (3, 32, 32)
    model.set_train(False)
    features = model.forward_features(_batch(info, 1))
    assert features.shape == (1, *_feature_shape(name))
    assert model.forward_head(features).shape == (1, 1000)
    assert model.forward_head(features, pre_logits=True).shape == (1, info.num_features)


def test_num_params_match_spec_and_published(built):
    name, model = built
    count = _num_params(model)
    assert count == get_model_info(name).num_params
    if name in PUBLISHED:
        assert count == PUBLISHED[name]


def test_metadata_schema(built):
    """ModelInfo agrees with the built model: first conv, classifier, input size, norm constants, recipes."""
    name, model = built
    info = get_model_info(name)
    params = {p.name: p for p in model.get_parameters()}
    first = params[info.first_conv + ".weight"]
    assert first.shape[1] == info.input_size[0] == 3
    head = params[info.classifier + ".weight"]
    assert tuple(head.shape) == (1000, info.num_features)
    assert info.classifier + ".bias" in params
    assert len(info.mean) == len(info.std) == 3 and all(1.0 < v < 255.0 for v in info.mean + info.std)
    assert info.flavour and info.source
    assert isinstance(info.pretrained, tuple)
    for recipe in info.recipes:
        assert recipe in visionzoo.list_recipes()
        assert (
            load_yaml(str(Path(recipe) if Path(recipe).exists() else Path(__file__).parents[1] / recipe))["model"]
            == name
        )


def test_reset_classifier_then_train_step_lowers_loss(built):
    name, model = built
    info = get_model_info(name)
    model.reset_classifier(10)
    assert _num_params(model) == info.num_params_at(10)
    # parameter names stay the attribute paths (checkpoints rely on them)
    assert [p.name for p in model.get_parameters()] == [n for n, _ in model.parameters_and_names()]
    x, y = _batch(info, 2, seed=1), ms.Tensor(np.array([1, 3], np.int32))
    loss_fn = nn.CrossEntropyLoss()
    params = model.trainable_params()

    def forward(x, y):
        return loss_fn(model(x), y)

    model.set_train(True)
    before, grads = ms.value_and_grad(forward, None, params)(x, y)
    # plain SGD by hand: nn.SGD keeps its state alive after the test in PyNative mode (~2 GB per VGG)
    for param, grad in zip(params, grads):
        ms.ops.assign_sub(param, grad * 1e-3)
    after = forward(x, y)
    assert np.isfinite(before.asnumpy()) and float(after) < float(before)


def test_googlenet_aux_heads():
    model = create_model("googlenet", num_classes=5, aux_logits=True)
    # MindCV's googlenet(aux_logits=True) has 13,370,744 at 1000 classes; three heads shrink to 5 classes
    assert _num_params(model) == 13_370_744 - 3 * (1000 - 5) * (1024 + 1)
    x = _batch(get_model_info("googlenet"), 1)
    model.set_train(True)
    out = model(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(1, 5)] * 3
    model.set_train(False)
    assert model(x).shape == (1, 5)


def test_vgg16_bn_with_conv_bias_matches_torchvision_count():
    # torchvision's vgg16_bn has conv biases; MindCV's (our default) has none
    assert _num_params(create_model("vgg16_bn", has_bias=True)) == 138_365_992


@pytest.mark.parametrize("depth", ["vgg11", "vgg19"])
def test_vgg_bn_trunk_has_mindcv_names_and_shapes(depth):
    """vgg*_bn's conv trunk equals MindCV's ``batch_norm=True`` one, name for name (cheap: no head)."""
    from mindcv.models.vgg import _make_layers, cfgs

    from visionzoo.models.vgg import _make_features

    ours = _make_features(cfgs[depth], 3, True, "pad", False, "KaimingNormal")
    theirs = _make_layers(cfgs[depth], batch_norm=True, in_channels=3)
    assert [(p.name, p.shape) for p in ours.get_parameters()] == [(p.name, p.shape) for p in theirs.get_parameters()]


def test_model_options_are_checked():
    from visionzoo import ModelError

    with pytest.raises(ModelError, match="pad_mode"):
        create_model("vgg11_bn_cifar", pad_mode="valid")
    with pytest.raises(ModelError, match="init_mode.?'Zeros'"):
        create_model("vgg11_bn_cifar", initialize_mode="Zeros")  # model_zoo's spelling, an alias
    with pytest.raises(ModelError, match="init_mode.?'Zeros'"):
        create_model("vgg11_bn_cifar", init_mode="Zeros")
    with pytest.raises(ModelError, match="aux_logits"):
        create_model("googlenet_cifar", aux_logits=True)


def test_vgg_pad_modes_and_init_modes_give_same_shapes():
    """model_zoo's CIFAR options (pad 'same', XavierUniform, no dropout) build a working network."""
    info = get_model_info("vgg11_bn_cifar")
    x = _batch(info, 1)
    for options in (
        dict(pad_mode="same", initialize_mode="XavierUniform", has_dropout=False, has_bias=True),
        dict(pad_mode="pad", initialize_mode="KaimingNormal"),
    ):
        model = create_model("vgg11_bn_cifar", num_classes=10, **options)
        model.set_train(False)
        assert model(x).shape == (1, 10)


def test_vgg_without_dropout_refuses_a_drop_rate():
    """has_dropout=False builds no dropout: a drop_rate above 0 is refused, not ignored; 0 and the
    default are accepted."""
    from visionzoo import ModelError

    def dropouts(**options):
        model = create_model("vgg11", num_classes=10, head="cifar", **options)
        return [c for _, c in model.cells_and_names() if "Dropout" in type(c).__name__]

    with pytest.raises(ModelError, match=r"has_dropout=False with drop_rate=0.3"):
        create_model("vgg11", num_classes=10, head="cifar", has_dropout=False, drop_rate=0.3)
    assert dropouts() and dropouts(drop_rate=0.3)  # the default (0.5) and a given rate drop
    assert not dropouts(has_dropout=False) and not dropouts(has_dropout=False, drop_rate=0.0)


@pytest.mark.parametrize(
    "name, options, train", [("googlenet", {"aux_logits": True}, True), ("vgg11_bn_cifar", {}, False)]
)
def test_graph_mode_compiles(name, options, train):
    """Recipes default to graph mode (mode 0): the construct code must compile, aux branch included."""
    model = create_model(name, num_classes=4, **options)
    model.set_train(train)
    x = _batch(get_model_info(name), 1)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        out = model(x)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    shapes = [o.shape for o in out] if isinstance(out, tuple) else [out.shape]
    assert shapes == ([(1, 4)] * 3 if options.get("aux_logits") else [(1, 4)])
