"""The checksum embedded in every checkpoint visionzoo writes (record ``_vz_checksum``).

The digest is a SHA-256 over the file's *content*: every entry's name, dtype, shape and bytes
(strings by their UTF-8 text), in name order, the checksum record itself excluded. It is computed
from the values being saved and recomputed from the values read back, so it does not depend on
MindSpore's file layout. The record is written last: a file cut at an entry boundary loses it
(weights come first, so such a file still holds every weight, and a resume refuses it for the
missing checksum); a file cut anywhere else does not parse; a changed byte changes the digest.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import numpy as np

from . import records

__all__ = ["content_digest", "digest_matches"]


def _entry_bytes(value: Any):
    if isinstance(value, str):
        return "str", (), value.encode("utf-8")
    array = np.ascontiguousarray(value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value))
    return str(array.dtype), tuple(array.shape), array.tobytes()


def content_digest(entries: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``{name: Tensor, Parameter, array or str}``, ignoring the checksum record."""
    h = hashlib.sha256()
    for name in sorted(entries):
        if name == records.CHECKSUM:
            continue
        dtype, shape, data = _entry_bytes(entries[name])
        h.update(f"{name}\0{dtype}\0{shape}\0{len(data)}\0".encode("utf-8"))
        h.update(data)
    return h.hexdigest()


def digest_matches(entries: Mapping[str, Any]) -> bool:
    """True when ``entries`` (read back from a file) hold a checksum record equal to their digest."""
    stored = entries.get(records.CHECKSUM)
    return isinstance(stored, str) and stored == content_digest(entries)
