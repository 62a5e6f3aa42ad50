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
    on = build_optimizer(load_config(None, {"weight_decay": "0.01", "weight_decay_filter": "norm_and_bias"}), Tiny(), lr)
    off = build_optimizer(load_config(None, {"weight_decay": "0.01", "weight_decay_filter": "disable"}), Tiny(), lr)
    decays = {p.name: d for p, d in zip(on.parameters, on.decay_flags)}
    assert decays == {"conv.weight": True, "conv.bias": False, "bn.gamma": False, "bn.beta": False,
                      "bias_bn_proj.weight": True}
    assert all(off.decay_flags)  # 'disable' decays every parameter, BatchNorm included


def test_optimizer_kinds():
    lr = np.full(10, 0.1, np.float32)
    for name, cls in (("momentum", nn.Momentum), ("nesterov", nn.Momentum), ("sgd", nn.SGD),
                      ("adamw", nn.AdamWeightDecay), ("adam", nn.Adam)):
        opt = build_optimizer(load_config(None, {"opt": name}), Tiny(), lr)
        assert isinstance(opt, cls)
    assert build_optimizer(load_config(None, {"opt": "nesterov"}), Tiny(), lr).use_nesterov
