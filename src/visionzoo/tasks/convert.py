"""Converting a torch (or MindSpore) checkpoint into a MindSpore ``.ckpt`` for a visionzoo model
(the work of ``python -m visionzoo.convert``; see :mod:`visionzoo.cli.convert`)."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError
from ..factory import create_model
from ..registry import get_model_spec, split_name

__all__ = ["convert_checkpoint"]


def convert_checkpoint(source: str, model: str, output: str, num_classes: Optional[int] = None) -> Dict[str, Any]:
    """Load ``source`` strictly into ``create_model(model, num_classes=...)`` and save it to ``output``.

    ``num_classes`` defaults to the tag's class count (1000 without a tag). Returns what was done.
    """
    base, tag = split_name(model)
    if num_classes is None:
        num_classes = get_model_spec(base).get_weight(tag).num_classes if tag else 1000
    network = create_model(model, num_classes=num_classes)
    try:
        report = load_checkpoint(network, source, strict=True, classifier=())
    except CheckpointError as e:
        raise e.with_hint(
            f"pass the model (with the tag whose architecture the weights have) and the head's size: "
            f"this run has --model {model} --num_classes {num_classes}"
        ) from None
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    save_checkpoint(network, output)
    return {
        "file": os.fspath(output),
        "model": model,
        "source": os.fspath(source),
        "loaded": len(report.loaded),
        "ignored": len(report.stripped),
    }
