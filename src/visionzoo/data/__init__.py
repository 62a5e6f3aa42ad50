"""Data pipelines: CIFAR-10/100 binaries, ImageNet-style folders, scikit-learn digits, synthetic data.

``build_dataset(cfg, split, shard_id, num_shards)`` returns a :class:`DatasetBundle` whose dataset
yields batches of ``image`` (float32 NCHW, normalised) and ``label`` (int32).
"""

from .loader import SUPPORTED_DATASETS, DatasetBundle, build_dataset

__all__ = ["build_dataset", "DatasetBundle", "SUPPORTED_DATASETS"]
