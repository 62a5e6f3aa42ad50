"""Published weights: the local cache and verified downloads (only when the file is not cached)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import CheckpointError, CheckpointNotFoundError
from ..files import DigestMismatch, DownloadFailed, cache_root, download_verified, file_digest

__all__ = ["weights_dir", "resolve_pretrained", "OFFLINE_ENV"]

_logger = logging.getLogger(__name__)

#: Set to 1 to never try a download (a file placed in the cache still works).
OFFLINE_ENV = "VISIONZOO_OFFLINE"


def weights_dir() -> Path:
    """Folder of downloaded weights: ``checkpoints/`` under :func:`visionzoo.files.cache_root`."""
    return cache_root("checkpoints")


def _by_hand(weight: Any, target: Path) -> str:
    return (
        f"download {weight.url} on a machine with network access and put it at {str(target)!r} "
        f"(sha256 {weight.sha256}...), or pass pretrained_file=PATH; VISIONZOO_HOME moves the cache"
    )


def _matches(actual: str, expected: str) -> bool:
    return bool(expected) and actual.startswith(expected.lower())


def resolve_pretrained(
    weight: Any, timeout: float = 10.0, pretrained_file: Optional[Union[str, "os.PathLike[str]"]] = None
) -> Path:
    """Local, verified path of published weights ``weight`` (a :class:`visionzoo.registry.WeightSpec`).

    In order: ``pretrained_file`` (a copy of the published file: its sha256 must match; nothing is
    downloaded), else the cache file ``weights_dir()/<file name>`` (a cache file whose sha256 does not
    match is deleted), else a download of the URL into the cache (streamed to a temporary file, hash
    checked, then renamed: a partial or wrong download never becomes a cache entry). Without network
    (or with ``VISIONZOO_OFFLINE=1``) raises CheckpointError naming the URL, the cache path and how to
    place the file by hand.
    """
    target = weights_dir() / weight.file_name
    by_hand = _by_hand(weight, target)
    if pretrained_file is not None:
        given = Path(os.fspath(pretrained_file))
        if not given.is_file():
            raise CheckpointNotFoundError(
                f"pretrained_file for '{weight.tag}' not found",
                path=str(given),
                hint=f"pass the downloaded {weight.file_name} ({weight.url})",
            )
        actual = file_digest(given)
        if not _matches(actual, weight.sha256):
            raise CheckpointError(
                f"sha256 is {actual}, expected {weight.sha256}...: not the published '{weight.tag}' weights",
                path=str(given),
                hint=f"pass the file downloaded from {weight.url}, or load your own weights with checkpoint_path=",
            )
        return given
    if target.is_file():
        actual = file_digest(target)
        if _matches(actual, weight.sha256):
            return target
        target.unlink()
        raise CheckpointError(
            f"cached weights '{weight.tag}' have sha256 {actual}, expected {weight.sha256}...; the file was deleted",
            path=str(target),
            hint=by_hand,
        )
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise CheckpointError(
            f"pretrained weights '{weight.tag}' are not in the cache and {OFFLINE_ENV} is set",
            path=str(target),
            hint=by_hand,
        )
    _logger.info("downloading %s to %s", weight.url, target)
    try:
        download_verified(weight.url, target, weight.sha256, timeout=timeout)
    except DownloadFailed as e:
        raise CheckpointError(
            f"cannot download pretrained weights '{weight.tag}' from {weight.url} ({e.reason}); nothing was cached",
            path=str(target),
            hint=by_hand,
        ) from None
    except DigestMismatch as e:
        raise CheckpointError(
            f"downloaded weights '{weight.tag}' from {weight.url} have sha256 {e.actual}, "
            f"expected {e.expected}...; the file was deleted",
            path=str(target),
            hint=by_hand,
        ) from None
    return target
