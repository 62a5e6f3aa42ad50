"""``ckpt_save_policy: top_k``: keep the K epoch checkpoints with the best validation top-1.

MindCV's CheckpointManager keeps the K best and nothing else. visionzoo also keeps the newest epoch
checkpoint (even when it is not among the best), so ``resume auto`` continues where training stopped;
ties go to the earlier epoch (a later one must be strictly better to displace it, as in MindCV).
"""

from __future__ import annotations

import os
import re
from typing import Dict, List

from ..checkpoint import list_epoch_checkpoints

__all__ = ["keep_top_k", "top_k_epochs"]

_EPOCH = re.compile(r"-e(\d+)\.ckpt$")


def top_k_epochs(scores: Dict[int, float], k: int) -> List[int]:
    """The ``k`` epochs with the highest score, best first; ties keep the earlier epoch."""
    return [e for e, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(int(k), 0)]]


def keep_top_k(directory: str, model: str, k: int, scores: Dict[int, float]) -> List[str]:
    """Delete ``model``'s epoch checkpoints in ``directory`` that are neither among the ``k`` best by
    ``scores`` (epoch -> validation top-1) nor the newest. Returns the removed paths."""
    found = list_epoch_checkpoints(directory, model)
    if not found:
        return []
    keep = set(top_k_epochs({e: s for e, s in scores.items() if s is not None}, k))
    removed = []
    for path in found[:-1]:  # the newest stays for resume
        m = _EPOCH.search(os.path.basename(path))
        if m and int(m.group(1)) not in keep:
            os.remove(path)
            removed.append(path)
    return removed
