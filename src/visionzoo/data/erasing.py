"""Random erasing (``re_prob``, ``re_scale``, ``re_ratio``, ``re_value``, ``re_max_attempts``), reproducibly.

The algorithm of MindSpore's ``vision.RandomErasing`` (Zhong et al. 2017), which MindCV uses: with
probability ``re_prob`` per image, up to ``re_max_attempts`` times draw an area fraction
``s ~ U(re_scale)`` and an aspect ``r`` with ``log r ~ U(log re_ratio)``; the box is
``h = round(sqrt(s * H * W * r))``, ``w = round(sqrt(s * H * W / r))``; the first box that fits
(``h < H`` and ``w < W``) is placed uniformly and filled with ``re_value`` (a number, in normalised
units, as it runs after normalisation) or per-pixel standard normal noise (``'random'``).

Why not MindSpore's op: it is a Python op drawing from Python's global ``random``, and the map's
worker threads draw from it in whatever order they run, so two runs with the same seed erase
different boxes (measured on MindCV 0.3.0 with 2 workers: first batches differ by up to 2.6).
Here erasing runs once per batch, on one worker, from a numpy generator seeded per epoch.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import numpy as np

__all__ = ["BatchEraser"]


class BatchEraser:
    """Callable ``images N x C x H x W float32 -> images`` with boxes erased."""

    def __init__(
        self,
        prob: float,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: Union[float, str] = 0.0,
        max_attempts: int = 10,
        seed: int = 0,
    ) -> None:
        self.prob = float(prob)
        self.scale = (float(scale[0]), float(scale[1]))
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.value = value
        self.max_attempts = int(max_attempts)
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def box(self, height: int, width: int) -> Union[Tuple[int, int, int, int], None]:
        """(top, left, h, w) of one box, or None when no attempt fits."""
        area = height * width
        for _ in range(self.max_attempts):
            target = self.rng.uniform(*self.scale) * area
            aspect = math.exp(self.rng.uniform(*self.log_ratio))
            h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < h < height and 0 < w < width:
                return int(self.rng.integers(0, height - h + 1)), int(self.rng.integers(0, width - w + 1)), h, w
        return None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.array(images, copy=True)
        height, width = images.shape[-2:]
        for k in range(images.shape[0]):
            if self.rng.random() >= self.prob:
                continue
            found = self.box(height, width)
            if found is None:
                continue
            top, left, h, w = found
            if self.value == "random":
                fill = self.rng.standard_normal((images.shape[1], h, w)).astype(images.dtype)
            else:
                fill = np.asarray(float(self.value), dtype=images.dtype)
            images[k, :, top : top + h, left : left + w] = fill
        return images
