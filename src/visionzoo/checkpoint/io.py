"""Reading and writing ``.ckpt`` files: one reader, one writer, one set of error texts.

* :func:`read_checkpoint` reads every entry (or those a filter chooses) and turns a missing,
  unreadable or empty file into a :class:`~visionzoo.errors.CheckpointError`.
* :func:`read_meta` reads only the ``_vz_*`` records (cached per file version).
* MindSpore 2.10 refuses a ``.ckpt`` larger than the *free* memory (``SC_AVPHYS_PAGES``, which
  leaves out the page cache the kernel gives back on demand): on a machine that has written or read
  a few GB of files, a 550 MB VGG checkpoint fails with 20 GB available. :func:`read_checkpoint`
  measures what the kernel can really hand out (``MemAvailable``), refuses a file larger than that
  itself, and has MindSpore's own check use the same figure while it reads.
* :func:`save_checkpoint` writes atomically (the file appears complete or not at all) and embeds a
  checksum of the content (:mod:`.integrity`); :func:`read_checkpoint` verifies it whenever the
  file has one, so resume, validation and ``create_model(checkpoint_path=...)`` refuse a damaged file.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

from ..errors import CheckpointError, CheckpointNotFoundError
from ..files import atomic_path
from . import records
from .integrity import content_digest, digest_matches

__all__ = ["read_checkpoint", "read_meta", "save_checkpoint"]

PathLike = Union[str, "os.PathLike[str]"]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


_MEMINFO = "/proc/meminfo"
_MEMORY_CHECK_LOCK = threading.Lock()


def available_memory() -> Optional[int]:
    """Bytes the kernel can hand out now (``MemAvailable``: free memory plus reclaimable cache), or
    None where the kernel does not say (not Linux)."""
    try:
        with open(_MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def _mindspore_checks_available_memory() -> Iterator[None]:
    """While MindSpore reads a ``.ckpt``, its size check compares against :func:`available_memory`
    (not the free pages alone); restored afterwards."""
    from mindspore.train import serialization

    with _MEMORY_CHECK_LOCK:
        own = serialization._get_available_memory  # pylint: disable=protected-access
        serialization._get_available_memory = available_memory  # pylint: disable=protected-access
        try:
            yield
        finally:
            serialization._get_available_memory = own  # pylint: disable=protected-access


def read_checkpoint(
    path: PathLike,
    choose: Optional[Callable[[str], bool]] = None,
    what: str = "checkpoint",
    require_checksum: bool = False,
) -> Dict[str, Any]:
    """Read a ``.ckpt`` into ``{name: Parameter}`` (only names ``choose`` accepts, when given).

    ``what`` names the file's role in messages (``"resume checkpoint"``, ...). A whole read verifies
    the embedded checksum when the file has one; ``require_checksum`` also refuses a file without
    one (a trainer checkpoint always has it: one that lacks it was cut short).
    """
    import mindspore as ms

    path = os.fspath(path)
    if not os.path.isfile(path):
        hint = "it is a folder; pass the .ckpt file inside it" if os.path.isdir(path) else "pass an existing .ckpt file"
        raise CheckpointNotFoundError(f"{what} file not found", path=path, hint=hint)
    size, memory = os.path.getsize(path), available_memory()
    if memory is not None and size > memory:  # MindSpore reads the whole file into memory before parsing it
        raise CheckpointError(
            f"cannot read {what}: the file ({size / 2**20:,.0f} MiB) is larger than the memory "
            f"available now ({memory / 2**20:,.0f} MiB)",
            path=path,
            hint="free memory (stop other jobs) or read it on a machine with more",
        )
    try:
        with _mindspore_checks_available_memory():
            params = ms.load_checkpoint(path, choice_func=choose) if choose else ms.load_checkpoint(path)
    except Exception as e:  # noqa: BLE001  MindSpore raises ValueError/RuntimeError/TypeError for damaged files
        raise CheckpointError(
            f"cannot read {what} (not a MindSpore .ckpt, or the file is truncated or damaged: {_first_line(e)})",
            path=path,
            hint="re-download or re-save it",
        ) from None
    if not params:
        raise CheckpointError(f"{what} holds no parameters", path=path, hint="pass a checkpoint with weights")
    params = dict(params)
    if choose is None:
        if records.CHECKSUM in params:
            if not digest_matches(params):
                raise CheckpointError(
                    f"{what} is damaged: its content does not match its checksum",
                    path=path,
                    hint="use another checkpoint (or re-download or re-save this one)",
                )
        elif require_checksum:
            raise CheckpointError(
                f"{what} has no checksum: it was cut short, or not written by visionzoo's trainer",
                path=path,
                hint="use another checkpoint",
            )
    return params


_META_CACHE: Dict[Tuple[str, int, int], Dict[str, Any]] = {}


def read_meta(path: PathLike) -> Dict[str, Any]:
    """The ``_vz_*`` records of a checkpoint (``{}`` for one not written by visionzoo), without the weights.

    MindSpore parses the whole file even for a few entries (hundreds of MB for VGG), so the result
    is remembered per (path, modification time, size).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key in _META_CACHE:
            return dict(_META_CACHE[key])
    first: list = []

    def choose(name: str) -> bool:
        # MindSpore refuses an empty selection, so a weights-only file also yields its first entry
        if records.is_record(name):
            return True
        if not first:
            first.append(name)
            return True
        return False

    meta = {k: v for k, v in read_checkpoint(path, choose).items() if records.is_record(k)}
    if len(_META_CACHE) > 8:
        _META_CACHE.clear()
    _META_CACHE[key] = dict(meta)
    return meta


def _saved_entries(obj: Any, append: Dict[str, Any]) -> Dict[str, Any]:
    """The entries ``mindspore.save_checkpoint(obj, append_dict=append)`` writes, by name."""
    if hasattr(obj, "parameters_dict"):  # a Cell
        entries = dict(obj.parameters_dict())
    else:  # a list of Parameters or of {"name": ..., "data": ...}
        entries = {}
        for item in obj:
            if isinstance(item, dict):
                entries[item["name"]] = item["data"]
            else:
                entries[item.name] = item
    entries.update(append)
    return entries


def save_checkpoint(obj: Any, path: PathLike, append_dict: Optional[Dict[str, Any]] = None) -> str:
    """Save a cell or parameter list to ``path`` atomically (a crash leaves at most a hidden temporary
    file), with a checksum of the content as the last record."""
    import mindspore as ms

    path = os.fspath(path)
    # MindSpore stores every non-string value as a Tensor: convert first, so the digest sees what is stored
    append = {
        k: v if isinstance(v, str) else ms.Tensor(v) for k, v in (append_dict or {}).items() if k != records.CHECKSUM
    }
    append[records.CHECKSUM] = content_digest(_saved_entries(obj, append))
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(obj, tmp, append_dict=append)
    return path
