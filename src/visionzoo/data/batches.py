"""In-memory datasets (CIFAR, digits, synthetic) gathered and augmented a batch at a time.

Why: a row-at-a-time Python source (``NumpySlicesDataset``) cost ~230 us per 32x32 image, 2.4x
MindCV's C++ ``Cifar10Dataset`` reader (benchmarks/results/2026-12-06_pipeline_epyc-avx512.log). Here a
Python source yields whole batches gathered with one numpy index (this shard's epoch order from
:class:`~visionzoo.data.loader.ShardSampler`), and the augmentations run per batch:

* :class:`BatchRandomCrop` and :class:`BatchFlip`: MindSpore's ``RandomCrop(size, padding)`` (zero
  padding, offsets uniform over every position) and ``RandomHorizontalFlip``/``RandomVerticalFlip``
  per image, vectorised over the batch, drawing from a numpy generator seeded per epoch (tests
  compare each image with MindSpore's ``Pad`` + ``Crop`` / ``HorizontalFlip`` at the drawn offsets);
* MindSpore's ``Resize`` accepts a batch (N x H x W x C) and gives every image what it gives it alone;
* :class:`BatchNormalizeCHW` is ``HWC2CHW`` + ``Normalize`` in numpy, bit for bit MindSpore's numbers
  (``(x - mean) / std`` in float32), ~17x faster than MindSpore's ``Normalize`` on a batch;
* a Python per-image op (mindcv's auto_augment policies) runs over the batch with :class:`PerImage`.

Random Python ops run on one map worker, so batches draw in order: the same seed gives the same
batches whatever ``num_parallel_workers`` is; the C++ ops after the last random op use the workers.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Sequence, Tuple

import numpy as np

__all__ = ["ArrayBatches", "BatchRandomCrop", "BatchFlip", "BatchNormalizeCHW", "PerImage", "split_random"]


class ArrayBatches:
    """Iterable source: this shard's batches ``(uint8 N x H x W x C, int32 N)`` in the sampler's order.

    Every pass is the next epoch of ``sampler`` (``sampler.epoch``, which
    :meth:`~visionzoo.data.loader.DatasetBundle.set_epoch` positions), so a multi-epoch iterator reads
    each epoch's own order, as MindSpore's samplers do.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, sampler: Any, batch_size: int, drop_remainder: bool):
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int32)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_remainder = bool(drop_remainder)

    def __len__(self) -> int:
        n = self.sampler.shard_size()
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        order = self.sampler.epoch_indices(self.sampler.epoch)
        self.sampler.epoch += 1
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.images[index], self.labels[index]


class _Seeded:
    """A random batch op: draws from its own numpy generator, reseeded per epoch by the bundle."""

    random = True

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


class BatchRandomCrop(_Seeded):
    """MindSpore's ``RandomCrop(size, padding=padding)`` (zero padding) applied to each image of a
    uint8 N x H x W x C batch; ``last`` holds the (top, left) offsets of the last batch."""

    def __init__(self, size: int, padding: int, seed: int = 0) -> None:
        super().__init__(seed)
        self.size, self.padding = int(size), int(padding)
        self.last = np.zeros((0, 2), dtype=np.int64)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        p, s = self.padding, self.size
        padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
        n, height, width = padded.shape[:3]
        # one (top, left) pair per image from uniform doubles (one generator word each, never buffered),
        # so the crops do not depend on how the images are split into batches
        draws = self.rng.random((n, 2)) * np.array([height - s + 1, width - s + 1])
        top, left = draws.astype(np.int64).T
        self.last = np.stack([top, left], axis=1)
        out = np.empty((n, s, s) + padded.shape[3:], dtype=padded.dtype)
        for i in range(n):  # one slice copy per image: ~8x faster than one fancy index over the batch
            out[i] = padded[i, top[i] : top[i] + s, left[i] : left[i] + s]
        return out


class BatchFlip(_Seeded):
    """MindSpore's ``RandomHorizontalFlip(prob)`` (``axis=2``) or ``RandomVerticalFlip(prob)``
    (``axis=1``) applied to each image of an N x H x W x C batch; ``last`` marks the flipped images."""

    def __init__(self, prob: float, axis: int, seed: int = 0) -> None:
        super().__init__(seed)
        self.prob, self.axis = float(prob), int(axis)
        self.last = np.zeros(0, dtype=bool)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        flip = self.rng.random(images.shape[0]) < self.prob
        self.last = flip
        if not flip.any():
            return images
        out = np.array(images, copy=True)
        for i in np.flatnonzero(flip):
            out[i] = np.flip(images[i], axis=self.axis - 1)
        return out


class BatchNormalizeCHW:
    """uint8 N x H x W x C -> float32 N x C x H x W, ``(x - mean) / std`` per channel (0-255 units).

    MindSpore's ``HWC2CHW`` + ``Normalize`` per image, bit for bit (both compute in float32 and divide).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        n, height, width, channels = images.shape
        out = np.empty((n, channels, height, width), dtype=np.float32)
        out[...] = images.transpose(0, 3, 1, 2)
        out -= self.mean
        out /= self.std
        return out


class PerImage:
    """A per-image op (uint8 H x W x C -> same) applied to each image of a batch in turn."""

    random = True  # the ops wrapped here (auto_augment policies) draw from Python's ``random``

    def __init__(self, op: Any) -> None:
        self.op = op

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(self.op(image)) for image in images])


def split_random(ops: Sequence[Any]) -> Tuple[List[Any], List[Any]]:
    """(ops up to the last random Python op, the rest): the first part runs on one worker, in order."""
    last = max((i for i, op in enumerate(ops) if getattr(op, "random", False)), default=-1)
    return list(ops[: last + 1]), list(ops[last + 1 :])
