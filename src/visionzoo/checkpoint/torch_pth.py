"""PyTorch ``.pth``/``.pt`` state dicts, read without torch and without running code from the file.

A torch checkpoint is a pickle, and unpickling runs whatever callables the pickle names. Here a
restricted :class:`pickle.Unpickler` accepts only the records a state dict is made of:

* ``collections.OrderedDict`` (the dict itself and its ``_metadata``),
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` (a tensor: a
  view of a storage), mapped to functions that build numpy arrays,
* ``torch.<Type>Storage`` classes, only as the type field of a storage reference
  (``persistent_load``), mapped to numpy dtypes.

Any other global (``os.system``, ``builtins.eval``, a torch module class, ...) is refused with one
line naming it, before it is looked up: nothing named in a checkpoint is ever imported or called.

Both of torch's file layouts are read: the zip archive of torch >= 1.6 (``<root>/data.pkl`` and one
``<root>/data/<key>`` entry per storage) and the older stream (magic number, protocol, system info,
the pickle, the storage keys, then each storage as an 8-byte element count and its bytes), which is
what torchvision's published ``.pth`` files use.

:func:`convert_state_dict` maps torch names to a MindSpore model's names (BatchNorm
``weight/bias/running_mean/running_var`` -> ``gamma/beta/moving_mean/moving_variance``,
``num_batches_tracked`` dropped, plus the model's own renames such as GoogLeNet's ``branch1`` ->
``b1``); layouts already agree (conv OIHW, dense out x in).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import struct
import zipfile
from typing import Any, BinaryIO, Dict, Iterable, Mapping, Sequence, Tuple, Union

import numpy as np

from ..errors import CheckpointError, CheckpointNotFoundError

__all__ = ["TORCH_SUFFIXES", "is_torch_file", "read_torch_state_dict", "convert_state_dict", "UnsafeCheckpoint"]

#: File suffixes read as torch checkpoints.
TORCH_SUFFIXES = (".pth", ".pt", ".bin")

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class -> numpy dtype ("bfloat16" is widened to float32 after reading)
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

PathLike = Union[str, "os.PathLike[str]"]


class UnsafeCheckpoint(CheckpointError):
    """A checkpoint's pickle names something other than a tensor record; it was not loaded."""


