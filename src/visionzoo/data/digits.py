"""scikit-learn's handwritten digits: 1797 8x8 greyscale images of 0-9, shipped inside scikit-learn.

The demo dataset: no download, trains to >95% top-1 in a minute on a CPU. The split is fixed (it does
not follow ``cfg.seed``) so that scores are comparable between runs: per class, a permutation drawn
with seed :data:`SPLIT_SEED` puts ``round(0.2 * n_class)`` images in val and the rest in train, giving
**1438 train / 359 val** images with every class within one image of 80/20.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import DataError

__all__ = ["load_digits_split", "SPLIT_SEED", "VAL_FRACTION", "DIGITS_CLASSES"]

SPLIT_SEED = 0
VAL_FRACTION = 0.2
DIGITS_CLASSES = [str(i) for i in range(10)]


def _load_raw() -> Tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "dataset 'digits' needs scikit-learn (it ships the images); install it with: pip install 'visionzoo[demo]'"
        ) from None
    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def split_indices(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Stratified (train, val) index arrays, sorted, fixed by :data:`SPLIT_SEED`."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(VAL_FRACTION * idx.size))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def load_digits_split(split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """(images uint8 N x 8 x 8 x 3 in 0-255, labels int32, class names) of ``"train"`` or ``"val"``."""
    images, labels = _load_raw()
    train_idx, val_idx = split_indices(labels)
    idx = train_idx if split == "train" else val_idx
    # values 0-16 -> 0-255, one grey plane copied to R, G, B
    pixels = np.clip(np.round(images[idx] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    pixels = np.ascontiguousarray(np.repeat(pixels[..., None], 3, axis=-1))
    return pixels, labels[idx].astype(np.int32), list(DIGITS_CLASSES)


def write_digits_image_folder(root: str, size: int = 32, val_fraction: float = 0.2, seed: int = 0) -> Tuple[int, int]:
    """Write scikit-learn's digits as an ImageFolder ``root/{train,val}/<digit>/<index>.png``.

    Each 8x8 image (0-16) is scaled to 0-255, upsampled to ``size`` x ``size`` with PIL's bilinear
    filter and saved as an RGB PNG. The split is scikit-learn's stratified ``train_test_split``
    (``test_size=val_fraction``, ``random_state=seed``): 1437 train / 360 val by default, the split
    the MindCV fidelity benchmark uses. Returns (train count, val count).
    """
    import os

    from PIL import Image
    from sklearn.model_selection import train_test_split

    images, labels = _load_raw()
    idx = np.arange(labels.size)
    train_idx, val_idx = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=labels)
    for split, chosen in (("train", train_idx), ("val", val_idx)):
        for i in sorted(chosen.tolist()):
            folder = os.path.join(root, split, str(int(labels[i])))
            os.makedirs(folder, exist_ok=True)
            grey = np.clip(np.round(images[i] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
            img = Image.fromarray(grey, mode="L").resize((size, size), Image.BILINEAR).convert("RGB")
            img.save(os.path.join(folder, f"{i:04d}.png"))
    return int(train_idx.size), int(val_idx.size)
