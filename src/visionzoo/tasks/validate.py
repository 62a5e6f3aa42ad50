"""Scoring a checkpoint: which checkpoint, at which precision, loaded how strictly, on which data."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import mindspore as ms
from mindspore import nn

from ..checkpoint import best_checkpoint, load_checkpoint
from ..config import Config
from ..data import build_dataset
from ..distributed import setup_context
from ..engine.build import build_network, tag_weight
from ..engine.evaluate import evaluate
from ..errors import CheckpointError, CheckpointNotFoundError, ConfigError

__all__ = [
    "resolve_checkpoint",
    "eval_precision",
    "load_for_eval",
    "run_validation",
    "tag_weight",
    "with_tag_preprocessing",
]

#: Recipe keys a weight tag's preprocessing sets (see WeightSpec.preprocessing).
PREPROCESSING_KEYS = ("image_resize", "crop_pct", "interpolation", "mean", "std")


def with_tag_preprocessing(cfg: Config) -> Config:
    """``cfg`` with its weight tag's eval preprocessing (input size, crop_pct, interpolation,
    mean/std) for every such key the recipe leaves at its schema default; a value the user set
    (in the recipe or on the command line) is kept. Unchanged without a tag."""
    weight = tag_weight(cfg)
    if weight is None:
        return cfg
    defaults = Config()
    changes = {
        k: v
        for k, v in weight.preprocessing.items()
        if getattr(cfg, k) == getattr(defaults, k) and getattr(cfg, k) != v
    }
    return cfg.replace(**changes) if changes else cfg


def resolve_checkpoint(cfg: Config) -> str:
    """``cfg.ckpt_path``, or with 'auto' the best (else the latest) checkpoint in ``cfg.ckpt_save_dir``."""
    import os

    path = cfg.ckpt_path
    if not path:
        raise ConfigError(
            "no checkpoint to score",
            hint="pass --ckpt_path CKPT (or --ckpt_path auto for the best/latest checkpoint in ckpt_save_dir)",
        )
    if path == "auto":
        found = best_checkpoint(cfg.ckpt_save_dir, cfg.model)
        if not found:
            raise CheckpointError(
                f"--ckpt_path auto found no {cfg.model} checkpoint",
                path=cfg.ckpt_save_dir,
                hint="train first or pass --ckpt_path CKPT",
            )
        path = found
    if not os.path.isfile(path):
        raise CheckpointNotFoundError("checkpoint file not found", path=path, hint="pass an existing .ckpt file")
    return path


def eval_precision(cfg: Config, cli_overrides: Dict[str, Any]) -> Config:
    """The config a scoring/export/inference script runs with: ``val_amp_level`` decides precision.

    The recipe's ``amp_level`` is a training setting and is ignored; ``--amp_level X`` typed on the
    script's own command line (``cli_overrides``) without ``--val_amp_level`` means ``val_amp_level X``.
    """
    if "amp_level" in cli_overrides and "val_amp_level" not in cli_overrides:
        return cfg.replace(val_amp_level=cfg.amp_level)
    return cfg


def load_for_eval(cfg: Config, path: str) -> nn.Cell:
    """Build ``cfg.model`` and load ``path`` strictly: every parameter, the classifier included, must fit.

    A misfit raises CheckpointError naming the parameters (with both shapes) and the recipe to use.
    """
    network = build_network(cfg, amp_level="O0", load_weights=False)
    # classifier=(): a head of another class count is a misfit here, not a head to re-initialise;
    # ema: a checkpoint trained with ema holds the averages as ema.<name>: score those (one read of the file)
    load_checkpoint(
        network,
        path,
        strict=True,
        classifier=(),
        ema=cfg.ema,
        misfit_hint=f"use the recipe the checkpoint was trained with (this run has model {cfg.model!r}, "
        f"num_classes {cfg.num_classes}); --model/--num_classes override it",
    )
    if cfg.val_amp_level != "O0":
        network = ms.amp.auto_mixed_precision(network, cfg.val_amp_level)
    return network


RESULT_FIELDS = ("top1", "top5", "loss", "num_samples", "checkpoint", "model", "recipe", "val_amp_level", "ema")


def write_results(path: str, result: Dict[str, Any], cfg: Config, recipe: Optional[str]) -> str:
    """validate.py's ``--results_file``: the result as JSON, or one appended row when ``path`` ends in .csv."""
    import csv
    import io
    import json
    import os

    from ..files import write_text_atomic

    row = dict(result, model=cfg.model, recipe=recipe or "", val_amp_level=cfg.val_amp_level, ema=cfg.ema)
    row = {k: row.get(k) for k in RESULT_FIELDS}
    if not path.lower().endswith(".csv"):
        write_text_atomic(path, json.dumps(row, indent=1) + "\n")
        return path
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(RESULT_FIELDS))
    if new:
        writer.writeheader()
    writer.writerow(row)
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    return path


def run_validation(cfg: Config, eval_step: Optional[Callable[[nn.Cell, int], Any]] = None) -> Dict[str, Any]:
    """validate.py's work: score ``cfg.ckpt_path`` on the recipe's validation split over every sample
    (with the weight tag's preprocessing where the recipe does not set its own). ``eval_step(network,
    topk)`` may give the evaluation step (validate.py's engine: :func:`visionzoo.tasks.engines.engine_eval_step`)."""
    cfg = with_tag_preprocessing(cfg)
    ctx = setup_context(cfg)
    path = resolve_checkpoint(cfg)
    bundle = build_dataset(cfg, "val", shard_id=ctx.rank, num_shards=ctx.group_size)
    network = load_for_eval(cfg, path)
    step = eval_step(network, min(5, bundle.num_classes)) if eval_step else None
    result = evaluate(network, bundle.dataset, bundle.num_classes, ctx, step=step)
    result["checkpoint"] = path
    return result
