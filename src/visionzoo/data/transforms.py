"""Image transform lists built from a recipe, as native MindSpore vision operations.

Every list ends in float32 CHW images normalised with the recipe's ``mean``/``std`` (0-255 units, so
one ``Normalize`` on uint8 pixels replaces the reference's ``Rescale(1/255)`` + ``Normalize``; the
result is the same number). The ``*_train`` lists are random; the ``*_eval`` lists are not.

What was chosen for speed (measured with benchmarks/bench_pipeline.py, figures in docs/data.md):

* train on folders normally runs no op list at all: one C++ call a batch (:mod:`visionzoo.data.jpeg_train`);
  :func:`imagenet_train` is the list for recipes it does not cover and machines without its kernels;
* that list decodes only the crop (``RandomCropDecodeResize``, MindCV's op: the same crop box
  as ``Decode`` + ``RandomResizedCrop`` under the same seed, the same pixels but for a few at the crop's
  edge, where the JPEG decoder's chroma upsampling sees no neighbours);
* eval on folders decodes with Pillow (:class:`~visionzoo.data.decode.PilDecode`: the same pixels as
  MindSpore's ``Decode``, which runs libjpeg-turbo without SIMD and takes ~1.5x the time);
* ``HWC2CHW`` runs on uint8 pixels before ``Normalize`` (a quarter of the bytes to move; the same
  numbers).

Which recipe keys each family honours (documented in docs/data.md):

* ImageNet-style folders: image_resize, scale, ratio, interpolation, hflip, vflip, color_jitter,
  auto_augment, re_*, mean, std, crop_pct.
* CIFAR (32x32 arrays): crop_padding, hflip, vflip, image_resize, interpolation, auto_augment, re_*,
  mean, std. ``color_jitter`` is not applied (the CIFAR references do not jitter, and the schema's
  default 0.4 would silently change them).
* digits (8x8 arrays): image_resize, interpolation, crop_padding (after upscaling), re_*, mean, std.
  Never flipped: a mirrored digit is another glyph.
"""

from __future__ import annotations

import logging
import math
from typing import Any, List, Sequence, Tuple

import mindspore.dataset.vision as V
from mindspore.dataset.vision import Inter

from ..constants import CIFAR_MEAN, CIFAR_STD, DIGITS_MEAN, DIGITS_STD, IMAGENET_MEAN, IMAGENET_STD
from ..errors import DataError
from .batches import BatchFlip, BatchNormalizeCHW, BatchRandomCrop, PerImage
from .decode import PilDecode

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "resolve_mean_std",
    "imagenet_train",
    "imagenet_eval",
    "array_train",
    "array_eval",
    "decoded_eval",
]

_logger = logging.getLogger(__name__)


_DEFAULT_MEAN_STD = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cifar10": (CIFAR_MEAN, CIFAR_STD),
    "cifar100": (CIFAR_MEAN, CIFAR_STD),
    "digits": (DIGITS_MEAN, DIGITS_STD),
    "synthetic": (IMAGENET_MEAN, IMAGENET_STD),
}

_INTERPOLATION = {
    "bilinear": Inter.BILINEAR,
    "bicubic": Inter.BICUBIC,
    "nearest": Inter.NEAREST,
    "area": Inter.AREA,
    # MindSpore's native Resize has no Lanczos kernel (Inter.ANTIALIAS needs PIL images); bicubic is
    # the closest native filter. A warning says so when a recipe asks for lanczos.
    "lanczos": Inter.BICUBIC,
}


def _interpolation(name: str) -> Inter:
    key = str(name).lower()
    if key not in _INTERPOLATION:
        raise DataError(f"unknown interpolation {name!r}; allowed: {', '.join(_INTERPOLATION)}")
    if key == "lanczos":
        _logger.warning("interpolation 'lanczos' has no native MindSpore kernel; using bicubic")
    return _INTERPOLATION[key]


