#!/usr/bin/env python
"""Train a model from a recipe: ``python train.py -c configs/<family>/<recipe>.yaml [--key value ...]``.

``--dry_run`` builds everything, prints the resolved config and the plan, and exits without training.
Under ``msrun --worker_num N`` it trains data-parallel on N workers (see docs/distributed.md).
"""
import json
import sys
from typing import Optional, Sequence

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli import parse_cli, run_main, setup_logging

USAGE = "-c RECIPE.yaml [--<key> <value> ...] [--dry_run]"


def main(argv: Sequence[str]) -> Optional[int]:
    cfg, flags = parse_cli(argv, "train.py", USAGE, flags=("dry_run?",))
    setup_logging()
    from visionzoo.engine.trainer import Trainer

    if flags["dry_run"]:
        trainer = Trainer(cfg, dry_run=True)
        plan = trainer.plan()
        sys.stdout.write("# resolved config\n" + cfg.dump_yaml() + "# plan\n")
        for key, value in plan.items():
            sys.stdout.write(f"{key}: {value}\n")
        sys.stdout.write(json.dumps(plan) + "\n")
        return 0
    trainer = Trainer(cfg)
    result = trainer.fit()
    if trainer.ctx.is_main:
        sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
