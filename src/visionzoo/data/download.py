"""Download CIFAR-10 (binary version), verify its checksum, extract it safely.

Everything happens in a temporary folder inside ``data_dir``; only a verified, fully extracted
``cifar-10-batches-bin/`` is moved into place, so a failed download, a wrong checksum or a refused
archive leaves nothing behind. Archive members that are links, devices, absolute paths or paths
escaping the target are refused.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tarfile
import tempfile
from typing import Optional

from ..errors import DataError
from ..files import DigestMismatch, DownloadFailed, download_verified
from .cifar import CIFAR10

__all__ = ["CIFAR10_URL", "CIFAR10_MD5", "download_cifar10", "safe_extract"]

_logger = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"


def _check_member(member: tarfile.TarInfo, dest: str, archive: str) -> None:
    name = member.name
    parts = posixpath.normpath(name.replace("\\", "/")).split("/")
    if posixpath.isabs(name) or os.path.isabs(name) or ".." in parts or (parts and parts[0].endswith(":")):
        raise DataError(f"{archive}: refused member {name!r}: its path leaves the extraction folder")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refused member {name!r}: links and special files are not extracted")
    target = os.path.realpath(os.path.join(dest, name))
    if os.path.commonpath([target, dest]) != dest:
        raise DataError(f"{archive}: refused member {name!r}: its path leaves the extraction folder")


def safe_extract(archive: str, dest: str) -> None:
    """Extract the tar ``archive`` into ``dest`` after checking every member (DataError if one is unsafe)."""
    dest = os.path.realpath(dest)
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, dest, archive)
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **kwargs)
    except (tarfile.TarError, EOFError) as e:
        raise DataError(f"{archive}: not a readable tar.gz archive ({e})") from None


def download_cifar10(data_dir: str, url: Optional[str] = None, md5: Optional[str] = None, timeout: float = 60.0) -> str:
    """Fetch CIFAR-10's binary archive into ``data_dir/cifar-10-batches-bin``; returns that folder.

    ``url`` and ``md5`` default to :data:`CIFAR10_URL` and :data:`CIFAR10_MD5` (read at call time);
    tests override them to serve a small archive from 127.0.0.1. An existing folder is kept as it is.
    """
    url = url or CIFAR10_URL
    md5 = md5 or CIFAR10_MD5
    target = os.path.join(data_dir, CIFAR10.folder)
    if os.path.isdir(target):
        return target
    os.makedirs(data_dir, exist_ok=True)
    _logger.info("downloading CIFAR-10 from %s into %s", url, data_dir)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".cifar10-download-") as tmp:
        archive = os.path.join(tmp, "cifar-10-binary.tar.gz")
        try:
            download_verified(url, archive, md5, algorithm="md5", timeout=timeout)
        except DownloadFailed as e:
            raise DataError(
                f"{url}: download failed ({e.reason})", hint="download it by hand and extract it into data_dir"
            ) from None
        except DigestMismatch as e:
            raise DataError(
                f"{url}: md5 {e.actual} does not match the expected {e.expected}; the download is damaged "
                "or not CIFAR-10's binary archive; nothing was extracted"
            ) from None
        extracted = os.path.join(tmp, "extracted")
        safe_extract(archive, extracted)
        found = os.path.join(extracted, CIFAR10.folder)
        if not os.path.isdir(found):
            raise DataError(f"{url}: the archive has no {CIFAR10.folder}/ folder; nothing was extracted")
        shutil.move(found, target)
    _logger.info("CIFAR-10 ready in %s", target)
    return target
