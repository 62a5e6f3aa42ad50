"""Random images and labels for benchmarks: no files, deterministic from the seed."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["make_synthetic", "DEFAULT_NUM_SAMPLES"]

#: Samples per split when ``cfg.num_samples`` is unset.
DEFAULT_NUM_SAMPLES = 1024


def make_synthetic(
    num_samples: int, image_size: int, num_classes: int, seed: int, split: str
) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """(images uint8 N x S x S x 3, labels int32 N, class names); train and val differ (seeded apart)."""
    rng = np.random.default_rng([int(seed), 0 if split == "train" else 1])
    images = rng.integers(0, 256, size=(num_samples, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=num_samples).astype(np.int32)
    return images, labels, [f"class_{i}" for i in range(num_classes)]
