"""Building blocks shared by every visionzoo model (each block is defined here once).

Attribute names follow MindCV (``conv``/``bn``/``relu``, ``b1``..``b4``, ``fc1``/``fc2``) so that the
parameter names, and therefore MindCV checkpoints, match.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple, Union

from mindspore import Tensor, nn, ops
from mindspore.common import initializer as init
from mindspore.common.seed import _get_graph_seed

from ..errors import ModelError
from ..ops import Conv2d, MaxPool2d

__all__ = [
    "ConvNormAct",
    "Inception",
    "InceptionAux",
    "GlobalAvgPool",
    "Dropout",
    "make_dropout",
    "conv_initializer",
    "dense_initializer",
    "dense",
    "sync_parameter_names",
    "check_out_indices",
    "freeze_all_but",
    "under_prefixes",
    "INIT_MODES",
]

Init = Union[str, init.Initializer, None]

#: Weight-initialisation schemes, by name. Each gives (conv weight, dense weight); biases start at 0.
#: ``mindcv_googlenet``: MindCV's GoogLeNet (He normal fan-in for convs, He uniform a=sqrt(5) for dense).
#: ``KaimingNormal``: MindCV VGG / model_zoo ``initialize_mode KaimingNormal`` (He normal fan-out, relu;
#: Normal(0.01) for dense). ``XavierUniform``: model_zoo's other mode (Xavier uniform convs, MindSpore's
#: default dense init). ``TruncatedNormal``: model_zoo GoogLeNet (truncated normal, sigma 0.02).
INIT_MODES = ("mindcv_googlenet", "KaimingNormal", "XavierUniform", "TruncatedNormal")


def conv_initializer(mode: str) -> init.Initializer:
    if mode == "mindcv_googlenet":
        return init.HeNormal(0, mode="fan_in", nonlinearity="leaky_relu")
    if mode == "KaimingNormal":
        return init.HeNormal(math.sqrt(5), mode="fan_out", nonlinearity="relu")
    if mode == "XavierUniform":
        return init.XavierUniform()
    if mode == "TruncatedNormal":
        return init.TruncatedNormal(0.02)
    raise ModelError(f"init_mode {mode!r} is not one of {', '.join(INIT_MODES)}")


def dense_initializer(mode: str) -> Init:
    if mode == "mindcv_googlenet":
        return init.HeUniform(math.sqrt(5), mode="fan_in", nonlinearity="leaky_relu")
    if mode == "KaimingNormal":
        return init.Normal(0.01)
    if mode == "XavierUniform":
        return None  # MindSpore's default Dense initialisation, as model_zoo leaves it
    if mode == "TruncatedNormal":
        return init.TruncatedNormal(0.02)
    raise ModelError(f"init_mode {mode!r} is not one of {', '.join(INIT_MODES)}")


def dense(in_features: int, out_features: int, mode: str) -> nn.Dense:
    """``nn.Dense`` initialised by scheme ``mode`` (zero bias except for MindSpore's default scheme)."""
    weight = dense_initializer(mode)
    if weight is None:
        return nn.Dense(in_features, out_features)
    return nn.Dense(in_features, out_features, weight_init=weight, bias_init="zeros")


def sync_parameter_names(model: nn.Cell) -> None:
    """Rename parameters to their attribute paths (MindSpore names a cell assigned into an already
    attached child by its own attribute only, e.g. ``fc2.weight`` instead of ``aux1.fc2.weight``)."""
    for path, param in model.parameters_and_names():
        if param.name != path:
            param.name = path


def check_out_indices(indices: Sequence[int], n: int) -> Tuple[int, ...]:
    """Stage indices as a sorted tuple (negative ones count from the end), each in ``0..n-1``."""
    if isinstance(indices, int):
        indices = (indices,)
    out = sorted({int(i) % n if -n <= int(i) < n else int(i) for i in indices})
    if not out or out[0] < 0 or out[-1] >= n:
        raise ModelError(
            f"out_indices {tuple(indices)} must name stages 0..{n - 1}", hint=f"e.g. out_indices=(0, {n - 1})"
        )
    return tuple(out)


def under_prefixes(name: str, prefixes: Sequence[str]) -> bool:
    """True when parameter ``name`` lies under one of the dotted ``prefixes`` (``classifier`` holds
    ``classifier.weight``, not ``classifier2.weight``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_all_but(model: nn.Cell, prefixes: Sequence[str]) -> None:
    """Set ``requires_grad=False`` on every parameter not under one of ``prefixes`` (the head)."""
    for path, param in model.parameters_and_names():
        if not under_prefixes(path, prefixes):
            param.requires_grad = False


class Dropout(nn.Cell):
    """Inverted dropout (as :class:`mindspore.nn.Dropout`: in training, each element is zeroed with
    probability ``p`` and the rest scaled by ``1 / (1 - p)``; the identity in eval mode) whose masks are
    reproducible: the same seed gives the same masks in every run.

    ``nn.Dropout``'s CPU kernel does not: with the same ``mindspore.set_seed``, its masks differ from
    run to run, most often when other work competes for the cores (measured on MindSpore 2.10 with
    benchmarks/dropout_under_load.py: 30 masks of one ``nn.Dropout`` in graph mode hashed 2 ways in 3
    quiet runs and 3 ways in 3 loaded ones, and every training run with the fast convolution differed
    from the next; ``UniformReal`` with the same seeds gave one hash in all six). Here the mask comes
    from ``UniformReal``, seeded like ``nn.Dropout`` from the global and per-op seeds, so
    ``mindspore.set_seed`` governs it the same way.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 < p < 1.0:
            raise ModelError(f"drop rate must be in (0, 1), got {p}")
        self.p = float(p)
        seed0, seed1 = _get_graph_seed(0, "dropout")
        self.uniform = ops.UniformReal(seed=seed0, seed2=seed1)
        self.keep_prob = 1.0 - self.p
        self.scale = 1.0 / self.keep_prob

    def construct(self, x):
        if not self.training:
            return x
        keep = ops.cast(self.uniform(x.shape) < self.keep_prob, x.dtype)
        return x * keep * ops.cast(self.scale, x.dtype)

    def extend_repr(self):
        return f"p={self.p}"


def make_dropout(p: float) -> nn.Cell:
    """Dropout with drop probability ``p`` (:class:`Dropout`); an identity when ``p`` is 0 (no random op
    at all)."""
    if not 0.0 <= p < 1.0:
        raise ModelError(f"drop rate must be in [0, 1), got {p}")
    return Dropout(p) if p > 0 else nn.Identity()


class ConvNormAct(nn.Cell):
    """Conv2d (no bias by default) -> optional BatchNorm -> ReLU; parameters ``conv.*`` and ``bn.*``. In eval
    mode the three run as one fast kernel call where they can (:meth:`visionzoo.ops.Conv2d.fused`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        pad_mode: str = "same",
        norm: bool = False,
        eps: float = 1e-5,
        has_bias: bool = False,
        init_mode: str = "mindcv_googlenet",
    ) -> None:
        super().__init__()
        self.conv = Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            pad_mode=pad_mode,
            padding=padding,
            has_bias=has_bias,
            weight_init=conv_initializer(init_mode),
            bias_init="zeros" if has_bias else None,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=eps) if norm else nn.Identity()
        self.relu = nn.ReLU()
        self.norm = norm

    def construct(self, x: Tensor) -> Tensor:
        bn = self.bn if self.norm else None
        if self.conv.can_fuse(x, bn):  # eval mode: one kernel call (visionzoo.ops.Conv2d.fused)
            return self.conv.fused(x, bn, True)
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Cell):
    """Inception v1 module: 1x1 | 1x1->3x3 | 1x1->"5x5" | maxpool->1x1, concatenated on channels.

    ``kernel_5x5``: 5 for the paper and MindCV; 3 for the torchvision / model_zoo port (their "5x5"
    branch is really 3x3). Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        conv_block: Callable[..., nn.Cell] = ConvNormAct,
        kernel_5x5: int = 5,
    ) -> None:
        super().__init__()
        self.b1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.b2 = nn.SequentialCell(
            [conv_block(in_channels, ch3x3red, kernel_size=1), conv_block(ch3x3red, ch3x3, kernel_size=3)]
        )
        self.b3 = nn.SequentialCell(
            [conv_block(in_channels, ch5x5red, kernel_size=1), conv_block(ch5x5red, ch5x5, kernel_size=kernel_5x5)]
        )
        self.b4 = nn.SequentialCell(
            [MaxPool2d(kernel_size=3, stride=1, pad_mode="same"), conv_block(in_channels, pool_proj, kernel_size=1)]
        )

    def construct(self, x: Tensor) -> Tensor:
        return ops.concat((self.b1(x), self.b2(x), self.b3(x), self.b4(x)), axis=1)


class InceptionAux(nn.Cell):
    """GoogLeNet auxiliary classifier on a 14x14 map: avgpool 5/3 -> 1x1 conv 128 -> fc 1024 -> fc."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        drop_rate: float = 0.7,
        conv_block: Callable[..., nn.Cell] = ConvNormAct,
        init_mode: str = "mindcv_googlenet",
    ) -> None:
        super().__init__()
        self.avg_pool = nn.AvgPool2d(kernel_size=5, stride=3)
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.flatten = nn.Flatten()
        self.fc1 = dense(2048, 1024, init_mode)  # 128 x 4 x 4 -> 1024
        self.relu = nn.ReLU()
        self.dropout = make_dropout(drop_rate)
        self.fc2 = dense(1024, num_classes, init_mode)

    def construct(self, x: Tensor) -> Tensor:
        x = self.flatten(self.conv(self.avg_pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GlobalAvgPool(nn.Cell):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""

    def construct(self, x: Tensor) -> Tensor:
        return ops.mean(x, (2, 3), keep_dims=False)
