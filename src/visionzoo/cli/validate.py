"""``visionzoo-validate`` / ``python validate.py``: score a checkpoint.

Evaluates the recipe's validation split with the eval transforms over every sample (no dropped
remainder) and prints top-1, top-5, mean loss and the sample count. The last line on standard
output is one JSON object: ``{"top1": ..., "top5": ..., "loss": ..., "num_samples": ...}``.
``--ckpt_path auto`` scores the best (else the latest) checkpoint in ckpt_save_dir. Works under msrun.
``--results_file PATH`` also writes that JSON object (with the checkpoint and recipe) to PATH, or
appends it as one row to PATH when it ends in ``.csv`` (a header is written when the file is new).
With ``--ema True`` a training checkpoint's EMA weights are scored. ``--engine`` runs the forward
through ``auto`` (default: the fastest installed), ``mindspore``, ``onnxruntime`` or ``openvino``
(see :mod:`visionzoo.tasks.engines`); the scores are the same.

Precision: validation runs at ``val_amp_level`` (default O0, float32), never at the recipe's
``amp_level``, which is a training setting. ``--amp_level X`` typed on validate's own command line
(without ``--val_amp_level``) is taken as ``val_amp_level X``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = (
    "-c RECIPE --ckpt_path CKPT|auto [--results_file out.json|out.csv] "
    "[--engine auto|mindspore|onnxruntime|openvino] [--<key> <value> ...]"
)


def main(argv: Sequence[str]) -> Optional[int]:
    inv = parse_cli(argv, "visionzoo-validate", USAGE, flags=("results_file", "engine"))
    setup_logging()
    from ..distributed import setup_context
    from ..tasks.engines import choose_engine, engine_eval_step
    from ..tasks.validate import eval_precision, run_validation

    cfg = eval_precision(inv.cfg, inv.overrides)
    engine = inv.flags.get("engine") or "auto"
    choose_engine(engine, cfg.device_target)  # an unknown or missing engine fails before any work
    ctx = setup_context(cfg)  # under msrun the scheduler process serves the cluster here and exits
    if not ctx.is_main:  # rank 0 reports; the others only warn
        setup_logging(stderr_level=logging.WARNING)
    result = run_validation(cfg, eval_step=engine_eval_step(engine, cfg.device_target))
    if ctx.is_main:
        top5 = "n/a (fewer than 5 classes)" if result["top5"] is None else f"{100 * result['top5']:.2f}%"
        sys.stdout.write(f"checkpoint: {result['checkpoint']} (val_amp_level {cfg.val_amp_level})\n")
        sys.stdout.write(
            f"top-1: {100 * result['top1']:.2f}%  top-5: {top5}  loss: {result['loss']:.4f}  "
            f"samples: {result['num_samples']}\n"
        )
        sys.stdout.write(json.dumps({k: result[k] for k in ("top1", "top5", "loss", "num_samples")}) + "\n")
        if inv.flags.get("results_file"):
            from ..tasks.validate import write_results

            write_results(inv.flags["results_file"], result, cfg, inv.recipe)
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)
