"""Published weights: the local cache and verified downloads (only when the file is not cached)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..files import DigestMismatch, DownloadFailed, cache_root, download_verified, file_digest

__all__ = ["weights_dir", "resolve_pretrained", "OFFLINE_ENV"]

_logger = logging.getLogger(__name__)

#: Set to 1 to never try a download (a file placed in the cache still works).
OFFLINE_ENV = "VISIONZOO_OFFLINE"


def weights_dir() -> Path:
    """Folder of downloaded weights: ``checkpoints/`` under :func:`visionzoo.files.cache_root`."""
    return cache_root("checkpoints")


def resolve_pretrained(weight: Any, timeout: float = 10.0) -> Path:
    """Local path of published weights ``weight`` (a :class:`visionzoo.registry.WeightSpec`).

    Uses the cache file when present (checking its sha256); otherwise downloads the URL into the
    cache. Without network (or with ``VISIONZOO_OFFLINE=1``) raises CheckpointError saying where to
    put the file.
    """
    target = weights_dir() / weight.file_name
    by_hand = (f"download {weight.url} on a machine with network access and put it at {str(target)!r} "
               f"(sha256 {weight.sha256}; set VISIONZOO_HOME to use another cache folder)")
    if target.is_file():
        actual = file_digest(target)
        if not weight.sha256 or not actual.startswith(weight.sha256.lower()):
            raise CheckpointError(f"checksum mismatch: sha256 is {actual}, expected {weight.sha256 or '(none given)'}",
                                  path=str(target), hint=f"the file is damaged or not these weights: delete it and {by_hand}")
        return target
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise CheckpointError(f"pretrained weights '{weight.tag}' are not in the cache and {OFFLINE_ENV} is set",
                              hint=by_hand)
    try:
        download_verified(weight.url, target, weight.sha256, timeout=timeout)
    except DownloadFailed as e:
        raise CheckpointError(f"cannot download pretrained weights '{weight.tag}' ({e.reason})", hint=by_hand) from None
    except DigestMismatch as e:
        raise CheckpointError(f"downloaded weights '{weight.tag}' have sha256 {e.actual}, expected {e.expected}; "
                              "the file was deleted", hint=by_hand) from None
    return target
