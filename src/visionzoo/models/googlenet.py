"""GoogLeNet (Inception v1), "Going Deeper with Convolutions" (Szegedy et al., 2014).

Three registered flavours, one class:

* ``googlenet``: MindCV's model exactly (Conv + ReLU without BN, true 5x5 branch, optional aux
  heads, dropout 0.2) with MindCV's parameter names, so MindCV checkpoints load.
* ``googlenet_bn``: the MindSpore model_zoo / torchvision port: Conv (no bias) + BN (eps 1e-3) + ReLU,
  a 3x3 "5x5" branch, dropout 0.2, no aux heads by default.
* ``googlenet_cifar``: the common native-32x32 adaptation: a 3x3 conv stem with 192 channels and no
  early downsampling, then inception 3a..5b (BN flavour) with pools after 3b and 4e.
"""

from __future__ import annotations

from functools import partial
from typing import Any, List, Optional, Sequence, Tuple, Union

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from ..constants import CIFAR_MEAN, CIFAR_STD
from ..errors import ModelError
from ..ops import MaxPool2d
from ..registry import ModelSpec, WeightSpec, build_model, register_model
from .layers import (
    ConvNormAct,
    GlobalAvgPool,
    Inception,
    InceptionAux,
    check_out_indices,
    dense,
    freeze_all_but,
    make_dropout,
    sync_parameter_names,
)

__all__ = ["GoogLeNet"]

# Inception modules: (name, in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj). A 3x3/2 max pool
# follows 3b (28 -> 14 at 224 input) and a 2x2/2 one follows 4e (14 -> 7).
inception_specs = (
    ("3a", 192, 64, 96, 128, 16, 32, 32),
    ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
)

# Architecture options of each registered flavour (user kwargs override them).
_VARIANTS = {
    "googlenet": dict(norm=False, kernel_5x5=5, small_input=False, init_mode="mindcv_googlenet"),
    "googlenet_bn": dict(norm=True, kernel_5x5=3, small_input=False, init_mode="TruncatedNormal"),
    "googlenet_cifar": dict(norm=True, kernel_5x5=3, small_input=True, init_mode="TruncatedNormal"),
}


