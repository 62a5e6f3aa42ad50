#!/usr/bin/env python
"""Score a checkpoint: ``python validate.py -c RECIPE --ckpt_path CKPT [--data_dir ...] [--<key> value]``.

Evaluates the recipe's validation split with the eval transforms over every sample (no dropped
remainder) and prints top-1, top-5, mean loss and the sample count. The last line on standard
output is one JSON object: ``{"top1": ..., "top5": ..., "loss": ..., "num_samples": ...}``.
``--ckpt_path auto`` scores the best (else the latest) checkpoint in ckpt_save_dir. Works under msrun.

Precision: validation runs at ``val_amp_level`` (default O0, float32), never at the recipe's
``amp_level``, which is a training setting. ``--amp_level X`` typed on validate's own command line
(without ``--val_amp_level``) is taken as ``val_amp_level X``.
"""
import json
import sys
from typing import Optional, Sequence

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli import parse_cli, run_main, setup_logging

USAGE = "-c RECIPE.yaml --ckpt_path CKPT|auto [--<key> <value> ...]"


def main(argv: Sequence[str]) -> Optional[int]:
    from visionzoo.config import parse_args

    cfg, _ = parse_cli(argv, "validate.py", USAGE)
    _, overrides, _ = parse_args(argv)
    setup_logging()
    from visionzoo.distributed import setup_context
    from visionzoo.engine.evaluate import eval_precision, run_validation

    cfg = eval_precision(cfg, overrides)
    result = run_validation(cfg)
    if setup_context(cfg).is_main:
        top5 = "n/a (fewer than 5 classes)" if result["top5"] is None else f"{100 * result['top5']:.2f}%"
        sys.stdout.write(f"checkpoint: {result['checkpoint']} (val_amp_level {cfg.val_amp_level})\n")
        sys.stdout.write(f"top-1: {100 * result['top1']:.2f}%  top-5: {top5}  loss: {result['loss']:.4f}  "
                         f"samples: {result['num_samples']}\n")
        sys.stdout.write(json.dumps({k: result[k] for k in ("top1", "top5", "loss", "num_samples")}) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
