"""``visionzoo-train`` / ``python train.py``: train a model from a recipe.

``-c RECIPE`` is a recipe file or a packaged recipe name. ``--dry_run`` builds everything, prints
the resolved config and the plan, and exits without training. Under ``msrun --worker_num N`` it
trains data-parallel on N workers (see docs/distributed.md). SIGTERM or SIGINT stops after the
current step with a resumable checkpoint and exit status 143 or 130 (docs/training.md).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = "-c RECIPE [--<key> <value> ...] [--dry_run]"


def main(argv: Sequence[str]) -> Optional[int]:
    inv = parse_cli(argv, "visionzoo-train", USAGE, flags=("dry_run?",))
    cfg = inv.cfg
    setup_logging()
    from ..distributed import rank_log_path, setup_context
    from ..engine.trainer import Trainer, TrainingStopped

    if inv.flags["dry_run"]:
        plan = Trainer(cfg, dry_run=True).plan()
        sys.stdout.write("# resolved config\n" + cfg.dump_yaml() + "# plan\n")
        for key, value in plan.items():
            sys.stdout.write(f"{key}: {value}\n")
        sys.stdout.write(json.dumps(plan) + "\n")
        return 0
    ctx = setup_context(cfg)  # under msrun the scheduler process serves the cluster here and exits
    if ctx.distributed:  # rank 0 to stderr, the others only warnings; every rank to its own file
        setup_logging(
            log_file=rank_log_path(cfg.ckpt_save_dir, ctx.rank),
            stderr_level=logging.INFO if ctx.is_main else logging.WARNING,
        )
    trainer = Trainer(cfg, ctx)
    try:
        result = trainer.fit()
    except TrainingStopped as stop:
        if trainer.ctx.is_main:  # one line: where it stopped, what was written, how to go on
            sys.stderr.write(f"{stop}; checkpoint {stop.path}; to continue, run the same command with --resume auto\n")
        return stop.exit_status
    if trainer.ctx.is_main:
        sys.stdout.write(json.dumps(result) + "\n")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)
