"""``visionzoo-export`` / ``python export.py``: export a checkpoint for deployment.

``-c RECIPE --ckpt_path CKPT --file_format {MINDIR,ONNX,AIR} [--file_name NAME] [--batch_size N]``
writes the eval-mode graph for a float32 input ``N x in_channels x image_resize x image_resize``
(N: ``--batch_size`` given on the command line, else 1; the recipe's training batch size is not
used). ``--file_name`` defaults to the model name in the current folder; the format's extension is
added when missing. The file is written to a temporary name and renamed, so it is complete or absent.
AIR needs an Ascend device. Precision: ``val_amp_level`` (default O0, a float32 graph); ``--amp_level``
typed here means ``--val_amp_level``, as in validate. The last line of stdout is one JSON object
``{"file": ..., "file_format": ..., "input_shape": [...], "checkpoint": ...}``.
"""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = "-c RECIPE --ckpt_path CKPT --file_format MINDIR|ONNX|AIR [--file_name NAME] [--batch_size N]"
FLAGS = ("file_format", "file_name")


def main(argv: Sequence[str]) -> Optional[int]:
    from ..errors import ConfigError

    inv = parse_cli(argv, "visionzoo-export", USAGE, FLAGS)
    setup_logging()
    if not inv.flags.get("file_format"):
        raise ConfigError("export needs --file_format MINDIR, ONNX or AIR")
    from ..distributed import setup_context
    from ..tasks.export import export_checkpoint
    from ..tasks.validate import eval_precision

    cfg = eval_precision(inv.cfg, inv.overrides)
    setup_context(cfg, init_comm=False)
    batch = cfg.batch_size if "batch_size" in inv.overrides else 1
    result = export_checkpoint(cfg, inv.flags["file_format"], inv.flags.get("file_name"), batch_size=batch)
    sys.stdout.write(
        f"exported {result['file']} ({result['file_format']}, input "
        f"{'x'.join(map(str, result['input_shape']))} float32) from {result['checkpoint']}\n"
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)