class GoogLeNet(nn.Cell):
    """GoogLeNet. ``construct`` returns logits, or ``(logits, aux1, aux2)`` in training mode with
    ``aux_logits=True`` (aux1 after inception 4a, aux2 after 4d).

    Args:
        num_classes: classifier size (0: no classifier, ``construct`` returns pooled features).
        in_channels: input channels.
        aux_logits: build the two auxiliary classifiers (needs 224x224 input).
        drop_rate: dropout before the classifier.
        drop_rate_aux: dropout inside the auxiliary classifiers.
        norm: BatchNorm (eps 1e-3) after every conv.
        kernel_5x5: kernel of the "5x5" branch (5: paper/MindCV, 3: torchvision/model_zoo).
        small_input: 32x32 stem (3x3 conv to 192 channels, no downsampling) instead of the 224 stem.
        init_mode: weight initialisation scheme (see ``layers.INIT_MODES``).
        bn_eps: BatchNorm epsilon (1e-3 in model_zoo and torchvision).
        stem_padding: explicit padding of the 7x7/2 stem conv (torchvision: 3); None: 'same' padding
            (MindCV/model_zoo), which pads 2 then 3 at even sizes.
        ceil_mode: the four stride-2 max pools are unpadded with ceil mode (torchvision) instead of
            'same' padded; at even sizes the two agree, at odd sizes they differ.
        transform_input: first map inputs normalised with ImageNet mean/std to (x - 0.5) / 0.5 per
            channel, as torchvision's published GoogLeNet weights expect.
        features_only: build no head; ``construct`` returns the feature maps of the stages in
            ``out_indices`` (0: stem after conv3, 1: inception 3b, 2: inception 4e, 3: inception 5b;
            see ``feature_info``). A checkpoint's head entries are then ignored.
        freeze_backbone: train only the final classification layer(s) (``requires_grad`` False
            elsewhere, so optimizers built from ``trainable_params()`` leave the rest as loaded).
        out_indices: stages to return with ``features_only``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        drop_rate: float = 0.2,
        drop_rate_aux: float = 0.7,
        norm: bool = False,
        kernel_5x5: int = 5,
        small_input: bool = False,
        init_mode: str = "mindcv_googlenet",
        bn_eps: float = 1e-3,
        stem_padding: Optional[int] = None,
        ceil_mode: bool = False,
        transform_input: bool = False,
        features_only: bool = False,
        freeze_backbone: bool = False,
        out_indices: Sequence[int] = (0, 1, 2, 3),
    ) -> None:
        super().__init__()
        if aux_logits and small_input:
            raise ModelError(
                "aux_logits needs the 224x224 GoogLeNet (its heads expect a 14x14 map); "
                "googlenet_cifar has no auxiliary heads: set aux_logits False"
            )
        if features_only and aux_logits:
            raise ModelError("features_only builds no heads: set aux_logits False")
        if transform_input and in_channels != 3:
            raise ModelError(
                f"transform_input needs 3 input channels (RGB), got in_channels={in_channels}",
                hint="set transform_input False",
            )
        self.num_classes = num_classes
        self.num_features = 1024
        self.aux_logits = aux_logits
        self.init_mode = init_mode
        conv = partial(ConvNormAct, norm=norm, eps=bn_eps, init_mode=init_mode)
        if ceil_mode:
            pool = partial(MaxPool2d, pad_mode="pad", padding=0, ceil_mode=True)
        else:
            pool = partial(MaxPool2d, pad_mode="same")
        self.transform_input = transform_input
        # torchvision: x[:, c] * (std_c / 0.5) + (mean_c - 0.5) / 0.5, as one per-channel affine (1, 3, 1, 1)
        self.input_scale = ms.Tensor(np.array([s / 0.5 for s in (0.229, 0.224, 0.225)], np.float32).reshape(1, 3, 1, 1))
        self.input_shift = ms.Tensor(
            np.array([(m - 0.5) / 0.5 for m in (0.485, 0.456, 0.406)], np.float32).reshape(1, 3, 1, 1)
        )
        if small_input:  # 3x32x32 -> 192x32x32
            self.conv1 = conv(in_channels, 192, kernel_size=3)
            self.maxpool1 = nn.Identity()
            self.conv2 = nn.Identity()
            self.conv3 = nn.Identity()
            self.maxpool2 = nn.Identity()
        else:  # 3x224x224 -> 64x112x112 -> 64x56x56 -> 192x56x56 -> 192x28x28
            stem = {} if stem_padding is None else dict(pad_mode="pad", padding=int(stem_padding))
            self.conv1 = conv(in_channels, 64, kernel_size=7, stride=2, **stem)
            self.maxpool1 = pool(kernel_size=3, stride=2)
            self.conv2 = conv(64, 64, kernel_size=1)
            self.conv3 = conv(64, 192, kernel_size=3)
            self.maxpool2 = pool(kernel_size=3, stride=2)
        for name, *channels in inception_specs:
            setattr(self, f"inception{name}", Inception(*channels, conv_block=conv, kernel_5x5=kernel_5x5))
        self.maxpool3 = pool(kernel_size=3, stride=2)
        self.maxpool4 = pool(kernel_size=2, stride=2)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, drop_rate_aux, conv_block=conv, init_mode=init_mode)
            self.aux2 = InceptionAux(528, num_classes, drop_rate_aux, conv_block=conv, init_mode=init_mode)
        self.pool = GlobalAvgPool()
        self.dropout = make_dropout(drop_rate)
        self.features_only = features_only
        self.classifier = nn.Identity() if features_only else self._make_classifier(num_classes)
        r = 1 if small_input else 8  # reduction after maxpool2 (an identity in the 32x32 stem)
        info = [
            (192, 1 if small_input else 4, "conv1" if small_input else "conv3"),
            (480, r, "inception3b"),
            (832, r * 2, "inception4e"),
            (1024, r * 4, "inception5b"),
        ]
        self.out_indices = check_out_indices(out_indices, len(info))
        self.feature_info = [
            {"num_chs": c, "reduction": red, "module": m, "stage": k}
            for k, (c, red, m) in enumerate(info)
            if not features_only or k in self.out_indices
        ]
        if features_only:
            self.num_features = self.feature_info[-1]["num_chs"]
        if freeze_backbone:
            freeze_all_but(self, self.classifier_names)

    @property
    def classifier_names(self) -> Tuple[str, ...]:
        """Parameter-name prefixes of every classification head (main, then aux)."""
        if self.features_only:
            return ()
        return ("classifier", "aux1.fc2", "aux2.fc2") if self.aux_logits else ("classifier",)

    @property
    def optional_checkpoint_prefixes(self) -> Tuple[str, ...]:
        """Checkpoint entries to ignore: a model built without aux heads loads weights trained with them
        (and a features-only model, full checkpoints)."""
        if self.features_only:
            return ("classifier", "aux1", "aux2")
        return () if self.aux_logits else ("aux1", "aux2")

    def _make_classifier(self, num_classes: int) -> nn.Cell:
        return dense(self.num_features, num_classes, self.init_mode) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head(s) with fresh ones for ``num_classes`` classes."""
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes)
        if self.aux_logits:
            self.aux1.fc2 = dense(1024, num_classes, self.init_mode)
            self.aux2.fc2 = dense(1024, num_classes, self.init_mode)
        sync_parameter_names(self)

    def _stages(self, x: Tensor, with_aux: bool, taps: Sequence[int] = ()) -> Tuple[Tensor, Any, Any, List[Tensor]]:
        """Trunk: (features, aux1, aux2, maps of the stages in ``taps``)."""
        maps = []
        if self.transform_input:
            x = x * self.input_scale + self.input_shift
        x = self.conv3(self.conv2(self.maxpool1(self.conv1(x))))
        if 0 in taps:
            maps.append(x)
        x = self.inception3b(self.inception3a(self.maxpool2(x)))
        if 1 in taps:
            maps.append(x)
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.inception4e(x)
        if 2 in taps:
            maps.append(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        if 3 in taps:
            maps.append(x)
        return x, aux1, aux2, maps

    def _features(self, x: Tensor, with_aux: bool) -> Tuple[Tensor, Any, Any]:
        return self._stages(x, with_aux)[:3]

    def forward_intermediates(
        self, x: Tensor, indices: Optional[Sequence[int]] = None, intermediates_only: bool = False
    ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """Feature maps of stages ``indices`` (default: all four, or ``out_indices`` when features-only)
        and the final features: ``(forward_features(x), [maps])``, or only ``[maps]``."""
        wanted = self.out_indices if indices is None else check_out_indices(indices, 4)
        x, _, _, maps = self._stages(x, False, wanted)
        return maps if intermediates_only else (x, maps)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, 1024, H/32, W/32) (H/4 for ``small_input``)."""
        return self._features(x, False)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pooled features -> logits; ``pre_logits=True`` stops before the classifier (N, 1024)."""
        x = self.dropout(self.pool(x))
        return x if pre_logits else self.classifier(x)

    def construct(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        if self.features_only:
            return tuple(self.forward_intermediates(x, intermediates_only=True))
        if self.aux_logits and self.training:
            x, aux1, aux2 = self._features(x, True)
            return self.forward_head(x), aux1, aux2
        return self.forward_head(self.forward_features(x))


def _create_googlenet(variant: str, **kwargs: Any) -> GoogLeNet:
    return build_model(GoogLeNet, variant, **dict(_VARIANTS[variant], **kwargs))


# --- published weights ---------------------------------------------------------------------------
# MindCV's default_cfgs and configs/googlenet/README.md; torchvision 0.28's GoogLeNet_Weights. File
# names carry the sha256 prefix.
_MINDCV_RECIPE = "https://github.com/mindspore-lab/mindcv/tree/main/configs/googlenet"
#: torchvision's GoogLeNet: stem padded 3, ceil-mode pools, transform_input (its weights expect it)
TV_OPTIONS = (("stem_padding", 3), ("ceil_mode", True), ("transform_input", True))
WEIGHTS = {
    "googlenet": (
        WeightSpec(
            tag="mindcv_in1k",
            url="https://download.mindspore.cn/toolkits/mindcv/googlenet/googlenet-5552fcd3.ckpt",
            sha256="5552fcd3",
            source="MindCV",
            license="Apache-2.0",
            top1=72.68,
            top5=90.89,
            recipe=_MINDCV_RECIPE,
            notes="8 x Ascend 910, graph mode",
        ),
        WeightSpec(
            tag="mindcv_in1k_910v2",
            url="https://download-mindspore.osinfra.cn/toolkits/mindcv/googlenet/googlenet-de74c31d-910v2.ckpt",
            sha256="de74c31d",
            source="MindCV",
            license="Apache-2.0",
            top1=72.89,
            top5=90.89,
            recipe=_MINDCV_RECIPE,
            notes="8 x Ascend 910* (Atlas A2), graph mode",
        ),
    ),
    "googlenet_bn": (
        WeightSpec(
            tag="tv_in1k",
            url="https://download.pytorch.org/models/googlenet-1378be20.pth",
            sha256="1378be20",
            source="torchvision",
            license="BSD-3-Clause",
            top1=69.778,
            top5=89.530,
            num_params=6_624_904,
            options=TV_OPTIONS,
            recipe="https://github.com/pytorch/vision/tree/main/references/classification#googlenet",
            notes="ported from the original paper; no auxiliary heads",
        ),
    ),
}

# torch names -> ours: torchvision's inception branches are branch1..4 (ours b1..b4), its head is fc
_TORCH_RENAMES = ((r"\.branch(\d)\.", r".b\1."), (r"^fc\.", "classifier."))

model_specs = {
    "googlenet": ModelSpec(
        num_params=6_991_272,
        num_features=1024,
        flavour="Conv+ReLU (no BN), true 5x5, aux heads optional",
        source="MindCV (same parameter names: MindCV checkpoints load)",
        torch_renames=_TORCH_RENAMES,
        weights=WEIGHTS["googlenet"],
    ),
    "googlenet_bn": ModelSpec(
        num_params=6_624_904,
        num_features=1024,
        flavour="Conv+BN(eps 1e-3)+ReLU, 3x3 '5x5' branch",
        source="MindSpore model_zoo / torchvision",
        torch_renames=_TORCH_RENAMES,
        weights=WEIGHTS["googlenet_bn"],
    ),
    "googlenet_cifar": ModelSpec(
        num_params=6_505_736,
        num_features=1024,
        input_size=(3, 32, 32),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        flavour="BN, 3x3 stem to 192 channels, native 32x32",
        source="PyTorch community CIFAR adaptation",
        torch_renames=_TORCH_RENAMES,
    ),
}


@register_model
def googlenet(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet, MindCV flavour (no BN, true 5x5); ``aux_logits=True`` adds the auxiliary heads."""
    return _create_googlenet("googlenet", **kwargs)


@register_model
def googlenet_bn(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet, model_zoo / torchvision flavour (BN, 3x3 "5x5" branch)."""
    return _create_googlenet("googlenet_bn", **kwargs)


@register_model
def googlenet_cifar(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet for native 32x32 input (CIFAR)."""
    return _create_googlenet("googlenet_cifar", **kwargs)
