"""Reading and writing ``.ckpt`` files: one reader, one writer, one set of error texts.

* :func:`read_checkpoint` reads every entry (or those a filter chooses) and turns a missing,
  unreadable or empty file into a :class:`~visionzoo.errors.CheckpointError`.
* :func:`read_meta` reads only the ``_vz_*`` records (cached per file version).
* :func:`save_checkpoint` writes atomically: the file appears complete or not at all.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple, Union

from ..errors import CheckpointError, CheckpointNotFoundError
from ..files import atomic_path
from . import records

__all__ = ["read_checkpoint", "read_meta", "save_checkpoint"]

PathLike = Union[str, "os.PathLike[str]"]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def read_checkpoint(path: PathLike, choose: Optional[Callable[[str], bool]] = None,
                    what: str = "checkpoint") -> Dict[str, Any]:
    """Read a ``.ckpt`` into ``{name: Parameter}`` (only names ``choose`` accepts, when given).

    ``what`` names the file's role in messages (``"resume checkpoint"``, ...).
    """
    import mindspore as ms

    path = os.fspath(path)
    if not os.path.isfile(path):
        hint = ("it is a folder; pass the .ckpt file inside it" if os.path.isdir(path)
                else "pass an existing .ckpt file")
        raise CheckpointNotFoundError(f"{what} file not found", path=path, hint=hint)
    try:
        params = ms.load_checkpoint(path, choice_func=choose) if choose else ms.load_checkpoint(path)
    except Exception as e:  # noqa: BLE001  MindSpore raises ValueError/RuntimeError/TypeError for damaged files
        raise CheckpointError(f"cannot read {what} (not a MindSpore .ckpt, or the file is truncated or damaged: "
                              f"{_first_line(e)})", path=path, hint="re-download or re-save it") from None
    if not params:
        raise CheckpointError(f"{what} holds no parameters", path=path, hint="pass a checkpoint with weights")
    return dict(params)


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


def save_checkpoint(obj: Any, path: PathLike, append_dict: Optional[Dict[str, Any]] = None) -> str:
    """Save a cell or parameter list to ``path`` atomically (a crash leaves at most a hidden temporary file)."""
    import mindspore as ms

    path = os.fspath(path)
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(obj, tmp, append_dict=append_dict)
    return path
