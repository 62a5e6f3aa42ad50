"""VGG, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan & Zisserman, 2014).

* ``vgg11`` .. ``vgg19``: MindCV's models with MindCV's parameter names (``features.N``,
  ``classifier.{0,3,6}``; convs without bias), so MindCV checkpoints load.
* ``vgg11_bn`` .. ``vgg19_bn``: the same with BatchNorm after every conv (MindCV's
  ``batch_norm=True``). torchvision's ``vgg*_bn`` also has conv biases: pass ``has_bias=True`` to match it.
* ``vgg11_bn_cifar`` .. ``vgg19_bn_cifar``: native 32x32 VGG-BN with a single 512 -> classes head.

The MindSpore model_zoo options are builder arguments: ``pad_mode`` ('same' | 'pad'), ``has_bias``,
``batch_norm``, ``has_dropout``, ``init_mode`` (model_zoo's ``initialize_mode``, accepted as an alias; 'KaimingNormal': He normal fan-out convs and
Normal(0.01) dense layers, zero biases, as MindCV; 'XavierUniform': Xavier uniform convs, MindSpore's
default dense init).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mindspore import Tensor, nn

from ..errors import ModelError
from ..ops import Conv2d, MaxPool2d
from ..constants import CIFAR_MEAN, CIFAR_STD
from ..registry import ModelSpec, build_model, register_model
from .layers import conv_initializer, dense, make_dropout, sync_parameter_names

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


def _make_features(layers_spec: Sequence[Union[str, int]], in_channels: int, batch_norm: bool, pad_mode: str,
                   has_bias: bool, init_mode: str) -> nn.SequentialCell:
    """Flat conv [-> bn] -> relu [-> pool] list, so parameters are ``features.<index>.*`` as in MindCV."""
    layers: List[nn.Cell] = []
    for v in layers_spec:
        if v == "M":
            layers.append(MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(Conv2d(in_channels, int(v), kernel_size=3, pad_mode=pad_mode,
                                padding=1 if pad_mode == "pad" else 0, has_bias=has_bias,
                                weight_init=conv_initializer(init_mode),
                                bias_init="zeros" if has_bias else None))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU())
        in_channels = int(v)
    return nn.SequentialCell(layers)


class VGG(nn.Cell):
    """VGG with the model_zoo options.

    Args:
        arch: a key of :data:`layer_lists` ('vgg11', 'vgg13', 'vgg16', 'vgg19').
        num_classes: classifier size.
        in_channels: input channels.
        batch_norm: BatchNorm after every conv.
        pad_mode: 'pad' (explicit padding 1, MindCV) or 'same' (model_zoo CIFAR); same output shapes.
        has_bias: conv biases (MindCV: none).
        has_dropout: dropout in the classifier (False: drop_rate is ignored).
        drop_rate: dropout probability in the classifier.
        init_mode: 'KaimingNormal' or 'XavierUniform'.
        initialize_mode: model_zoo's name for ``init_mode`` (an alias; give one of the two).
        head: 'imagenet' (512*7*7 -> 4096 -> 4096 -> classes, needs 224x224 input) or 'cifar'
            (512 -> classes, 32x32 input).
        adaptive_pool: average-pool the features to 7x7 before the 'imagenet' head (torchvision's
            ``AdaptiveAvgPool2d((7, 7))``: the identity at 224x224, and any input of at least 32x32 works).
    """

    def __init__(self, arch: str = "vgg16", num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
                 pad_mode: str = "pad", has_bias: bool = False, has_dropout: bool = True, drop_rate: float = 0.5,
                 init_mode: str = "KaimingNormal", head: str = "imagenet",
                 initialize_mode: Optional[str] = None, adaptive_pool: bool = False) -> None:
        super().__init__()
        if initialize_mode is not None:
            if init_mode != "KaimingNormal" and init_mode != initialize_mode:
                raise ModelError(f"VGG got init_mode={init_mode!r} and its alias initialize_mode={initialize_mode!r}",
                                 hint="give only one of them")
            init_mode = initialize_mode
        for option, value, allowed in (("arch", arch, tuple(layer_lists)), ("pad_mode", pad_mode, PAD_MODES),
                                       ("init_mode", init_mode, INIT_MODES), ("head", head, HEADS)):
            if value not in allowed:
                raise ModelError(f"VGG option {option}={value!r} is not one of {', '.join(allowed)}",
                                 hint=f"pass {option}=" + " or ".join(repr(a) for a in allowed))
        self.num_classes = num_classes
        self.init_mode = init_mode
        self.mlp_head = head == "imagenet"
        self.num_features = 4096 if self.mlp_head else 512
        p = drop_rate if has_dropout else 0.0
        self.features = _make_features(layer_lists[arch], in_channels, batch_norm, pad_mode, has_bias, init_mode)
        self.flatten = nn.Flatten()
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7)) if adaptive_pool and self.mlp_head else nn.Identity()
        if self.mlp_head:  # (N, 512*7*7) -> (N, classes); indices 0, 3, 6 carry MindCV's names
            self.classifier = nn.SequentialCell([
                dense(512 * 7 * 7, 4096, init_mode), nn.ReLU(), make_dropout(p),
                dense(4096, 4096, init_mode), nn.ReLU(), make_dropout(p),
                dense(4096, num_classes, init_mode),
            ])
            self.head_drop = nn.Identity()
        else:  # (N, 512) -> (N, classes)
            self.head_drop = make_dropout(p)
            self.classifier = dense(512, num_classes, init_mode)

    @property
    def classifier_names(self) -> Tuple[str, ...]:
        """Parameter-name prefix of the final classification layer."""
        return ("classifier.6",) if self.mlp_head else ("classifier",)

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
        """(N, C, H, W) -> (N, 512, H/32, W/32)."""
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

    def construct(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


# Architecture options of each registered model (user kwargs override them).
_VARIANTS: Dict[str, Dict[str, Any]] = {}
for _depth in ("11", "13", "16", "19"):
    _VARIANTS[f"vgg{_depth}"] = dict(arch=f"vgg{_depth}")
    _VARIANTS[f"vgg{_depth}_bn"] = dict(arch=f"vgg{_depth}", batch_norm=True)
    _VARIANTS[f"vgg{_depth}_bn_cifar"] = dict(arch=f"vgg{_depth}", batch_norm=True, head="cifar", drop_rate=0.0)


def _create_vgg(variant: str, **kwargs: Any) -> VGG:
    return build_model(VGG, variant, **dict(_VARIANTS[variant], **kwargs))


def _spec(num_params: int, bn: bool = False, cifar: bool = False) -> ModelSpec:
    if cifar:
        return ModelSpec(num_params=num_params, num_features=512, input_size=(3, 32, 32), mean=CIFAR_MEAN,
                         std=CIFAR_STD, classifier="classifier", first_conv="features.0",
                         flavour="BN, conv without bias, 512 -> classes head, native 32x32",
                         source="PyTorch community CIFAR VGG")
    return ModelSpec(num_params=num_params, num_features=4096, classifier="classifier.6", first_conv="features.0",
                     flavour="Conv+BN+ReLU, conv without bias" if bn else "Conv+ReLU, conv without bias",
                     source="MindCV (same parameter names: MindCV checkpoints load)" if not bn
                     else "MindCV batch_norm=True (same parameter names)")


model_specs = {
    "vgg11": _spec(132_860_584),
    "vgg13": _spec(133_044_904),
    "vgg16": _spec(138_353_320),
    "vgg19": _spec(143_661_736),
    "vgg11_bn": _spec(132_866_088, bn=True),
    "vgg13_bn": _spec(133_050_792, bn=True),
    "vgg16_bn": _spec(138_361_768, bn=True),
    "vgg19_bn": _spec(143_672_744, bn=True),
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
