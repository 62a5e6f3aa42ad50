"""VGG, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan & Zisserman, 2014).

* ``vgg11`` .. ``vgg19``: MindCV's models with MindCV's parameter names (``features.N``,
  ``classifier.{0,3,6}``; convs without bias), so MindCV checkpoints load.
* ``vgg11_bn`` .. ``vgg19_bn``: the same with BatchNorm after every conv (MindCV's
  ``batch_norm=True``). torchvision's ``vgg*_bn`` also has conv biases: pass ``has_bias=True`` to match it.
* ``vgg11_bn_cifar`` .. ``vgg19_bn_cifar``: native 32x32 VGG-BN with a single 512 -> classes head.

The MindSpore model_zoo options are builder arguments: ``pad_mode`` ('same' | 'pad'), ``has_bias``,
``batch_norm``, ``has_dropout``, ``init_mode`` (model_zoo's ``initialize_mode``, accepted as an
alias; 'KaimingNormal': He normal fan-out convs and Normal(0.01) dense layers, zero biases, as
MindCV; 'XavierUniform': Xavier uniform convs, MindSpore's default dense init).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mindspore import Tensor, nn

from ..constants import CIFAR_MEAN, CIFAR_STD
from ..errors import ModelError
from ..ops import Conv2d, FusedSequential, MaxPool2d
from ..registry import ModelSpec, WeightSpec, build_model, register_model
from .layers import check_out_indices, conv_initializer, dense, freeze_all_but, make_dropout, sync_parameter_names

__all__ = ["VGG"]

# Conv widths per stage; "M" is a 2x2/2 max pool.
layer_lists: Dict[str, List[Union[str, int]]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

PAD_MODES = ("same", "pad")
INIT_MODES = ("KaimingNormal", "XavierUniform")
HEADS = ("imagenet", "cifar")


def _make_features(
    layers_spec: Sequence[Union[str, int]],
    in_channels: int,
    batch_norm: bool,
    pad_mode: str,
    has_bias: bool,
    init_mode: str,
) -> nn.SequentialCell:
    """Flat conv [-> bn] -> relu [-> pool] list, so parameters are ``features.<index>.*`` as in MindCV."""
    layers: List[nn.Cell] = []
    for v in layers_spec:
        if v == "M":
            layers.append(MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(
            Conv2d(
                in_channels,
                int(v),
                kernel_size=3,
                pad_mode=pad_mode,
                padding=1 if pad_mode == "pad" else 0,
                has_bias=has_bias,
                weight_init=conv_initializer(init_mode),
                bias_init="zeros" if has_bias else None,
            )
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU())
        in_channels = int(v)
    return FusedSequential(layers)


class VGG(nn.Cell):
    """VGG with the model_zoo options.

    Args:
        arch: a key of :data:`layer_lists` ('vgg11', 'vgg13', 'vgg16', 'vgg19').
        num_classes: classifier size.
        in_channels: input channels.
        batch_norm: BatchNorm after every conv.
        pad_mode: 'pad' (explicit padding 1, MindCV) or 'same' (model_zoo CIFAR); same output shapes.
        has_bias: conv biases (MindCV: none).
        has_dropout: dropout in the classifier (False: no dropout, and a drop_rate above 0 is refused).
        drop_rate: dropout probability in the classifier (default 0.5 with dropout, else 0).
        init_mode: 'KaimingNormal' or 'XavierUniform'.
        initialize_mode: model_zoo's name for ``init_mode`` (an alias; give one of the two).
        head: 'imagenet' (512*7*7 -> 4096 -> 4096 -> classes, needs 224x224 input) or 'cifar'
            (512 -> classes, 32x32 input).
        adaptive_pool: average-pool the features to 7x7 before the 'imagenet' head (torchvision's
            ``AdaptiveAvgPool2d((7, 7))``: the identity at 224x224, and any input of at least 32x32 works).
        features_only: build no head; ``construct`` returns the feature maps of the stages in
            ``out_indices`` (a tuple, shallowest first). Stages after the deepest of them are not built;
            a checkpoint's entries for the head and those stages are then ignored.
        freeze_backbone: train only the final classification layer(s) (``requires_grad`` False
            elsewhere, so optimizers built from ``trainable_params()`` leave the rest as loaded).
        out_indices: stages to return with ``features_only`` (0..4: after each of the five max pools,
            reductions 2, 4, 8, 16, 32); see ``feature_info``.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        pad_mode: str = "pad",
        has_bias: bool = False,
        has_dropout: bool = True,
        drop_rate: Optional[float] = None,
        init_mode: str = "KaimingNormal",
        head: str = "imagenet",
        initialize_mode: Optional[str] = None,
        adaptive_pool: bool = False,
        features_only: bool = False,
        freeze_backbone: bool = False,
        out_indices: Sequence[int] = (0, 1, 2, 3, 4),
    ) -> None:
        super().__init__()
        if initialize_mode is not None:
            if init_mode != "KaimingNormal" and init_mode != initialize_mode:
                raise ModelError(
                    f"VGG got init_mode={init_mode!r} and its alias initialize_mode={initialize_mode!r}",
                    hint="give only one of them",
                )
            init_mode = initialize_mode
        for option, value, allowed in (
            ("arch", arch, tuple(layer_lists)),
            ("pad_mode", pad_mode, PAD_MODES),
            ("init_mode", init_mode, INIT_MODES),
            ("head", head, HEADS),
        ):
            if value not in allowed:
                raise ModelError(
                    f"VGG option {option}={value!r} is not one of {', '.join(allowed)}",
                    hint=f"pass {option}=" + " or ".join(repr(a) for a in allowed),
                )
        self.num_classes = num_classes
        self.init_mode = init_mode
        self.mlp_head = head == "imagenet"
        self.num_features = 4096 if self.mlp_head else 512
        if drop_rate is None:
            drop_rate = 0.5 if has_dropout else 0.0
        if not has_dropout and drop_rate > 0:
            raise ModelError(
                f"VGG got has_dropout=False with drop_rate={drop_rate}: a classifier without dropout cannot drop",
                hint="pass drop_rate=0, or has_dropout=True",
            )
        p = drop_rate
        spec = layer_lists[arch]
        self.features_only = features_only
        self.out_indices = check_out_indices(out_indices, spec.count("M"))
        # cells of the full trunk: conv [bn] relu per width, one per pool; features.<i> for
        # _pruned_from <= i < _full_len are not built (features_only)
        self._full_len = sum((3 if batch_norm else 2) if v != "M" else 1 for v in spec)
        self._pruned_from = self._full_len
        if features_only:  # stages after the deepest one asked for are not built (as timm does)
            pools = [i for i, v in enumerate(spec) if v == "M"]
            spec = spec[: pools[self.out_indices[-1]] + 1]
        self.features = _make_features(spec, in_channels, batch_norm, pad_mode, has_bias, init_mode)
        # feature stages end after each max pool: (index in self.features, channels, reduction)
        ends, width = [], in_channels
        for i, cell in enumerate(self.features.cells()):
            if isinstance(cell, nn.Conv2d):
                width = cell.out_channels
            if isinstance(cell, nn.MaxPool2d):
                ends.append((i, width, 2 ** (len(ends) + 1)))
        self.feature_info = [
            {"num_chs": c, "reduction": r, "module": f"features.{i}", "stage": k} for k, (i, c, r) in enumerate(ends)
        ]
        self._stage_ends = tuple(i for i, _, _ in ends)
        if features_only:
            self._pruned_from = len(self.features)
            self.feature_info = [self.feature_info[k] for k in self.out_indices]
            self.num_features = self.feature_info[-1]["num_chs"]
            self.avgpool = nn.Identity()
            return
        self.flatten = nn.Flatten()
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7)) if adaptive_pool and self.mlp_head else nn.Identity()
        if self.mlp_head:  # (N, 512*7*7) -> (N, classes); indices 0, 3, 6 carry MindCV's names
            self.classifier = nn.SequentialCell(
                [
                    dense(512 * 7 * 7, 4096, init_mode),
                    nn.ReLU(),
                    make_dropout(p),
                    dense(4096, 4096, init_mode),
                    nn.ReLU(),
                    make_dropout(p),
                    dense(4096, num_classes, init_mode),
                ]
            )
            self.head_drop = nn.Identity()
        else:  # (N, 512) -> (N, classes)
            self.head_drop = make_dropout(p)
            self.classifier = dense(512, num_classes, init_mode)
        if freeze_backbone:
            freeze_all_but(self, self.classifier_names)

    @property
    def classifier_names(self) -> Tuple[str, ...]:
        """Parameter-name prefix of the final classification layer."""
        if self.features_only:
            return ()
        return ("classifier.6",) if self.mlp_head else ("classifier",)

    @property
    def optional_checkpoint_prefixes(self) -> Tuple[str, ...]:
        """Checkpoint entries to ignore: a features-only model loads full checkpoints (the head and the
        stages it did not build)."""
        if not self.features_only:
            return ()
        return ("classifier",) + tuple(f"features.{i}" for i in range(self._pruned_from, self._full_len))

    def forward_intermediates(
        self, x: Tensor, indices: Optional[Sequence[int]] = None, intermediates_only: bool = False
    ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """Feature maps of stages ``indices`` (default: all five, or ``out_indices`` when features-only)
        and the final features: ``(forward_features(x), [maps])``, or only ``[maps]``."""
        wanted = self.out_indices if indices is None else check_out_indices(indices, len(self._stage_ends))
        ends = [self._stage_ends[k] for k in wanted]
        maps = []
        for i in range(ends[-1] + 1 if intermediates_only else len(self.features)):
            x = self.features[i](x)
            if i in ends:
                maps.append(x)
        return maps if intermediates_only else (x, maps)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last classification layer with a fresh one for ``num_classes`` classes."""
        self.num_classes = num_classes
        layer = dense(self.num_features, num_classes, self.init_mode)
        if self.mlp_head:
            self.classifier[6] = layer
        else:
            self.classifier = layer
        sync_parameter_names(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, 512, H/32, W/32). In eval mode each conv [-> bn] -> relu runs as one fast
        kernel call where it can (:class:`visionzoo.ops.FusedSequential`)."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Features -> logits; ``pre_logits=True`` returns the input of the last layer (N, num_features)."""
        x = self.head_drop(self.flatten(self.avgpool(x)))
        if pre_logits:
            if self.mlp_head:
                for i in range(6):
                    x = self.classifier[i](x)
            return x
        return self.classifier(x)

    def construct(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        if self.features_only:
            return tuple(self.forward_intermediates(x, intermediates_only=True))
        return self.forward_head(self.forward_features(x))


# Architecture options of each registered model (user kwargs override them).
_VARIANTS: Dict[str, Dict[str, Any]] = {}
for _depth in ("11", "13", "16", "19"):
    _VARIANTS[f"vgg{_depth}"] = dict(arch=f"vgg{_depth}")
    _VARIANTS[f"vgg{_depth}_bn"] = dict(arch=f"vgg{_depth}", batch_norm=True)
    _VARIANTS[f"vgg{_depth}_bn_cifar"] = dict(arch=f"vgg{_depth}", batch_norm=True, head="cifar", drop_rate=0.0)


def _create_vgg(variant: str, **kwargs: Any) -> VGG:
    return build_model(VGG, variant, **dict(_VARIANTS[variant], **kwargs))


# --- published weights ---------------------------------------------------------------------------
# URLs, hashes (the sha256 prefix in each file name), metrics and parameter counts from MindCV's
# default_cfgs and configs/vgg/README.md, and torchvision 0.28's VGG*_Weights.

_MINDCV = "https://download.mindspore.cn/toolkits/mindcv/vgg/"
_MINDCV_A2 = "https://download-mindspore.osinfra.cn/toolkits/mindcv/vgg/"
_TV = "https://download.pytorch.org/models/"
#: torchvision's VGGs have conv biases and AdaptiveAvgPool2d((7, 7)) before the head
TV_OPTIONS = (("has_bias", True), ("adaptive_pool", True))


def _mindcv(
    file: str,
    top1: float,
    top5: float,
    tag: str = "mindcv_in1k",
    base: str = _MINDCV,
    notes: str = "8 x Ascend 910, graph mode",
) -> WeightSpec:
    return WeightSpec(
        tag=tag,
        url=base + file,
        sha256=file.rsplit("-", 2 if "910v2" in file else 1)[1][:8],
        source="MindCV",
        license="Apache-2.0",
        top1=top1,
        top5=top5,
        recipe="https://github.com/mindspore-lab/mindcv/tree/main/configs/vgg",
        notes=notes,
    )


def _tv(
    file: str, top1: Optional[float], top5: Optional[float], num_params: int, tag: str = "tv_in1k", **kwargs: Any
) -> WeightSpec:
    return WeightSpec(
        tag=tag,
        url=_TV + file,
        sha256=file.rsplit("-", 1)[1].split(".")[0],
        source="torchvision",
        license="BSD-3-Clause",
        top1=top1,
        top5=top5,
        num_params=num_params,
        options=TV_OPTIONS,
        recipe="https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg",
        **kwargs,
    )


_A2 = "8 x Ascend 910* (Atlas A2), graph mode"
WEIGHTS: Dict[str, Tuple[WeightSpec, ...]] = {
    "vgg11": (_mindcv("vgg11-ef31d161.ckpt", 71.86, 90.50), _tv("vgg11-8a719046.pth", 69.020, 88.628, 132_863_336)),
    "vgg13": (
        _mindcv("vgg13-da805e6e.ckpt", 72.87, 91.02),
        _mindcv("vgg13-7756f33c-910v2.ckpt", 72.81, 91.02, tag="mindcv_in1k_910v2", base=_MINDCV_A2, notes=_A2),
        _tv("vgg13-19584684.pth", 69.928, 89.246, 133_047_848),
    ),
    "vgg16": (
        _mindcv("vgg16-95697531.ckpt", 74.61, 91.87),
        _tv("vgg16-397923af.pth", 71.592, 90.382, 138_357_544),
        _tv(
            "vgg16_features-amdegroot-88682ab5.pth",
            None,
            None,
            138_357_544,
            tag="tv_ssd_features",
            mean=(0.48235 * 255, 0.45882 * 255, 0.40784 * 255),
            std=(1.0, 1.0, 1.0),
            notes="features only (ported from amdegroot/ssd.pytorch): the classifier holds NaN "
            "placeholders; use features_only=True or replace the head",
        ),
    ),
    "vgg19": (
        _mindcv("vgg19-bedee7b6.ckpt", 75.21, 92.56),
        _mindcv("vgg19-5104d1ea-910v2.ckpt", 75.24, 92.55, tag="mindcv_in1k_910v2", base=_MINDCV_A2, notes=_A2),
        _tv("vgg19-dcbb9e9d.pth", 72.376, 90.876, 143_667_240),
    ),
    "vgg11_bn": (_tv("vgg11_bn-6002323d.pth", 70.370, 89.810, 132_868_840),),
    "vgg13_bn": (_tv("vgg13_bn-abd245e5.pth", 71.586, 90.374, 133_053_736),),
    "vgg16_bn": (_tv("vgg16_bn-6c64b313.pth", 73.360, 91.516, 138_365_992),),
    "vgg19_bn": (_tv("vgg19_bn-c79401a0.pth", 74.218, 91.842, 143_678_248),),
}


def _spec(num_params: int, bn: bool = False, cifar: bool = False, weights: Tuple[WeightSpec, ...] = ()) -> ModelSpec:
    if cifar:
        return ModelSpec(
            num_params=num_params,
            num_features=512,
            input_size=(3, 32, 32),
            mean=CIFAR_MEAN,
            std=CIFAR_STD,
            classifier="classifier",
            first_conv="features.0",
            flavour="BN, conv without bias, 512 -> classes head, native 32x32",
            source="PyTorch community CIFAR VGG",
        )
    return ModelSpec(
        num_params=num_params,
        num_features=4096,
        classifier="classifier.6",
        first_conv="features.0",
        flavour="Conv+BN+ReLU, conv without bias" if bn else "Conv+ReLU, conv without bias",
        source="MindCV (same parameter names: MindCV checkpoints load)"
        if not bn
        else "MindCV batch_norm=True (same parameter names)",
        weights=weights,
    )


model_specs = {
    "vgg11": _spec(132_860_584, weights=WEIGHTS["vgg11"]),
    "vgg13": _spec(133_044_904, weights=WEIGHTS["vgg13"]),
    "vgg16": _spec(138_353_320, weights=WEIGHTS["vgg16"]),
    "vgg19": _spec(143_661_736, weights=WEIGHTS["vgg19"]),
    "vgg11_bn": _spec(132_866_088, bn=True, weights=WEIGHTS["vgg11_bn"]),
    "vgg13_bn": _spec(133_050_792, bn=True, weights=WEIGHTS["vgg13_bn"]),
    "vgg16_bn": _spec(138_361_768, bn=True, weights=WEIGHTS["vgg16_bn"]),
    "vgg19_bn": _spec(143_672_744, bn=True, weights=WEIGHTS["vgg19_bn"]),
    "vgg11_bn_cifar": _spec(9_736_232, cifar=True),
    "vgg13_bn_cifar": _spec(9_920_936, cifar=True),
    "vgg16_bn_cifar": _spec(15_231_912, cifar=True),
    "vgg19_bn_cifar": _spec(20_542_888, cifar=True),
}


@register_model
def vgg11(**kwargs: Any) -> VGG:
    """VGG-11 (MindCV names and flavour)."""
    return _create_vgg("vgg11", **kwargs)


@register_model
def vgg13(**kwargs: Any) -> VGG:
    """VGG-13 (MindCV names and flavour)."""
    return _create_vgg("vgg13", **kwargs)


@register_model
def vgg16(**kwargs: Any) -> VGG:
    """VGG-16 (MindCV names and flavour)."""
    return _create_vgg("vgg16", **kwargs)


@register_model
def vgg19(**kwargs: Any) -> VGG:
    """VGG-19 (MindCV names and flavour)."""
    return _create_vgg("vgg19", **kwargs)


@register_model
def vgg11_bn(**kwargs: Any) -> VGG:
    """VGG-11 with BatchNorm."""
    return _create_vgg("vgg11_bn", **kwargs)


@register_model
def vgg13_bn(**kwargs: Any) -> VGG:
    """VGG-13 with BatchNorm."""
    return _create_vgg("vgg13_bn", **kwargs)


@register_model
def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with BatchNorm."""
    return _create_vgg("vgg16_bn", **kwargs)


@register_model
def vgg19_bn(**kwargs: Any) -> VGG:
    """VGG-19 with BatchNorm."""
    return _create_vgg("vgg19_bn", **kwargs)


@register_model
def vgg11_bn_cifar(**kwargs: Any) -> VGG:
    """VGG-11-BN for native 32x32 input, 512 -> classes head."""
    return _create_vgg("vgg11_bn_cifar", **kwargs)


@register_model
def vgg13_bn_cifar(**kwargs: Any) -> VGG:
    """VGG-13-BN for native 32x32 input, 512 -> classes head."""
    return _create_vgg("vgg13_bn_cifar", **kwargs)


@register_model
def vgg16_bn_cifar(**kwargs: Any) -> VGG:
    """VGG-16-BN for native 32x32 input, 512 -> classes head."""
    return _create_vgg("vgg16_bn_cifar", **kwargs)


@register_model
def vgg19_bn_cifar(**kwargs: Any) -> VGG:
    """VGG-19-BN for native 32x32 input, 512 -> classes head."""
    return _create_vgg("vgg19_bn_cifar", **kwargs)