def resolve_mean_std(cfg: Any, dataset: str) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """The recipe's ``mean``/``std`` (0-255 units), or the dataset's defaults where unset."""
    mean, std = _DEFAULT_MEAN_STD.get(dataset, (IMAGENET_MEAN, IMAGENET_STD))
    mean = tuple(float(v) for v in (cfg.mean if cfg.mean is not None else mean))
    std = tuple(float(v) for v in (cfg.std if cfg.std is not None else std))
    if len(mean) != 3 or len(std) != 3:
        raise DataError(f"mean and std need 3 values each (R, G, B in 0-255 units), got mean={mean}, std={std}")
    if any(s <= 0 for s in std):
        raise DataError(f"std values must be > 0 (0-255 units), got {std}")
    return mean, std


def _normalize_chw(mean: Sequence[float], std: Sequence[float], batched: bool = False) -> List[Any]:
    # uint8 HWC -> uint8 CHW -> float32 CHW ((x - mean) / std): transposing 1-byte pixels moves a
    # quarter of the bytes of transposing the float result; the numbers are the same
    if batched:
        return [BatchNormalizeCHW(mean, std)]
    return [V.HWC2CHW(), V.Normalize(mean=list(mean), std=list(std), is_hwc=False)]


def _flips(cfg: Any, allow_hflip: bool = True, batched: bool = False) -> List[Any]:
    ops: List[Any] = []
    if allow_hflip and cfg.hflip > 0:
        p = min(float(cfg.hflip), 1.0)
        ops.append(BatchFlip(p, axis=2) if batched else V.RandomHorizontalFlip(prob=p))
    if cfg.vflip > 0:
        p = min(float(cfg.vflip), 1.0)
        ops.append(BatchFlip(p, axis=1) if batched else V.RandomVerticalFlip(prob=p))
    return ops


def _auto_augment(cfg: Any, mean: Sequence[float], size: int) -> List[Any]:
    """mindcv's policy for ``cfg.auto_augment`` (Python callables on uint8 HWC arrays)."""
    policy = cfg.auto_augment
    if not policy:
        return []
    from mindcv.data.auto_augment import (
        auto_augment_transform,
        rand_augment_transform,
        trivial_augment_wide_transform,
    )

    hparams = dict(
        translate_const=int(size * 0.45),
        img_mean=tuple(min(255, round(x)) for x in mean),
        interpolation=_interpolation(cfg.interpolation),
    )
    if policy.startswith("randaug"):
        return [rand_augment_transform(policy, hparams)]
    if policy.startswith("autoaug") or policy.startswith("3a"):
        return [auto_augment_transform(policy, hparams)]
    if policy.startswith("trivialaugwide"):
        return [trivial_augment_wide_transform(policy, hparams)]
    raise DataError(
        f"auto_augment {policy!r} is not supported; use a mindcv policy string starting with "
        "'randaug' (e.g. 'randaug-m9-mstd0.5'), 'autoaug', '3a' or 'trivialaugwide'"
    )


def erasing_value(cfg: Any) -> Any:
    """The recipe's ``re_value`` checked: an integer 0-255 (in normalised units, as erasing runs after
    normalisation) or ``'random'``. Erasing itself runs per batch (:class:`visionzoo.data.erasing.BatchEraser`,
    added by the loader): MindSpore's RandomErasing is not reproducible with several workers."""
    raw = str(cfg.re_value).strip().lower()
    if raw == "random":
        value: Any = "random"
    else:
        # MindSpore's RandomErasing fills with integers (in normalised units, as it runs after Normalize)
        try:
            number = float(raw)
        except ValueError:
            number = float("nan")
        if not (number.is_integer() and 0 <= number <= 255):
            raise DataError(f"re_value must be an integer in 0-255 or 'random', got {cfg.re_value!r}")
        value = int(number)
    return value


