"""ImageNet-style folders: ``<data_dir>/<split>/<class>/<image>``, images named .jpg, .jpeg, .png or .bmp.

Classes are the sorted sub-folder names (any number). Files are the direct children of each class
folder whose extension is one of :data:`EXTENSIONS` (exact case, as MindSpore's ImageFolderDataset
matches them), in sorted order; that is ImageFolderDataset's own order when it is given the same
``class_indexing``, which a test checks, so an index here addresses the same image there.

Corrupt images are skipped, not fatal: every file's head is checked for a JPEG or PNG signature and
its tail for the format's end marker (two small reads per file). Empty, truncated or unrecognisable
files are left out with one warning that gives their count and the first few paths;
:attr:`FolderIndex.skipped` lists them all. (MindSpore's decoder raises on a truncated image in the
middle of an epoch, and a truncated JPEG header can even kill the process with SIGFPE.) A file whose
head and tail are intact but whose body is damaged is left to the decoder, which raises.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ..constants import IMAGE_EXTENSIONS
from ..errors import DataError

__all__ = ["EXTENSIONS", "FolderIndex", "scan_image_folder"]

_logger = logging.getLogger(__name__)

#: File extensions read as images: :data:`visionzoo.constants.IMAGE_EXTENSIONS` in lower and upper case,
#: matched with exact case (ImageFolderDataset is case-sensitive).
EXTENSIONS = tuple(e for ext in IMAGE_EXTENSIONS for e in (ext, ext.upper()))
_NAMES = "/".join(IMAGE_EXTENSIONS)
#: (head signature, end marker): JPEG SOI ... EOI, PNG signature ... IEND chunk. The end marker is
#: looked for in the last _TAIL bytes, since some writers append padding after it. In JPEG
#: entropy-coded data 0xFF is always stuffed, so FF D9 near the tail can only be the end marker.
_SIGNATURES = ((b"\xff\xd8\xff", b"\xff\xd9"), (b"\x89PNG\r\n\x1a\n", b"IEND"), (b"BM", b""))  # BMP has no end marker
_TAIL = 256
_SHOW = 5  # paths named in the corrupt-file warning
_CHECK_THREADS = 8  # file checks are I/O-bound: threads help on network and cold disks
_PARALLEL_FROM = 2048


@dataclass
class FolderIndex:
    """A scanned split folder: classes, files in ImageFolderDataset order, and which ones are usable."""

    root: str
    class_names: List[str]
    files: List[str] = field(default_factory=list)  # every matching file, dataset order
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    valid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # indices into files
    skipped: List[str] = field(default_factory=list)  # corrupt files left out

    @property
    def class_indexing(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.class_names)}


def _looks_like_image(path: str) -> bool:
    """A JPEG, PNG or BMP signature at the head and (JPEG, PNG) its end marker near the tail.

    The tail check catches truncated files (interrupted copies and downloads): MindSpore's decoder
    raises on them mid-epoch, and on some truncated JPEG headers kills the process (SIGFPE).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL))
            tail = f.read(_TAIL)
    except OSError:
        return False
    for signature, end in _SIGNATURES:
        if head.startswith(signature):
            return end in tail
    return False


def _check_files(files: List[str]) -> np.ndarray:
    """:func:`_looks_like_image` for every file, in threads (the reads release the GIL)."""
    if len(files) < _PARALLEL_FROM:
        return np.array([_looks_like_image(p) for p in files], dtype=bool)
    chunks = [files[i::_CHECK_THREADS] for i in range(_CHECK_THREADS)]
    with ThreadPoolExecutor(_CHECK_THREADS) as pool:
        results = list(pool.map(lambda chunk: [_looks_like_image(p) for p in chunk], chunks))
    ok = np.empty(len(files), dtype=bool)
    for i, result in enumerate(results):
        ok[i::_CHECK_THREADS] = result
    return ok


def scan_image_folder(data_dir: str, split_name: str) -> FolderIndex:
    """Scan ``data_dir/split_name``; DataError when it is missing, has no class folders or no images."""
    root = os.path.join(data_dir, split_name)
    expected = f"expected class folders with images: {os.path.join(root, '<class>', '*.jpg')}"
    if not os.path.isdir(root):
        raise DataError(f"{root}: split folder not found; {expected} (check data_dir and train_split/val_split)")
    class_names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not class_names:
        raise DataError(f"{root}: no class folders; {expected}")
    files: List[str] = []
    labels: List[int] = []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        names = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.endswith(EXTENSIONS))
        if not names:
            _logger.warning("%s: class folder has no %s images", folder, _NAMES)
        files += [os.path.join(folder, n) for n in names]
        labels += [label] * len(names)
    if not files:
        raise DataError(f"{root}: {len(class_names)} class folders but no {_NAMES} images; {expected}")
    ok = _check_files(files)
    skipped = [p for p, good in zip(files, ok) if not good]
    if skipped:
        shown = ", ".join(skipped[:_SHOW]) + (", ..." if len(skipped) > _SHOW else "")
        _logger.warning(
            "%s: skipping %d of %d files that are empty, truncated or not JPEG/PNG/BMP: %s",
            root,
            len(skipped),
            len(files),
            shown,
        )
    if not ok.any():
        raise DataError(
            f"{root}: none of the {len(files)} image files is a readable JPEG, PNG or BMP; first: {skipped[0]}"
        )
    return FolderIndex(
        root=root,
        class_names=class_names,
        files=files,
        labels=np.asarray(labels, dtype=np.int32),
        valid=np.flatnonzero(ok),
        skipped=skipped,
    )
