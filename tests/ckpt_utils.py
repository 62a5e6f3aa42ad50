"""A tiny trained checkpoint for the validate/export/infer tests (digits, 16x16, a few seconds)."""

from __future__ import annotations

import os

from visionzoo.config import Config, load_config

#: The recipe of the tiny checkpoint, as command-line style values.
TINY_RECIPE = {
    "model": "vz_tiny_test",
    "dataset": "digits",
    "num_classes": "10",
    "image_resize": "16",
    "batch_size": "32",
    "num_parallel_workers": "1",
    "scheduler": "constant",
    "lr": "0.1",
    "warmup_epochs": "0",
    "epoch_size": "2",
    "weight_decay": "1e-4",
    "num_samples": "320",
    "device_target": "CPU",
    "seed": "3",
    "log_interval": "1000",
}


def tiny_config(ckpt_dir: str, **changes) -> Config:
    values = dict(TINY_RECIPE, ckpt_save_dir=str(ckpt_dir))
    values.update({k: str(v) for k, v in changes.items()})
    return load_config(None, values)


def write_recipe(path: str, cfg: Config) -> str:
    """Write ``cfg`` as a recipe file (what ``-c`` takes)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(cfg.dump_yaml())
    return str(path)


def train_tiny(ckpt_dir: str, **changes):
    """Train the tiny model for two epochs; returns (cfg, path of the last checkpoint)."""
    import tiny_model  # noqa: F401  registers vz_tiny_test
    from visionzoo.engine.trainer import Trainer

    cfg = tiny_config(ckpt_dir, **changes)
    result = Trainer(cfg).fit()
    assert os.path.isfile(result["checkpoint"])
    return cfg, result["checkpoint"]
