"""A run's checkpoint folder: names, rotation, latest/best, and reading a checkpoint back for resume."""
from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any, Dict, List, Optional

from ..errors import CheckpointError
from . import records
from .io import read_checkpoint

__all__ = ["checkpoint_name", "list_epoch_checkpoints", "latest_checkpoint", "best_checkpoint", "prune",
           "read_training_state", "BEST_SUFFIX"]

_logger = logging.getLogger(__name__)
BEST_SUFFIX = "best"
_EPOCH_RE = re.compile(r"^(?P<model>.+)-e(?P<epoch>\d+)\.ckpt$")


def checkpoint_name(model: str, epoch: Optional[int] = None) -> str:
    """``<model>-e0007.ckpt`` for an epoch, ``<model>-best.ckpt`` for the best one."""
    return f"{model}-{BEST_SUFFIX}.ckpt" if epoch is None else f"{model}-e{epoch:04d}.ckpt"


def list_epoch_checkpoints(directory: str, model: Optional[str] = None) -> List[str]:
    """Epoch checkpoints in ``directory`` (of ``model`` when given), oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "*.ckpt")):
        m = _EPOCH_RE.match(os.path.basename(path))
        if m and (model is None or m.group("model") == model):
            found.append((int(m.group("epoch")), path))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str, model: Optional[str] = None) -> Optional[str]:
    """The newest epoch checkpoint in ``directory``, or None."""
    found = list_epoch_checkpoints(directory, model)
    return found[-1] if found else None


def best_checkpoint(directory: str, model: str) -> Optional[str]:
    """``<model>-best.ckpt`` in ``directory`` if it exists, else the newest epoch checkpoint, else None."""
    best = os.path.join(directory, checkpoint_name(model))
    return best if os.path.isfile(best) else latest_checkpoint(directory, model)


def prune(directory: str, model: str, keep: int) -> List[str]:
    """Delete the oldest epoch checkpoints beyond ``keep``; the best checkpoint is never touched."""
    found = list_epoch_checkpoints(directory, model)
    removed = found[:-keep] if keep > 0 else []
    for path in removed:
        os.remove(path)
    return removed


def read_training_state(path: str) -> Dict[str, Any]:
    """Load a training checkpoint for resume: its parameter dict, refused when it holds no training state."""
    params = read_checkpoint(path, what="resume checkpoint")
    if records.EPOCH not in params:
        raise CheckpointError("this checkpoint holds no training state (no epoch counter)", path=path,
                              hint="resume needs a checkpoint written by visionzoo's trainer; use --ckpt_path "
                                   "to start from its weights instead")
    return params
