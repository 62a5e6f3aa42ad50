"""A run's checkpoint folder: names, rotation (latest_k: :func:`prune`, top_k: :func:`keep_top_k`),
latest/best, and reading a checkpoint back for resume.

``ckpt_save_policy: top_k`` keeps the K epoch checkpoints with the best validation top-1. MindCV's
CheckpointManager keeps the K best and nothing else; visionzoo also keeps the newest epoch checkpoint
(even when it is not among the best), so ``resume auto`` continues where training stopped; ties go to
the earlier epoch (a later one must be strictly better to displace it, as in MindCV).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..errors import CheckpointError
from . import records
from .io import read_checkpoint

__all__ = [
    "checkpoint_name",
    "list_epoch_checkpoints",
    "latest_checkpoint",
    "best_checkpoint",
    "prune",
    "keep_top_k",
    "top_k_epochs",
    "read_training_state",
    "BEST_SUFFIX",
    "stop_checkpoint_name",
    "list_resume_points",
    "remove_stop_checkpoints",
]

_logger = logging.getLogger(__name__)
BEST_SUFFIX = "best"
_EPOCH_RE = re.compile(r"^(?P<model>.+)-e(?P<epoch>\d+)\.ckpt$")
_STOP_RE = re.compile(r"^(?P<model>.+)-e(?P<epoch>\d+)-s(?P<step>\d+)\.ckpt$")


def checkpoint_name(model: str, epoch: Optional[int] = None) -> str:
    """``<model>-e0007.ckpt`` for an epoch, ``<model>-best.ckpt`` for the best one."""
    return f"{model}-{BEST_SUFFIX}.ckpt" if epoch is None else f"{model}-e{epoch:04d}.ckpt"


def stop_checkpoint_name(model: str, epoch: int, step: int) -> str:
    """``<model>-e0003-s0012.ckpt``: written when a run stops after step 12 of epoch 3 (mid-epoch)."""
    return f"{model}-e{epoch:04d}-s{step:04d}.ckpt"


def list_resume_points(directory: str, model: str) -> List[str]:
    """Epoch and mid-epoch (stop) checkpoints of ``model`` in ``directory``, oldest position first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "*.ckpt")):
        name = os.path.basename(path)
        stop, end = _STOP_RE.match(name), _EPOCH_RE.match(name)
        if stop and stop.group("model") == model:  # epoch N in progress: N - 1 epochs and `step` steps done
            found.append(((int(stop.group("epoch")) - 1, int(stop.group("step"))), path))
        elif end and end.group("model") == model and not _STOP_RE.match(name):
            found.append(((int(end.group("epoch")), 0), path))
    return [p for _, p in sorted(found)]


def remove_stop_checkpoints(directory: str, model: str) -> List[str]:
    """Delete ``model``'s mid-epoch checkpoints (an epoch checkpoint written later supersedes them)."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(directory), "*.ckpt")):
        m = _STOP_RE.match(os.path.basename(path))
        if m and m.group("model") == model:
            os.remove(path)
            removed.append(path)
    return removed


def _epoch_checkpoints(directory: str, model: Optional[str] = None) -> List[Tuple[int, str]]:
    """``(epoch, path)`` of the epoch checkpoints in ``directory`` (of ``model`` when given), oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "*.ckpt")):
        m = _EPOCH_RE.match(os.path.basename(path))
        if m and not _STOP_RE.match(os.path.basename(path)) and (model is None or m.group("model") == model):
            found.append((int(m.group("epoch")), path))
    return sorted(found)


def list_epoch_checkpoints(directory: str, model: Optional[str] = None) -> List[str]:
    """Epoch checkpoints in ``directory`` (of ``model`` when given), oldest first."""
    return [p for _, p in _epoch_checkpoints(directory, model)]


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


def top_k_epochs(scores: Dict[int, float], k: int) -> List[int]:
    """The ``k`` epochs with the highest score, best first; ties keep the earlier epoch."""
    return [e for e, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(int(k), 0)]]


def keep_top_k(directory: str, model: str, k: int, scores: Dict[int, Optional[float]]) -> List[str]:
    """Delete ``model``'s epoch checkpoints in ``directory`` that are neither among the ``k`` best by
    ``scores`` (epoch -> validation top-1) nor the newest. Returns the removed paths."""
    keep = set(top_k_epochs({e: s for e, s in scores.items() if s is not None}, k))
    removed = []
    for epoch, path in _epoch_checkpoints(directory, model)[:-1]:  # the newest stays for resume
        if epoch not in keep:
            os.remove(path)
            removed.append(path)
    return removed


def read_training_state(path: str) -> Dict[str, Any]:
    """Load a training checkpoint for resume: its parameter dict, refused when it holds no training state."""
    params = read_checkpoint(path, what="resume checkpoint", require_checksum=True)
    if records.EPOCH not in params:
        raise CheckpointError(
            "this checkpoint holds no training state (no epoch counter)",
            path=path,
            hint="resume needs a checkpoint written by visionzoo's trainer; use --ckpt_path "
            "to start from its weights instead",
        )
    return params
