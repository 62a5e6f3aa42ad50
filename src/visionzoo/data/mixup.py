"""Batch-level mixup and cutmix with soft labels (MindCV's ``mixup`` / ``cutmix`` / ``cutmix_prob``).

MindCV applies its Mixup (timm's, batch mode) after batching: with probability ``cutmix_prob`` a batch
is mixed at all; when both alphas are on, cutmix is chosen with probability 0.5, else mixup. The batch
is mixed with itself reversed (image ``i`` with image ``N-1-i``) with one ``lam ~ Beta(alpha, alpha)``:

* mixup: ``x = lam * x + (1 - lam) * x[::-1]``
* cutmix: a box of area ``(1 - lam) * H * W`` centred at a uniform point (clipped to the image) is
  pasted from ``x[::-1]``; ``lam`` becomes ``1 - clipped area / (H * W)``

Labels become ``lam * onehot(y) + (1 - lam) * onehot(y[::-1])`` (float32, N x classes). Label
smoothing is not applied here: the loss applies ``label_smoothing`` to these soft targets, as MindCV
does (its Mixup gets ``label_smoothing=0``). A batch left unmixed still gets one-hot float labels,
so every batch has the same column types. Random draws come from a numpy generator seeded by the
recipe, so a run is reproducible; the op runs on one worker so batches draw in order.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["BatchMixer"]


class BatchMixer:
    """Callable ``(images N x C x H x W float32, labels N int) -> (mixed images, soft labels)``."""

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.num_classes = int(num_classes)
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.rng = np.random.default_rng(seed)
        self.active = True  # switched off from mixup_off_epoch on (DatasetBundle.set_epoch)
        self.last: Tuple[str, float] = ("none", 1.0)  # (kind, lam) of the last batch, for tests and logs

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def onehot(self, labels: np.ndarray) -> np.ndarray:
        out = np.zeros((labels.shape[0], self.num_classes), dtype=np.float32)
        out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1.0
        return out

    def draw(self) -> Tuple[str, float]:
        """(kind, lam) for the next batch: kind is 'none', 'mixup' or 'cutmix'."""
        if not self.active or self.rng.random() >= self.prob or (self.mixup_alpha <= 0 and self.cutmix_alpha <= 0):
            return "none", 1.0
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            kind = "cutmix" if self.rng.random() < self.switch_prob else "mixup"
        else:
            kind = "cutmix" if self.cutmix_alpha > 0 else "mixup"
        alpha = self.cutmix_alpha if kind == "cutmix" else self.mixup_alpha
        return kind, float(self.rng.beta(alpha, alpha))

    def box(self, lam: float, height: int, width: int) -> Tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of a box of area (1 - lam) * H * W around a uniform centre, clipped."""
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(self.rng.integers(0, height)), int(self.rng.integers(0, width))
        y0, y1 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        x0, x1 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        return int(y0), int(y1), int(x0), int(x1)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images)
        target = self.onehot(np.asarray(labels))
        kind, lam = self.draw()
        if kind == "mixup":
            images = (images * lam + images[::-1] * (1.0 - lam)).astype(images.dtype)
        elif kind == "cutmix":
            height, width = images.shape[-2:]
            y0, y1, x0, x1 = self.box(lam, height, width)
            images = images.copy()
            images[..., y0:y1, x0:x1] = images[::-1][..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
        self.last = (kind, lam)
        if kind != "none":
            target = lam * target + (1.0 - lam) * target[::-1]
        return images, target.astype(np.float32)
