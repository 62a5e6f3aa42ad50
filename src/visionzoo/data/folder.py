"""ImageNet-style folders: ``<data_dir>/<split>/<class>/*.jpg|jpeg|png``.

Classes are the sorted sub-folder names (any number). Files are the direct children of each class
folder whose extension is one of :data:`EXTENSIONS` (exact case, as MindSpore's ImageFolderDataset
matches them), in sorted order; that is ImageFolderDataset's own order when it is given the same
``class_indexing``, which a test checks, so an index here addresses the same image there.

Corrupt images: every file's first bytes are checked for a JPEG or PNG signature (one small read per
file). Empty or unrecognisable files are skipped with one warning that gives their count and the first
few paths; :attr:`FolderIndex.skipped` lists them all. A file whose header is fine but whose body is
damaged is left to the decoder (libjpeg/libpng fill what they cannot read, or MindSpore raises).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ..errors import DataError

__all__ = ["EXTENSIONS", "FolderIndex", "scan_image_folder"]

_logger = logging.getLogger(__name__)

#: File extensions read as images, matched with exact case (ImageFolderDataset is case-sensitive).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
_SHOW = 5  # paths named in the corrupt-file warning


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
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return any(head.startswith(sig) for sig in _SIGNATURES)


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
            _logger.warning("%s: class folder has no .jpg/.jpeg/.png images", folder)
        files += [os.path.join(folder, n) for n in names]
        labels += [label] * len(names)
    if not files:
        raise DataError(f"{root}: {len(class_names)} class folders but no .jpg/.jpeg/.png images; {expected}")
    ok = np.array([_looks_like_image(p) for p in files], dtype=bool)
    skipped = [p for p, good in zip(files, ok) if not good]
    if skipped:
        shown = ", ".join(skipped[:_SHOW]) + (", ..." if len(skipped) > _SHOW else "")
        _logger.warning("%s: skipping %d of %d files that are empty or not JPEG/PNG: %s",
                        root, len(skipped), len(files), shown)
    if not ok.any():
        raise DataError(f"{root}: none of the {len(files)} image files is a readable JPEG or PNG; first: {skipped[0]}")
    return FolderIndex(root=root, class_names=class_names, files=files,
                       labels=np.asarray(labels, dtype=np.int32), valid=np.flatnonzero(ok), skipped=skipped)

