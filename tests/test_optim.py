"""Optimizer construction: weight decay by parameter role."""

import numpy as np
from mindspore import nn

from visionzoo.config import load_config
from visionzoo.engine.optim import build_optimizer, split_decay_params


class Tiny(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, has_bias=True)
        self.bn = nn.BatchNorm2d(4)
        # a weight whose name contains "bias" and "bn": decided by role, not by name
        self.bias_bn_proj = nn.Dense(4, 2, has_bias=False)

    def construct(self, x):
        return self.bias_bn_proj(self.bn(self.conv(x)).mean((2, 3)))


def test_split_by_role():
    net = Tiny()
    decay, no_decay = split_decay_params(net)
    assert {p.name for p in decay} == {"conv.weight", "bias_bn_proj.weight"}
    assert {p.name for p in no_decay} == {"conv.bias", "bn.gamma", "bn.beta"}


def test_filter_switch():
    lr = np.full(10, 0.1, np.float32)
    on = build_optimizer(
        load_config(None, {"weight_decay": "0.01", "weight_decay_filter": "norm_and_bias"}), Tiny(), lr
    )
    off = build_optimizer(load_config(None, {"weight_decay": "0.01", "weight_decay_filter": "disable"}), Tiny(), lr)
    decays = {p.name: d for p, d in zip(on.parameters, on.decay_flags)}
    assert decays == {
        "conv.weight": True,
        "conv.bias": False,
        "bn.gamma": False,
        "bn.beta": False,
        "bias_bn_proj.weight": True,
    }
    assert all(off.decay_flags)  # 'disable' decays every parameter, BatchNorm included


def test_optimizer_kinds():
    lr = np.full(10, 0.1, np.float32)
    for name, cls in (
        ("momentum", nn.Momentum),
        ("nesterov", nn.Momentum),
        ("sgd", nn.SGD),
        ("adamw", nn.AdamWeightDecay),
        ("adam", nn.Adam),
    ):
        opt = build_optimizer(load_config(None, {"opt": name}), Tiny(), lr)
        assert isinstance(opt, cls)
    assert build_optimizer(load_config(None, {"opt": "nesterov"}), Tiny(), lr).use_nesterov


# --- backbone_lr_scale: the backbone at a fraction of the schedule's lr --------------------------


class TinyWithHead(Tiny):
    """Tiny with a named head, as the models name theirs (``classifier_names``)."""

    classifier_names = ("bias_bn_proj",)


LR_TABLE = np.linspace(0.1, 0.01, 6).astype(np.float32)


def _scaled_cfg(scale, **extra):
    return load_config(
        None, {"backbone_lr_scale": scale, "weight_decay": 0.01, "weight_decay_filter": "norm_and_bias", **extra}
    )


def _lr_of(opt, param):
    return opt.get_lr_parameter(param).asnumpy()


def test_backbone_lr_scale_groups_carry_the_scaled_table_and_keep_the_decay_split():
    net = TinyWithHead()
    opt = build_optimizer(_scaled_cfg(0.25), net, LR_TABLE)
    plain = build_optimizer(_scaled_cfg(1.0), net, LR_TABLE)
    backbone = {"conv.weight", "conv.bias", "bn.gamma", "bn.beta"}
    for p in net.trainable_params():
        want = LR_TABLE * np.float32(0.25) if p.name in backbone else LR_TABLE
        assert np.array_equal(_lr_of(opt, p), want), p.name
        assert np.array_equal(_lr_of(plain, p), LR_TABLE), p.name
    # the weight-decay split is the same with and without the scale
    assert (
        {p.name: d for p, d in zip(opt.parameters, opt.decay_flags)}
        == {p.name: d for p, d in zip(plain.parameters, plain.decay_flags)}
        == {"conv.weight": True, "conv.bias": False, "bn.gamma": False, "bn.beta": False, "bias_bn_proj.weight": True}
    )
    assert [p.name for p in opt.parameters] == [p.name for p in net.trainable_params()]  # order kept


def test_backbone_lr_scale_moves_the_backbone_by_exactly_scale_times_one_step():
    import mindspore as ms

    x = ms.Tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32))
    y = ms.Tensor(np.array([0, 1, 1, 0], np.int32))
    ms.set_seed(0)
    start = {p.name: p.asnumpy().copy() for p in TinyWithHead().get_parameters()}
    moved = {}
    for scale in (1.0, 0.1):
        net = TinyWithHead()
        ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in start.items()})
        opt = build_optimizer(_scaled_cfg(scale, opt="momentum", momentum=0.9), net, LR_TABLE)
        step = nn.TrainOneStepCell(
            nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")), opt
        )
        step.set_train(True)
        step(x, y)
        moved[scale] = {p.name: p.asnumpy() - start[p.name] for p in net.trainable_params()}
    for name, full in moved[1.0].items():
        assert np.abs(full).max() > 0, name  # every parameter moved (a real step)
        want = full if name.startswith("bias_bn_proj") else np.float32(0.1) * full
        # exact up to the float32 rounding of the stored parameter (new = old - lr * g is rounded at old's scale)
        ulp = float(np.spacing(np.abs(start[name]).max().astype(np.float32)))
        np.testing.assert_allclose(moved[0.1][name], want, rtol=1e-5, atol=2 * ulp, err_msg=name)
        if not name.startswith("bias_bn_proj"):
            assert np.abs(moved[0.1][name]).max() < 0.2 * np.abs(full).max()  # far from an unscaled move


def test_backbone_lr_scale_on_the_models_and_through_amp():
    import mindspore as ms

    from visionzoo import create_model
    from visionzoo.engine.optim import head_prefixes

    assert head_prefixes(ms.amp.auto_mixed_precision(TinyWithHead(), "O2")) == ("bias_bn_proj",)
    net = create_model("googlenet_bn", num_classes=4)
    opt = build_optimizer(_scaled_cfg(0.1), net, LR_TABLE)
    at_full = {p.name for p in net.trainable_params() if np.array_equal(_lr_of(opt, p), LR_TABLE)}
    assert at_full == {"classifier.weight", "classifier.bias"}  # the head a new num_classes replaces


def test_a_training_checkpoint_with_per_group_lr_tables_loads_as_weights(tmp_path):
    from visionzoo.checkpoint import load_checkpoint, save_checkpoint

    net = TinyWithHead()
    opt = build_optimizer(_scaled_cfg(0.1), net, LR_TABLE)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True)), opt)
    save_checkpoint(step, str(tmp_path / "train.ckpt"))
    report = load_checkpoint(TinyWithHead(), str(tmp_path / "train.ckpt"))
    assert report.ok and "learning_rate_group_0" in report.stripped  # the backbone's table: training state
    assert set(report.loaded) == {p.name for p in net.get_parameters()}


def test_backbone_lr_scale_out_of_range_or_without_a_head_is_refused():
    import pytest

    from visionzoo.errors import ConfigError

    for bad in (0, -0.5, 1.5):
        with pytest.raises(ConfigError) as err:
            load_config(None, {"backbone_lr_scale": bad})
        assert "backbone_lr_scale" in str(err.value) and "(0, 1]" in str(err.value)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="backbone_lr_scale.*names none"):
        build_optimizer(_scaled_cfg(0.5), Tiny(), LR_TABLE)  # no classifier_names: no head to tell apart
    assert build_optimizer(_scaled_cfg(1.0), Tiny(), LR_TABLE) is not None  # 1: no head needed