class _Storage:
    """A storage reference from the pickle; ``array`` is filled once its bytes are read."""

    __slots__ = ("dtype", "key", "numel", "array")

    def __init__(self, dtype: Any, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel, self.array = dtype, key, numel, None


class _StorageType:
    """Stands for a ``torch.<Type>Storage`` class; only usable as a storage reference's type."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _TensorRecord:
    """A tensor as the pickle describes it: a strided view of a storage (resolved after loading)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any) -> None:
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor record does not point to a storage")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRecord:
    return _TensorRecord(storage, storage_offset, size, stride)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRecord:
    return _TensorRecord(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    if not isinstance(data, _TensorRecord):
        raise pickle.UnpicklingError("a parameter record does not hold a tensor")
    return data


_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals and storage references."""

    def __init__(self, file: BinaryIO, storages: Dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafeCheckpoint(
                f"refused: the pickle asks for {module}.{name}, which is not a tensor record "
                "(a state dict holds only tensors; nothing from this file was run)",
                hint="load only checkpoints saved with torch.save(model.state_dict(), ...)",
            )
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, location, numel[, view metadata (legacy)])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpoint(
                f"refused: unknown persistent record {str(pid)[:80]!r} (only tensor storages "
                "are accepted; nothing from this file was run)"
            )
        if len(pid) > 5 and pid[5] is not None:
            raise UnsafeCheckpoint(
                "refused: storage views (torch < 0.4 files) are not supported",
                hint="re-save the state dict with a current torch",
            )
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(pid[1].dtype, key, int(pid[4]))
        return self.storages[key]


def is_torch_file(path: PathLike) -> bool:
    """True if ``path`` looks like a torch checkpoint (by suffix, else by content)."""
    path = os.fspath(path)
    if path.lower().endswith(TORCH_SUFFIXES):
        return True
    if not os.path.isfile(path):
        return False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
    with open(path, "rb") as f:
        head = f.read(16)
    return head[:1] == b"\x80" and b"\x6a\xa8\x50" in head  # a pickled int: the legacy magic number


def _array_of(storage: _Storage, raw: bytes, path: str) -> np.ndarray:
    bf16 = isinstance(storage.dtype, str)
    dtype = np.dtype(np.uint16 if bf16 else storage.dtype).newbyteorder("<")
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.size < storage.numel:
        raise CheckpointError(
            f"storage {storage.key} holds {arr.size} of {storage.numel} elements (truncated file)",
            path=path,
            hint="re-download the checkpoint",
        )
    arr = arr[: storage.numel]
    if bf16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _tensor_array(t: _TensorRecord, path: str) -> np.ndarray:
    base = t.storage.array
    if base is None:
        raise CheckpointError(
            f"storage {t.storage.key} is missing from the file", path=path, hint="re-download the checkpoint"
        )
    item = base.itemsize
    if t.offset < 0 or len(t.size) != len(t.stride) or any(s < 0 for s in t.size) or any(st < 0 for st in t.stride):
        raise CheckpointError(
            f"a tensor record of storage {t.storage.key} has an invalid layout",
            path=path,
            hint="the file is damaged: re-download it",
        )
    if all(t.size) and (t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride)) >= base.size):
        raise CheckpointError(
            f"a tensor reaches past the end of storage {t.storage.key}",
            path=path,
            hint="the file is damaged: re-download it",
        )
    if not all(t.size):
        return np.zeros(t.size, base.dtype)
    view = np.lib.stride_tricks.as_strided(base[t.offset :], shape=t.size, strides=[s * item for s in t.stride])
    return np.array(view)  # a contiguous copy that owns its memory


def _resolve(obj: Any, path: str) -> Any:
    if isinstance(obj, _TensorRecord):
        return _tensor_array(obj, path)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve(v, path)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, path) for v in obj)
    return obj


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkl:
            raise CheckpointError("zip file without data.pkl: not a torch checkpoint", path=path)
        root = pkl[0][: -len("data.pkl")]
        storages: Dict[str, _Storage] = {}
        obj = _RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        for key, storage in storages.items():
            entry = f"{root}data/{key}"
            if entry not in names:
                raise CheckpointError(
                    f"storage {key} is missing from the archive", path=path, hint="re-download the checkpoint"
                )
            storage.array = _array_of(storage, z.read(entry), path)
    return obj


def _load_legacy(path: str) -> Any:
    with open(path, "rb") as f:

        def header(what: str) -> Any:
            value = _RestrictedUnpickler(f, {}).load()
            if what == "magic" and value != _LEGACY_MAGIC:
                raise CheckpointError(
                    "not a torch checkpoint (neither a zip archive nor torch's legacy format)",
                    path=path,
                    hint="pass a file written by torch.save",
                )
            return value

        header("magic")
        header("protocol")
        header("sys_info")
        storages: Dict[str, _Storage] = {}
        obj = _RestrictedUnpickler(f, storages).load()
        keys = _RestrictedUnpickler(f, {}).load()
        if not isinstance(keys, list):
            raise CheckpointError("damaged torch checkpoint (no storage key list)", path=path)
        for key in keys:
            storage = storages.get(str(key))
            count = f.read(8)
            if storage is None or len(count) < 8:
                raise CheckpointError(
                    "damaged or truncated torch checkpoint", path=path, hint="re-download the checkpoint"
                )
            numel = struct.unpack("<q", count)[0]
            itemsize = 2 if isinstance(storage.dtype, str) else np.dtype(storage.dtype).itemsize
            storage.array = _array_of(storage, f.read(numel * itemsize), path)
    return obj


def read_torch_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """Read a torch state dict into ``{name: numpy array}`` without torch and without running code.

    A top-level ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped. Raises
    :class:`UnsafeCheckpoint` for a pickle that names anything but tensor records, and
    :class:`~visionzoo.errors.CheckpointError` for a missing, damaged or non-state-dict file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError("torch checkpoint file not found", path=path, hint="pass an existing .pth file")
    try:
        obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except UnsafeCheckpoint as e:
        raise UnsafeCheckpoint(e.what, path=path, hint=e.hint) from None
    except CheckpointError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        zipfile.BadZipFile,
        struct.error,
        OverflowError,
    ) as e:
        raise CheckpointError(
            f"cannot read torch checkpoint ({type(e).__name__}: {str(e)[:120]})",
            path=path,
            hint="the file is damaged or truncated: re-download it",
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and set(obj) >= {wrapper} and isinstance(obj[wrapper], dict) and len(obj) <= 4:
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"torch checkpoint holds a {type(obj).__name__}, not a state dict",
            path=path,
            hint="save it with torch.save(model.state_dict(), path)",
        )
    state = _resolve(obj, path)
    tensors = {str(k): v for k, v in state.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise CheckpointError("torch checkpoint holds no tensors", path=path)
    return tensors


# BatchNorm and generic name suffixes: torch -> MindSpore
_BN_SUFFIXES = (
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
    ("weight", "gamma"),
    ("bias", "beta"),
)


def convert_state_dict(
    state: Mapping[str, np.ndarray], model_names: Iterable[str], renames: Sequence[Tuple[str, str]] = ()
) -> Tuple[Dict[str, np.ndarray], Tuple[str, ...]]:
    """Map a torch state dict onto a model's parameter names.

    ``renames``: ``(regex, replacement)`` pairs applied in order to every torch name (the model's
    own naming differences, e.g. ``r"\\.branch(\\d)\\." -> r".b\\1."``). Then a name whose BatchNorm
    form (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``) is a model parameter takes that
    form. ``num_batches_tracked`` counters are dropped. Returns ``(converted, dropped names)``;
    names that fit nothing are kept as they are, so a strict load reports them.
    """
    names = set(model_names)
    compiled = [(re.compile(p), r) for p, r in renames]
    out: Dict[str, np.ndarray] = {}
    dropped = []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            dropped.append(key)
            continue
        name = key
        for pattern, repl in compiled:
            name = pattern.sub(repl, name)
        if name not in names:
            stem, _, leaf = name.rpartition(".")
            for torch_leaf, ms_leaf in _BN_SUFFIXES:
                if leaf == torch_leaf and f"{stem}.{ms_leaf}" in names:
                    name = f"{stem}.{ms_leaf}"
                    break
        out[name] = value
    return out, tuple(dropped)
