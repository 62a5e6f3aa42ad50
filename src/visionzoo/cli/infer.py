"""``visionzoo-infer`` / ``python infer.py``: predict images.

``[-c RECIPE] --ckpt_path CKPT --image_path FILE_OR_DIR [--topk 5] [--json] [--engine auto]``.
Images get the recipe's eval transforms (the ones validate uses). Without ``-c`` the recipe stored in a visionzoo
checkpoint is used; ``--<key> value`` changes any recipe key. Prints one line per image with the
top-k class names and probabilities, or with ``--json`` one JSON document:
``{"checkpoint": ..., "predictions": [{"image": ..., "topk": [{"class", "index", "prob"}, ...]}]}``.
``--engine`` runs the network through ``auto`` (default: the fastest installed), ``mindspore``,
``onnxruntime`` or ``openvino`` (see :mod:`visionzoo.tasks.engines`).
Precision: ``val_amp_level`` (``--amp_level`` typed here means ``--val_amp_level``, as in validate).
"""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = (
    "[-c RECIPE] --ckpt_path CKPT --image_path FILE_OR_DIR [--topk 5] [--json] "
    "[--engine auto|mindspore|onnxruntime|openvino] [--<key> <value> ...]"
)
FLAGS = ("image_path", "topk", "json?", "engine")


def main(argv: Sequence[str]) -> Optional[int]:
    from ..errors import ConfigError

    inv = parse_cli(argv, "visionzoo-infer", USAGE, FLAGS)  # --help, unknown keys and bad values
    setup_logging()
    overrides = dict(inv.overrides)
    if not inv.flags.get("image_path"):
        raise ConfigError("infer needs --image_path FILE_OR_DIR (an image file or a folder of images)")
    if not overrides.get("ckpt_path"):
        raise ConfigError("infer needs --ckpt_path CKPT (the checkpoint to predict with)")
    try:
        topk = int(inv.flags.get("topk", 5))
    except ValueError:
        raise ConfigError(f"--topk needs a whole number, got {inv.flags['topk']!r}") from None

    from ..data.images import list_images
    from ..distributed import setup_context
    from ..tasks.engines import choose_engine
    from ..tasks.predict import Predictor, config_for
    from ..tasks.validate import eval_precision

    images = list_images(inv.flags["image_path"])  # a bad path fails before the model is built
    checkpoint = overrides.pop("ckpt_path")
    cfg = eval_precision(config_for(inv.recipe, checkpoint, **overrides), overrides)
    engine = inv.flags.get("engine") or "auto"
    choose_engine(engine, cfg.device_target)  # an unknown or missing engine fails before the model is built
    setup_context(cfg, init_comm=False)
    predictor = Predictor(cfg, checkpoint_path=checkpoint, engine=engine)
    results = predictor.predict(images, topk=topk)
    if inv.flags.get("json"):
        doc = {
            "checkpoint": predictor.checkpoint_path,
            "model": predictor.cfg.model,
            "engine": ",".join(predictor.engine.used()),
            "predictions": [r.to_dict() for r in results],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        for r in results:
            ranked = ", ".join(f"{label} {prob:.4f}" for label, prob in zip(r.labels, r.probs))
            sys.stdout.write(f"{r.source}: {ranked}\n")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)
