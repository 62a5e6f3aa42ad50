"""``build_dataset``: one entry point from a recipe to a batched, sharded MindSpore dataset.

Sharding is done by :class:`ShardSampler`, one sampler for every source:

* train: each epoch's order is the permutation MindSpore's ``RandomSampler`` draws for that epoch
  under dataset seed ``cfg.seed`` (:func:`~visionzoo.data.sampler_order.random_sampler_order`:
  MindCV's order, the same on every rank), pads it by repeating its head to a multiple of
  ``num_shards`` (so every rank runs the same number of steps), and gives rank ``k`` the positions
  ``k::num_shards``.
* val: no shuffle, no padding: rank ``k`` gets the indices ``k::num_shards``, so across ranks every
  sample is scored exactly once (MindSpore's DistributedSampler would repeat samples to even out
  shards).

Random augmentations draw from numpy generators seeded from ``cfg.seed``, the shard and the epoch
(batch ops, folder training) or from MindSpore's dataset seed, which :func:`build_dataset` sets to
``cfg.seed + shard_id`` when building a train split (``mindspore.dataset.config.set_seed``, a
process-wide setting read when a pipeline is built), so a pipeline is reproducible given the seed.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

import mindspore.dataset as ds
import mindspore.dataset.vision as V
import numpy as np

from ..errors import DataError
from . import transforms as tf
from .batches import ArrayBatches, split_random
from .cifar import CIFAR10, CIFAR100, find_cifar_root, load_cifar
from .digits import load_digits_split
from .erasing import BatchEraser
from .folder import EXTENSIONS, scan_image_folder
from .jpeg_train import fused_jpeg_train
from .mixup import BatchMixer
from .sampler_order import random_sampler_order
from .synthetic import DEFAULT_NUM_SAMPLES, make_synthetic

__all__ = ["DatasetBundle", "build_dataset", "ShardSampler", "SUPPORTED_DATASETS", "choose_workers"]

_logger = logging.getLogger(__name__)

SUPPORTED_DATASETS = ("imagenet", "cifar10", "cifar100", "digits", "synthetic")
#: Machines with at most this many CPUs map in-memory batches that are not resized (CIFAR at 32x32,
#: digits, synthetic) on one worker. Measured on 2 shared cores (benchmarks/results/
#: 2026-12-06_pipeline_epyc-avx512.json): one worker delivers 23k CIFAR images/s (a second: 27k, within
#: the spread), far more than a model trains on a few CPU cores, so the other core is left to the
#: model. Resized batches (CIFAR at 224: 1.4k -> 1.5k img/s) and JPEG folders get
#: min(num_parallel_workers, CPUs).
IN_MEMORY_ONE_WORKER_CPUS = 4


@dataclass
class DatasetBundle:
    """A batched dataset and what the trainer needs to know about it.

    ``dataset`` yields columns ``image`` (float32, N x C x H x W, normalised) and ``label`` (int32, N).
    ``num_samples`` and ``num_batches`` count this shard only.
    """

    dataset: Any
    num_samples: int
    num_batches: int
    num_classes: int
    class_names: List[str]
    batch_size: int
    sampler: Optional["ShardSampler"] = None
    seed: int = 0
    mixer: Optional[BatchMixer] = None  # batch mixup/cutmix (train only)
    eraser: Optional[BatchEraser] = None  # random erasing (train only)
    mixup_off_epoch: int = 0  # 0: mix in every epoch
    augmenters: List[Any] = field(default_factory=list)  # seeded batch ops of in-memory sources (train only)

    def set_epoch(self, epoch: int) -> None:
        """Position the next iterator at ``epoch`` (0-based): its shuffle order and augmentation seed.

        Call before ``dataset.create_tuple_iterator(num_epochs=1)``: each epoch then has its own
        order, the same on every rank and in a resumed run (MindSpore copies the sampler when an
        iterator starts, so the sampler's own epoch counter would restart at 0 every time).
        """
        if self.sampler is not None:
            self.sampler.epoch = int(epoch)
            self.sampler.epoch_indices(int(epoch))  # the permutation is drawn here, not inside the pipeline
            # augmentation draws from the engine's global seed: distinct per rank and per epoch
            aug_seed = self.seed + self.sampler.shard_id + 7919 * int(epoch)
            ds.config.set_seed(aug_seed)
            random.seed(aug_seed)  # MindSpore's Python vision ops (RandomErasing, auto_augment) draw from it
        shard = self.sampler.shard_id if self.sampler else 0
        if self.eraser is not None:
            self.eraser.reseed(self.seed + shard + 7919 * int(epoch) + 1)
        for k, op in enumerate(self.augmenters):
            op.reseed(_augmenter_seed(self.seed + shard, int(epoch), k))
        if self.mixer is not None:
            self.mixer.active = not (self.mixup_off_epoch and int(epoch) + 1 >= self.mixup_off_epoch)  # 1-based
            self.mixer.reseed(self.seed + (self.sampler.shard_id if self.sampler else 0) + 7919 * int(epoch))


def _augmenter_seed(base: int, epoch: int, k: int) -> int:
    """Seed of the ``k``-th numpy-seeded batch op in ``epoch``: apart from the eraser's and mixer's."""
    return base + 7919 * epoch + 101 * (k + 1)


class ShardSampler(ds.Sampler):
    """This rank's share of ``indices``; train reshuffles every epoch from ``(seed, epoch)``.

    ``indices`` are positions in the underlying source (already without corrupt files or samples
    left out by ``num_samples``). With ``pad`` the shard sizes are made equal by repeating the head of
    the epoch's order; without it shard ``k`` is exactly ``indices[k::num_shards]``.
    """

    def __init__(
        self,
        indices: np.ndarray,
        shard_id: int = 0,
        num_shards: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        pad: bool = False,
    ):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.shard_id = int(shard_id)
        self.num_shards = int(num_shards)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.pad = bool(pad)
        self.epoch = 0
        self._cached = None  # (epoch, permutation): computed outside the pipeline (set_epoch, __init__)
        super().__init__(num_samples=self.shard_size())
        if self.shuffle:
            self.epoch_indices(0)

    def shard_size(self) -> int:
        n = int(self.indices.size)
        if self.pad:
            return math.ceil(n / self.num_shards)
        return len(range(self.shard_id, n, self.num_shards))

    def __len__(self) -> int:
        return self.shard_size()

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The indices this shard reads in ``epoch`` (0-based)."""
        order = self.indices
        if self.shuffle:
            if self._cached is None or self._cached[0] != epoch:
                self._cached = (epoch, random_sampler_order(order.size, self.seed, epoch))
            order = order[self._cached[1]]
        if self.pad:
            total = math.ceil(order.size / self.num_shards) * self.num_shards
            if total > order.size:
                order = np.concatenate([order, np.resize(order, total - order.size)])
        return order[self.shard_id :: self.num_shards]

    def __iter__(self):
        order = self.epoch_indices(self.epoch)
        self.epoch += 1
        return iter(order.tolist())


def choose_workers(requested: int, in_memory: bool, cpus: Optional[int] = None) -> int:
    """Map workers: ``requested`` capped at the CPU count; 1 for cheap in-memory batches (``in_memory``:
    CIFAR, digits or synthetic batches that are not resized) on small machines.

    MindSpore refuses more workers than CPUs (recipes written for Ascend servers ask for 8 or more).
    """
    cpus = cpus or os.cpu_count() or 1
    workers = max(1, min(int(requested), cpus))
    if workers < requested:
        _logger.info("num_parallel_workers %d capped at %d (CPUs here: %d)", requested, workers, cpus)
    if in_memory and workers > 1 and cpus <= IN_MEMORY_ONE_WORKER_CPUS:
        _logger.info(
            "num_parallel_workers %d -> 1 for an in-memory dataset on %d CPUs (measured faster; "
            "leaves the other cores to the model)",
            workers,
            cpus,
        )
        workers = 1
    return workers


def _check_split(split: str, shard_id: int, num_shards: int) -> None:
    if split not in ("train", "val"):
        raise DataError(f"split must be 'train' or 'val', got {split!r}")
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise DataError(f"shard_id must be in [0, num_shards), got shard_id={shard_id}, num_shards={num_shards}")


@dataclass
class _Source:
    """What a dataset family hands the common code."""

    #: (sampler, workers, batch size, drop remainder) -> batched dataset: image float32 NCHW, label int32
    make: Callable[[ShardSampler, int, int, bool], Any]
    valid: np.ndarray  # usable positions in the source
    class_names: List[str]
    ops: List[Any]  # image ops (per batch for in-memory sources)
    in_memory: bool


def _array_source(images: np.ndarray, labels: np.ndarray, class_names: List[str], ops: List[Any]) -> _Source:
    """Arrays in memory, gathered and augmented a batch at a time (see :mod:`visionzoo.data.batches`)."""

    def make(sampler: ShardSampler, workers: int, batch_size: int, drop: bool) -> Any:
        source = ArrayBatches(images, labels, sampler, batch_size, drop)
        dataset = ds.GeneratorDataset(
            source, column_names=["image", "label"], shuffle=False, num_parallel_workers=1, python_multiprocessing=False
        )
        in_order, rest = split_random(ops)
        if in_order:  # random Python ops: one worker, so batches draw in order
            dataset = dataset.map(operations=in_order, input_columns="image", num_parallel_workers=1)
        if rest:
            dataset = dataset.map(operations=rest, input_columns="image", num_parallel_workers=workers)
        return dataset

    return _Source(make, np.arange(labels.size), class_names, ops, True)


def _cifar_source(cfg: Any, split: str, spec) -> _Source:
    data_dir = str(cfg.data_dir)
    if spec is CIFAR10 and cfg.dataset_download and find_cifar_root(data_dir, spec) is None:
        from .download import download_cifar10

        download_cifar10(data_dir)
    images, labels, names = load_cifar(data_dir, spec, split)
    mean, std = tf.resolve_mean_std(cfg, spec.name)
    ops = tf.array_train(cfg, mean, std, 32) if split == "train" else tf.array_eval(cfg, mean, std, 32, batched=True)
    return _array_source(images, labels, names, ops)


def _digits_source(cfg: Any, split: str) -> _Source:
    images, labels, names = load_digits_split(split)
    mean, std = tf.resolve_mean_std(cfg, "digits")
    if split == "train":
        ops = tf.array_train(cfg, mean, std, 8, crop_after_resize=True, allow_hflip=False)
    else:
        ops = tf.array_eval(cfg, mean, std, 8, batched=True)
    return _array_source(images, labels, names, ops)


def _synthetic_source(cfg: Any, split: str) -> _Source:
    n = int(cfg.num_samples or DEFAULT_NUM_SAMPLES)
    size = int(cfg.image_resize)
    images, labels, names = make_synthetic(n, size, int(cfg.num_classes), int(cfg.seed), split)
    mean, std = tf.resolve_mean_std(cfg, "synthetic")
    # images are already network-sized noise: only the normalisation a real pipeline ends with
    return _array_source(images, labels, names, tf.array_eval(cfg, mean, std, size, batched=True))


def _folder_source(cfg: Any, split: str) -> _Source:
    split_name = cfg.train_split if split == "train" else cfg.val_split
    index = scan_image_folder(str(cfg.data_dir), split_name)
    mean, std = tf.resolve_mean_std(cfg, "imagenet")
    fused = fused_jpeg_train(cfg, mean, std) if split == "train" else None
    if fused is not None:
        ops: List[Any] = [fused]
    else:
        ops = tf.imagenet_train(cfg, mean, std) if split == "train" else tf.imagenet_eval(cfg, mean, std)

    def make(sampler: ShardSampler, workers: int, batch_size: int, drop: bool) -> Any:
        dataset = ds.ImageFolderDataset(
            index.root,
            extensions=list(EXTENSIONS),
            class_indexing=index.class_indexing,
            sampler=sampler,
            num_parallel_workers=workers,
        )
        if fused is not None:  # one C++ call a batch decodes and augments (data/jpeg_train.py)
            return dataset.batch(
                batch_size,
                drop_remainder=drop,
                per_batch_map=fused,
                input_columns=["image", "label"],
                num_parallel_workers=workers,
            )
        # labels leave ImageFolderDataset as int32 already: no TypeCast map (a thread and a queue fewer)
        dataset = dataset.map(operations=ops, input_columns="image", num_parallel_workers=workers)
        return dataset.batch(batch_size, drop_remainder=drop)

    return _Source(make, index.valid, index.class_names, ops, False)


def _source(cfg: Any, split: str) -> _Source:
    name = cfg.dataset
    if name == "cifar10":
        return _cifar_source(cfg, split, CIFAR10)
    if name == "cifar100":
        return _cifar_source(cfg, split, CIFAR100)
    if name == "digits":
        return _digits_source(cfg, split)
    if name == "synthetic":
        return _synthetic_source(cfg, split)
    if name == "imagenet":
        return _folder_source(cfg, split)
    raise DataError(f"unknown dataset {name!r}; supported datasets: {', '.join(SUPPORTED_DATASETS)}")


def build_dataset(cfg: Any, split: str = "train", shard_id: int = 0, num_shards: int = 1) -> DatasetBundle:
    """Build this shard of ``split`` (``"train"`` or ``"val"``) of the recipe's dataset.

    train: shuffled with ``cfg.seed`` when ``cfg.shuffle``, augmented, batched by ``cfg.batch_size``
    with ``cfg.drop_remainder``; shards padded to equal size. val: in order, eval transforms, batched
    by ``cfg.eval_batch_size`` (or ``cfg.batch_size``), never dropping the remainder; shard ``k`` holds
    samples ``k::num_shards``, so every sample is scored exactly once across shards. Raises
    :class:`~visionzoo.errors.DataError` for missing or malformed data and for a class count that
    differs from ``cfg.num_classes``.
    """
    _check_split(split, shard_id, num_shards)
    if int(cfg.in_channels) != 3:
        raise DataError(
            f"in_channels is {cfg.in_channels} but every visionzoo pipeline yields 3-channel RGB images "
            "(digits are replicated to 3 channels); set in_channels 3"
        )
    train = split == "train"
    source = _source(cfg, split)
    num_classes = len(source.class_names)
    if num_classes != int(cfg.num_classes):
        raise DataError(
            f"{cfg.dataset} {split} data at {cfg.data_dir!r} has {num_classes} classes but "
            f"num_classes is {cfg.num_classes}; set num_classes {num_classes} (or point data_dir "
            "at the intended data)"
        )
    indices = source.valid
    if train and cfg.num_samples and cfg.dataset != "synthetic" and cfg.num_samples < indices.size:
        # a fixed random subset (not the head, which is one class for a sorted folder)
        keep = np.random.default_rng(int(cfg.seed)).choice(indices.size, int(cfg.num_samples), replace=False)
        indices = indices[np.sort(keep)]
    if indices.size < num_shards and not train:
        raise DataError(
            f"{cfg.dataset} {split} has {indices.size} samples, fewer than num_shards={num_shards}; "
            "use fewer devices for evaluation"
        )
    # eval_shuffle only reorders validation: the metrics sum over every sample either way
    shuffle = bool(cfg.shuffle) if train else bool(getattr(cfg, "eval_shuffle", False))
    sampler = ShardSampler(indices, shard_id, num_shards, shuffle=shuffle, seed=int(cfg.seed), pad=train)
    num_samples = sampler.shard_size()
    if train:
        # random ops (crop, flip, jitter, erasing) draw from the dataset engine's seed; offset by the
        # shard so ranks do not apply the same sequence of crops (the order above uses cfg.seed alone)
        ds.config.set_seed(int(cfg.seed) + shard_id)
        random.seed(int(cfg.seed) + shard_id)  # Python vision ops (RandomErasing, auto_augment): see set_epoch
    # in-memory batches that are not resized are cheap: a second worker does not pay (see the constant)
    light = source.in_memory and not any(isinstance(op, V.Resize) for op in source.ops)
    workers = choose_workers(int(cfg.num_parallel_workers), light)
    if train:
        batch_size, drop = int(cfg.batch_size), bool(cfg.drop_remainder)
    else:
        batch_size, drop = int(cfg.eval_batch_size or cfg.batch_size), False
    augmenters = [op for op in source.ops if hasattr(op, "reseed")]  # numpy-seeded batch ops
    for k, op in enumerate(augmenters):
        op.reseed(_augmenter_seed(int(cfg.seed) + shard_id, 0, k))
    dataset = source.make(sampler, workers, batch_size, drop)
    eraser = None
    if train and cfg.re_prob > 0:  # after normalisation, per image, before mixing (MindCV's order)
        eraser = BatchEraser(
            min(float(cfg.re_prob), 1.0),
            cfg.re_scale,
            cfg.re_ratio,
            tf.erasing_value(cfg),
            int(cfg.re_max_attempts),
            seed=int(cfg.seed) + shard_id + 1,
        )
        dataset = dataset.map(operations=eraser, input_columns=["image"], num_parallel_workers=1)
    mixer = None
    if train and (cfg.mixup > 0 or cfg.cutmix > 0):
        mixer = BatchMixer(num_classes, cfg.mixup, cfg.cutmix, prob=cfg.cutmix_prob, seed=int(cfg.seed) + shard_id)
        dataset = dataset.map(operations=mixer, input_columns=["image", "label"], num_parallel_workers=1)
    num_batches = num_samples // batch_size if drop else math.ceil(num_samples / batch_size)
    if num_batches == 0:
        raise DataError(
            f"{cfg.dataset} {split}: {num_samples} samples in this shard make no full batch of "
            f"{batch_size} with drop_remainder True; lower batch_size or set drop_remainder False"
        )
    _logger.info(
        "%s %s shard %d/%d: %d samples, %d batches of %d, %d classes",
        cfg.dataset,
        split,
        shard_id,
        num_shards,
        num_samples,
        num_batches,
        batch_size,
        num_classes,
    )
    return DatasetBundle(
        dataset=dataset,
        num_samples=num_samples,
        num_batches=num_batches,
        num_classes=num_classes,
        class_names=list(source.class_names),
        batch_size=batch_size,
        sampler=sampler if train else None,
        seed=int(cfg.seed),
        mixer=mixer,
        eraser=eraser,
        mixup_off_epoch=int(getattr(cfg, "mixup_off_epoch", 0) or 0),
        augmenters=augmenters if train else [],
    )
