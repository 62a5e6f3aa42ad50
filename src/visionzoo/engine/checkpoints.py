"""Training checkpoints: atomic writes, rotation, latest/best, and resume state.

A training checkpoint holds the whole train step's parameters (weights, optimizer state with its
``global_step``, loss-scale state) plus ``_vz_*`` entries: epoch, model name, number of classes,
class names and the resolved recipe. ``visionzoo.create_model(checkpoint_path=...)`` strips the
training-only entries, so the same file also serves for fine-tuning and validation.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any, Dict, List, Optional

import mindspore as ms

from ..errors import CheckpointError

__all__ = ["save_atomic", "write_text_atomic", "checkpoint_name", "list_epoch_checkpoints", "latest_checkpoint", "prune",
           "read_training_state", "BEST_SUFFIX"]

_logger = logging.getLogger(__name__)
BEST_SUFFIX = "best"
_EPOCH_RE = re.compile(r"^(?P<model>.+)-e(?P<epoch>\d+)\.ckpt$")


def checkpoint_name(model: str, epoch: Optional[int] = None) -> str:
    """``<model>-e0007.ckpt`` for an epoch, ``<model>-best.ckpt`` for the best one."""
    return f"{model}-{BEST_SUFFIX}.ckpt" if epoch is None else f"{model}-e{epoch:04d}.ckpt"


def save_atomic(obj: Any, path: str, append_dict: Optional[Dict[str, Any]] = None) -> str:
    """Save a cell or parameter list to ``path`` through a temporary file and an atomic rename.

    A crash mid-write leaves at most a hidden ``.tmp`` file, never a truncated file under ``path``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp.ckpt")
    try:
        ms.save_checkpoint(obj, tmp, append_dict=append_dict)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def list_epoch_checkpoints(directory: str, model: Optional[str] = None) -> List[str]:
    """Epoch checkpoints in ``directory`` (of ``model`` when given), oldest first."""
    found = []
    for path in glob.glob(os.path.join(directory, "*.ckpt")):
        m = _EPOCH_RE.match(os.path.basename(path))
        if m and (model is None or m.group("model") == model):
            found.append((int(m.group("epoch")), path))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str, model: Optional[str] = None) -> Optional[str]:
    """The newest epoch checkpoint in ``directory``, or None."""
    found = list_epoch_checkpoints(directory, model)
    return found[-1] if found else None


def prune(directory: str, model: str, keep: int) -> List[str]:
    """Delete the oldest epoch checkpoints beyond ``keep``; the best checkpoint is never touched."""
    found = list_epoch_checkpoints(directory, model)
    removed = found[:-keep] if keep > 0 else []
    for path in removed:
        os.remove(path)
    return removed


def read_training_state(path: str) -> Dict[str, Any]:
    """Load a training checkpoint for resume: its parameter dict, refused when it holds no training state."""
    if not os.path.isfile(path):
        raise CheckpointError(f"resume checkpoint not found: {path!r}; pass an existing file or --resume auto")
    try:
        params = ms.load_checkpoint(path)
    except Exception as e:  # noqa: BLE001  MindSpore raises ValueError/RuntimeError on corrupt files
        raise CheckpointError(f"cannot read checkpoint {path!r} ({str(e).splitlines()[0][:200]}); "
                              "it may be truncated or not a MindSpore checkpoint") from None
    if "_vz_epoch" not in params:
        raise CheckpointError(f"{path!r} holds no training state (no epoch counter); resume needs a checkpoint "
                              "written by visionzoo's trainer, use --ckpt_path to start from its weights instead")
    return params
