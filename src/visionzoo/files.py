"""Small file helpers used across the package: the cache root, atomic writes, download-and-verify.

* :func:`cache_root` is the one folder under which visionzoo caches anything (compiled kernels,
  downloaded weights): ``$VISIONZOO_HOME``, else ``$XDG_CACHE_HOME/visionzoo``, else
  ``~/.cache/visionzoo``.
* :func:`atomic_path` / :func:`write_text_atomic` write through a temporary file in the target's
  folder and an atomic rename: a crash leaves the old file or the new one, never half of one.
* :func:`download_verified` streams a URL into a temporary file, checks its digest and only then
  moves it into place: a partial or wrong file never takes the target's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

__all__ = [
    "HOME_ENV",
    "cache_root",
    "atomic_path",
    "write_text_atomic",
    "file_digest",
    "download_verified",
    "DownloadFailed",
    "DigestMismatch",
]

_logger = logging.getLogger(__name__)

#: Environment variable naming the cache root.
HOME_ENV = "VISIONZOO_HOME"
_CHUNK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]


def cache_root(sub: str = "") -> Path:
    """The cache folder (``sub`` below it when given); not created here."""
    home = os.environ.get(HOME_ENV)
    if home:
        base = Path(home).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "visionzoo"
    return base / sub if sub else base


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    ``suffix`` is given to the temporary name (some writers insist on an extension). On an exception
    the temporary file is removed and ``path`` is left as it was.
    """
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DownloadFailed(OSError):
    """The URL could not be fetched (no network, HTTP error, a short read); ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


class DigestMismatch(ValueError):
    """The downloaded bytes do not have the expected digest (the partial file was deleted)."""

    def __init__(self, url: str, algorithm: str, actual: str, expected: str) -> None:
        super().__init__(f"{url}: {algorithm} {actual} does not match {expected}")
        self.url, self.algorithm, self.actual, self.expected = url, algorithm, actual, expected


def download_verified(
    url: str,
    target: PathLike,
    expected: str,
    algorithm: str = "sha256",
    timeout: float = 60.0,
    on_progress: Optional[Callable[[int], None]] = None,
) -> Path:
    """Fetch ``url`` into ``target`` if its ``algorithm`` digest starts with ``expected`` (a full
    digest or a published prefix of at least 8 hex digits).

    Raises :class:`DownloadFailed` (nothing written) or :class:`DigestMismatch` (the temporary file
    deleted). A transfer shorter than the server's Content-Length is a failure, not a file.
    """
    expected = (expected or "").lower()
    if len(expected) < 8:
        raise ValueError(f"{url}: an expected {algorithm} digest (at least 8 hex digits) is required")
    digest = hashlib.new(algorithm)
    target = Path(target)
    with atomic_path(target) as tmp:
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    if on_progress is not None:
                        on_progress(received)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            raise DownloadFailed(url, str(reason)) from None
        if length is not None and length.isdigit() and received != int(length):
            raise DownloadFailed(url, f"transfer ended after {received} of {length} bytes")
        actual = digest.hexdigest()
        if not actual.startswith(expected):
            raise DigestMismatch(url, algorithm, actual, expected)
    _logger.info("downloaded %s to %s", url, target)
    return target
