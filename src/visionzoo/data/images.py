"""Image files for prediction: listing a path, decoding a file, accepting in-memory images.

The extensions are :data:`visionzoo.constants.IMAGE_EXTENSIONS` (any case), the same list the
folder datasets read; decoding uses MindSpore's decoder, the one the validation pipeline uses.
"""

from __future__ import annotations

import os
from typing import Any, List, Union

import numpy as np

from ..constants import IMAGE_EXTENSIONS
from ..errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "is_image_name", "list_images", "decode_file", "as_rgb_array"]

_NAMES = ", ".join(IMAGE_EXTENSIONS)


def is_image_name(name: str) -> bool:
    """True for a file name with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(path: Union[str, "os.PathLike[str]"]) -> List[str]:
    """``path`` itself when it is a file; the image files under a folder (recursive, sorted)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DataError("image path not found", path=path, hint=f"pass an image file ({_NAMES}) or a folder of them")
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if is_image_name(f)]
    if not found:
        raise DataError(f"no images ({_NAMES}) in this folder or its sub-folders", path=path)
    return found


def decode_file(path: str) -> np.ndarray:
    """uint8 H x W x 3 (RGB) with MindSpore's decoder."""
    import mindspore.dataset.vision as V

    try:
        with open(path, "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read image ({e.strerror or e})", path=path) from None
    if raw.size == 0:
        raise DataError("empty file, not an image", path=path)
    try:
        return np.asarray(V.Decode()(raw))
    except RuntimeError:
        raise DataError("not a readable image (cannot decode it as JPEG, PNG or BMP)", path=path) from None


def as_rgb_array(image: Any, index: int) -> np.ndarray:
    """A PIL image or a uint8 HW / HWC (1, 3 or 4 channels) array as uint8 H x W x 3."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image.Image
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DataError(
            f"image {index}: in-memory images must be uint8 (0-255) arrays, got {arr.dtype}",
            hint="pass the decoded pixels, not normalised tensors",
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise DataError(f"image {index}: expected an H x W or H x W x C (C = 1, 3 or 4) array, got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])