def imagenet_train(cfg: Any, mean: Sequence[float], std: Sequence[float]) -> List[Any]:
    """Encoded bytes -> RandomResizedCrop (decoding only the crop) -> flips -> (auto_augment | colour
    jitter) -> CHW -> normalise (random erasing follows per batch, in the loader)."""
    size = int(cfg.image_resize)
    ops: List[Any] = [
        # Decode + RandomResizedCrop in one op that decodes only the crop's part of a JPEG (PNG and
        # BMP are decoded whole): same box under the same seed, ~1.6x fewer decoding cycles per image
        V.RandomCropDecodeResize(
            size, scale=tuple(cfg.scale), ratio=tuple(cfg.ratio), interpolation=_interpolation(cfg.interpolation)
        ),
    ]
    ops += _flips(cfg)
    if cfg.auto_augment:
        ops += _auto_augment(cfg, mean, size)
    elif cfg.color_jitter:
        cj = float(cfg.color_jitter)
        ops.append(V.RandomColorAdjust(brightness=cj, contrast=cj, saturation=cj))
    ops += _normalize_chw(mean, std)
    return ops


def imagenet_eval(cfg: Any, mean: Sequence[float], std: Sequence[float]) -> List[Any]:
    """Encoded bytes -> resize shorter side to int(image_resize / crop_pct) -> centre crop -> CHW -> normalise."""
    size = int(cfg.image_resize)
    resize_to = int(math.floor(size / float(cfg.crop_pct)))
    return [
        PilDecode(),  # MindSpore's Decode, pixel for pixel, in 2/3 of the time (see the module docstring)
        V.Resize(resize_to, interpolation=_interpolation(cfg.interpolation)),
        V.CenterCrop(size),
    ] + _normalize_chw(mean, std)


def array_train(
    cfg: Any,
    mean: Sequence[float],
    std: Sequence[float],
    native_size: int,
    crop_after_resize: bool = False,
    allow_hflip: bool = True,
) -> List[Any]:
    """Training ops for a batch of uint8 N x H x W x C arrays of ``native_size`` pixels (CIFAR: 32,
    digits: 8), run a batch at a time (:mod:`visionzoo.data.batches`).

    CIFAR: RandomCrop(32, crop_padding) -> flips -> Resize(image_resize) if it differs -> normalise.
    digits (``crop_after_resize``): Resize(image_resize) -> RandomCrop(image_resize, crop_padding),
    so the padding is measured at the network's resolution; no horizontal flip (``allow_hflip``).
    """
    size = int(cfg.image_resize)
    pad = int(cfg.crop_padding)
    resize = [V.Resize(size, interpolation=_interpolation(cfg.interpolation))] if size != native_size else []
    crop = [BatchRandomCrop(size if crop_after_resize else native_size, pad)] if pad > 0 else []
    flips = _flips(cfg, allow_hflip=allow_hflip, batched=True)
    ops = resize + crop + flips if crop_after_resize else crop + flips + resize
    ops += [PerImage(op) for op in _auto_augment(cfg, mean, size)]
    return ops + _normalize_chw(mean, std, batched=True)


def array_eval(
    cfg: Any, mean: Sequence[float], std: Sequence[float], native_size: int, batched: bool = False
) -> List[Any]:
    """Eval ops for uint8 HWC arrays (``batched``: N x H x W x C batches): Resize(image_resize) only if
    it differs, normalise, CHW."""
    size = int(cfg.image_resize)
    ops: List[Any] = []
    if size != native_size:
        ops.append(V.Resize(size, interpolation=_interpolation(cfg.interpolation)))
    return ops + _normalize_chw(mean, std, batched=batched)


def decoded_eval(cfg: Any, height: int, width: int) -> List[Any]:
    """The recipe's eval transforms for one decoded uint8 H x W x 3 image (prediction).

    ImageNet-style recipes: :func:`imagenet_eval` without its Decode. Array recipes (cifar, digits,
    synthetic) expect square native images: a non-square image is centre cropped to its shorter
    side, then :func:`array_eval` at that size, so a 32x32 PNG of a CIFAR image gets exactly the
    validation tensor.
    """
    mean, std = resolve_mean_std(cfg, cfg.dataset)
    if cfg.dataset == "imagenet":
        ops = imagenet_eval(cfg, mean, std)
        return [op for op in ops if not isinstance(op, (V.Decode, PilDecode))]
    side = min(height, width)
    return ([V.CenterCrop(side)] if height != width else []) + array_eval(cfg, mean, std, side)
