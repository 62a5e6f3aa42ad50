"""Constants shared by the data pipelines, the model specs and prediction (each defined here once)."""

from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "CIFAR_MEAN", "CIFAR_STD", "DIGITS_MEAN", "DIGITS_STD", "IMAGE_EXTENSIONS"]

# Normalisation constants in 0-255 units (the data pipeline's convention, as MindCV's).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
CIFAR_MEAN = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
CIFAR_STD = (0.2023 * 255, 0.1994 * 255, 0.2010 * 255)
# scikit-learn's digits rendered as RGB (measured over its training split).
DIGITS_MEAN = (0.3053 * 255,) * 3
DIGITS_STD = (0.3759 * 255,) * 3

#: Image file extensions (lower case) that visionzoo reads: MindSpore's decoder reads JPEG, PNG and BMP.
#: Folder datasets and prediction both use this list; see :func:`visionzoo.data.images.is_image_file`.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

#: Device names a run or a model can target (MindSpore's ``device_target`` values).
DEVICES = ("Ascend", "GPU", "CPU")
