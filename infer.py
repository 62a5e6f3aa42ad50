#!/usr/bin/env python
"""Predict images: ``python infer.py [-c RECIPE] --ckpt_path CKPT --image_path FILE_OR_DIR [--topk 5] [--json]``.

Images get the recipe's eval transforms (the ones validate.py uses). Without ``-c`` the recipe
stored in a visionzoo checkpoint is used; ``--<key> value`` changes any recipe key. Prints one line
per image with the top-k class names and probabilities, or with ``--json`` one JSON document:
``{"checkpoint": ..., "predictions": [{"image": ..., "topk": [{"class", "index", "prob"}, ...]}]}``.
Precision: ``val_amp_level`` (``--amp_level`` typed here means ``--val_amp_level``, as in validate.py).
"""
import json
import sys
from typing import Optional, Sequence

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli import parse_cli, run_main, setup_logging

USAGE = "[-c RECIPE.yaml] --ckpt_path CKPT --image_path FILE_OR_DIR [--topk 5] [--json] [--<key> <value> ...]"
FLAGS = ("image_path", "topk", "json?")


def main(argv: Sequence[str]) -> Optional[int]:
    from visionzoo.config import parse_args
    from visionzoo.errors import ConfigError

    parse_cli(argv, "infer.py", USAGE, FLAGS)  # --help, unknown keys and bad values
    recipe, overrides, extra = parse_args(argv, FLAGS)
    setup_logging()
    if not extra.get("image_path"):
        raise ConfigError("infer.py needs --image_path FILE_OR_DIR (an image file or a folder of images)")
    if not overrides.get("ckpt_path"):
        raise ConfigError("infer.py needs --ckpt_path CKPT (the checkpoint to predict with)")
    try:
        topk = int(extra.get("topk", 5))
    except ValueError:
        raise ConfigError(f"--topk needs a whole number, got {extra['topk']!r}") from None

    from visionzoo.distributed import setup_context
    from visionzoo.engine.evaluate import eval_precision
    from visionzoo.inference import Predictor, config_for, list_images

    images = list_images(extra["image_path"])  # a bad path fails before the model is built
    checkpoint = overrides.pop("ckpt_path")
    cfg = eval_precision(config_for(recipe, checkpoint, **overrides), overrides)
    setup_context(cfg, init_comm=False)
    predictor = Predictor(cfg, checkpoint_path=checkpoint)
    results = predictor.predict(images, topk=topk)
    if extra.get("json"):
        doc = {"checkpoint": predictor.checkpoint_path, "model": predictor.cfg.model,
               "predictions": [r.to_dict() for r in results]}
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        for r in results:
            ranked = ", ".join(f"{label} {prob:.4f}" for label, prob in zip(r.labels, r.probs))
            sys.stdout.write(f"{r.source}: {ranked}\n")
    return 0


if __name__ == "__main__":
    run_main(main)
