"""CIFAR-10 and CIFAR-100 binary files, decoded once into numpy arrays.

Layouts (the official "binary version" archives):

* CIFAR-10: ``cifar-10-batches-bin/data_batch_{1..5}.bin`` (train), ``test_batch.bin`` (val); each
  record is 1 label byte then 3072 bytes (R, G, B planes of 32x32).
* CIFAR-100: ``cifar-100-binary/train.bin``, ``test.bin``; each record is a coarse label byte, a fine
  label byte, then 3072 bytes. The fine label (100 classes) is used.

Any whole number of records is accepted (MindSpore's own Cifar10Dataset insists on 10000 per file).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..errors import DataError

__all__ = ["CifarSpec", "CIFAR10", "CIFAR100", "CIFAR10_CLASSES", "find_cifar_root", "load_cifar"]

_logger = logging.getLogger(__name__)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_PIXELS = 32 * 32 * 3


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant keeps its files and how its records look."""

    name: str
    folder: str
    train_files: Tuple[str, ...]
    val_files: Tuple[str, ...]
    label_bytes: int  # bytes before the pixels
    label_offset: int  # which of those bytes is the label used
    num_classes: int

    @property
    def record_size(self) -> int:
        return self.label_bytes + _PIXELS


CIFAR10 = CifarSpec(
    "cifar10",
    "cifar-10-batches-bin",
    tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    ("test_batch.bin",),
    label_bytes=1,
    label_offset=0,
    num_classes=10,
)
CIFAR100 = CifarSpec(
    "cifar100", "cifar-100-binary", ("train.bin",), ("test.bin",), label_bytes=2, label_offset=1, num_classes=100
)


def find_cifar_root(data_dir: str, spec: CifarSpec) -> Optional[str]:
    """The folder holding ``spec``'s files: ``data_dir/<spec.folder>`` or ``data_dir`` itself; None if neither."""
    for candidate in (os.path.join(data_dir, spec.folder), data_dir):
        if os.path.isdir(candidate) and any(
            os.path.isfile(os.path.join(candidate, f)) for f in spec.train_files + spec.val_files
        ):
            return candidate
    return None


def _read_records(path: str, spec: CifarSpec) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 32 x 32 x 3, labels int32 N) from one binary file."""
    size = os.path.getsize(path)
    if size == 0 or size % spec.record_size:
        raise DataError(
            f"{path}: {size} bytes is not a whole number of {spec.name} records of {spec.record_size} bytes "
            f"({spec.label_bytes} label byte(s) + 3072 pixel bytes); the file is truncated or not {spec.name} binary"
        )
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, spec.record_size)
    labels = raw[:, spec.label_offset].astype(np.int32)
    # R, G, B planes (N, 3, 32, 32) -> HWC (N, 32, 32, 3), contiguous for the pipeline
    images = np.ascontiguousarray(raw[:, spec.label_bytes :].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    if labels.size and labels.max() >= spec.num_classes:
        raise DataError(
            f"{path}: label {int(labels.max())} is out of range for {spec.name} "
            f"({spec.num_classes} classes); the file is not {spec.name} binary"
        )
    return images, labels


def _class_names(root: str, spec: CifarSpec) -> List[str]:
    if spec.num_classes == 10:
        return list(CIFAR10_CLASSES)
    path = os.path.join(root, "fine_label_names.txt")
    if os.path.isfile(path):
        with open(path, "r", encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == spec.num_classes:
            return names
        _logger.warning("%s lists %d names, expected %d; using class_0..", path, len(names), spec.num_classes)
    return [f"class_{i}" for i in range(spec.num_classes)]


def load_cifar(data_dir: str, spec: CifarSpec, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Read one split (``"train"`` or ``"val"``) of a CIFAR variant from ``data_dir``.

    Returns (images uint8 NHWC, labels int32, class names). Raises DataError naming the missing or
    malformed file.
    """
    root = find_cifar_root(data_dir, spec)
    files = spec.train_files if split == "train" else spec.val_files
    if root is None:
        raise DataError(
            f"{data_dir}: no {spec.name} binary files found; expected {os.path.join(spec.folder, files[0])} "
            f"under it (or data_dir pointing at {spec.folder}/ itself)"
            + ("; set dataset_download True to fetch it" if spec is CIFAR10 else "")
        )
    images, labels = [], []
    for name in files:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise DataError(f"{path}: missing; {spec.name} {split} needs {', '.join(files)} in {root}")
        x, y = _read_records(path, spec)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels), _class_names(root, spec)
