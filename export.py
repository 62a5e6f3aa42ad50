#!/usr/bin/env python
"""Export a checkpoint for deployment:
``python export.py -c RECIPE --ckpt_path CKPT --file_format {MINDIR,ONNX,AIR} [--file_name NAME] [--batch_size N]``.

Writes the eval-mode graph for a float32 input ``N x in_channels x image_resize x image_resize``
(N: ``--batch_size`` given on the command line, else 1; the recipe's training batch size is not
used). ``--file_name`` defaults to the model name in the current folder; the format's extension is
added when missing. The file is written to a temporary name and renamed, so it is complete or absent.
AIR needs an Ascend device. Precision: ``val_amp_level`` (default O0, a float32 graph); ``--amp_level``
typed here means ``--val_amp_level``, as in validate.py. The last line of stdout is one JSON object
``{"file": ..., "file_format": ..., "input_shape": [...], "checkpoint": ...}``.
"""
import json
import sys
from typing import Optional, Sequence

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli import parse_cli, run_main, setup_logging

USAGE = "-c RECIPE.yaml --ckpt_path CKPT --file_format MINDIR|ONNX|AIR [--file_name NAME] [--batch_size N]"
FLAGS = ("file_format", "file_name")


def main(argv: Sequence[str]) -> Optional[int]:
    from visionzoo.config import parse_args
    from visionzoo.errors import ConfigError

    cfg, extra = parse_cli(argv, "export.py", USAGE, FLAGS)
    _, overrides, _ = parse_args(argv, FLAGS)
    setup_logging()
    if not extra.get("file_format"):
        raise ConfigError("export.py needs --file_format MINDIR, ONNX or AIR")
    from visionzoo.distributed import setup_context
    from visionzoo.engine.evaluate import eval_precision
    from visionzoo.export import export_checkpoint

    cfg = eval_precision(cfg, overrides)
    setup_context(cfg, init_comm=False)
    batch = cfg.batch_size if "batch_size" in overrides else 1
    result = export_checkpoint(cfg, extra["file_format"], extra.get("file_name"), batch_size=batch)
    sys.stdout.write(f"exported {result['file']} ({result['file_format']}, input "
                     f"{'x'.join(map(str, result['input_shape']))} float32) from {result['checkpoint']}\n")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
