"""Small file helpers used across the package: the cache root, atomic writes, download-and-verify.

* :func:`cache_root` is the one folder under which visionzoo caches anything (compiled kernels,
  downloaded weights): ``$VISIONZOO_HOME``, else ``$XDG_CACHE_HOME/visionzoo``, else
  ``~/.cache/visionzoo``.
* :func:`atomic_path` / :func:`write_text_atomic` write through a temporary file in the target's
  folder and an atomic rename: a crash leaves the old file or the new one, never half of one.
* :func:`download_verified` streams a URL into a temporary file, checks its digest and only then
  moves it into place: a partial or wrong file never takes the target's name.
* :func:`lock_directory` makes one process the only writer of a folder (a training run's
  ``ckpt_save_dir``): an exclusive ``flock`` on ``<folder>/.lock`` held while the process lives and
  released by the OS when it dies (a SIGKILL leaves no stale lock); the file names the holder
  (pid, host, start time) for the process that is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Union

from .errors import VisionZooError

__all__ = [
    "HOME_ENV",
    "cache_root",
    "atomic_path",
    "write_text_atomic",
    "file_digest",
    "download_verified",
    "DownloadFailed",
    "DigestMismatch",
    "LOCK_NAME",
    "DirectoryLock",
    "DirectoryInUse",
    "lock_directory",
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


#: The lock file :func:`lock_directory` keeps in a folder.
LOCK_NAME = ".lock"


class DirectoryInUse(VisionZooError, RuntimeError):
    """Another live process holds the folder's lock; ``holder`` is what it wrote (pid, host, started)."""

    holder: Dict[str, Any] = {}


class DirectoryLock:
    """An exclusive lock on a folder held through an open file; :meth:`release` (or the process's end) frees it."""

    def __init__(self, path: str, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        """Remove the lock file and free the lock (removed first, while still held: see lock_directory)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder_text(holder: Dict[str, Any]) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


def lock_directory(directory: PathLike, purpose: str = "training run", fix: str = "") -> DirectoryLock:
    """Take the exclusive lock of ``directory`` (created if missing) or raise :class:`DirectoryInUse` at once.

    The lock is ``flock`` on ``<directory>/.lock``: advisory (only processes that ask for it are kept
    out), held by the open file, so the kernel frees it when the holder exits or is killed. On NFS the
    Linux client turns ``flock`` into a POSIX byte-range lock held by the server (NFSv4 state, NFSv3
    lockd), so runs on different machines exclude each other too, unless the share is mounted with
    ``nolock`` or ``local_lock=flock``/``all`` (then the lock is local to one machine). ``fix`` is the
    hint given to a refused process.
    """
    folder = os.path.abspath(os.fspath(directory))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            _refuse(path, folder, purpose, fix)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder unlinked after we opened it: retry on the new one
            break
        os.close(fd)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "purpose": purpose}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder).encode())
    os.fsync(fd)
    return DirectoryLock(path, fd)


def _refuse(path: str, folder: str, purpose: str, fix: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        holder = {}  # the holder is between taking the lock and writing its name
    error = DirectoryInUse(
        f"in use by another {holder.get('purpose', purpose)} ({_holder_text(holder)})",
        path=folder,
        hint=fix or None,
    )
    error.holder = holder
    raise error
