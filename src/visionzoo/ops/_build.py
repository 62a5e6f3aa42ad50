"""Compiling visionzoo's small C++ CPU kernels once per machine, cached and shared between processes.

Deployment properties (docs/performance.md, "Building the kernels"):

* one process builds, the others wait: a file lock (``fcntl.flock``) per library in the cache directory,
  so N ``msrun`` ranks starting together compile once;
* a failed build leaves a failure marker (``<library>.failed``, holding the compiler's message) next to
  where the library would be: the process that failed warns, every later process on the machine only
  logs at debug level and uses the standard op, until the key changes or ``python -m visionzoo.ops build``
  retries;
* the compiler runs under a timeout (``VISIONZOO_BUILD_TIMEOUT`` seconds, default 300);
* the cache key covers the source (every ``.cc`` file of the library and every header it may include),
  the flags, the compiler (its ``--version`` and target triple), the MindSpore version and the target
  ISA: the code is compiled for the compiler's baseline of that triple (no ``-march=native``), so one
  prebuilt cache serves every CPU of the architecture; the ISA a host runs at is chosen at run time
  (:func:`visionzoo.runtime.choose_isa`), not compiled in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import logging
import os
import shutil
import subprocess
from typing import Callable, Iterator, List, Optional, Sequence

from .. import runtime
from ..errors import DeviceError
from ..files import atomic_path, write_text_atomic

_logger = logging.getLogger(__name__)

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
# No -march=native: the cache may be shared between machines.
CXXFLAGS = ("-O3", "-fPIC", "-shared", "-std=c++17", "-fopenmp")
#: Seconds one compilation may take before it counts as failed.
BUILD_TIMEOUT_ENV = "VISIONZOO_BUILD_TIMEOUT"
_DEFAULT_TIMEOUT = 300.0


class KernelBuildError(DeviceError):
    """visionzoo's CPU kernels could not be built or loaded.

    Fields: ``what`` (which kernels are unavailable, and why), ``reason`` (the compiler's or loader's
    message, one line), ``marker`` (the failure marker's path, or None) and ``hint`` (how to retry or opt out).
    """

    def __init__(self, what: str, reason: str, marker: Optional[str] = None):
        self.kernels, self.reason, self.marker = what, reason, marker
        super().__init__(
            f"visionzoo's {what} are unavailable: {reason}",
            hint="fix the toolchain, then run `python -m visionzoo.ops build` (it clears failure markers "
            "and rebuilds), or unset VISIONZOO_FAST_OPS=require to fall back to the standard ops",
        )


def compiler() -> Optional[str]:
    """The C++ compiler used: ``$CXX``, else g++, else c++ on PATH; None if there is none."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


@functools.lru_cache(maxsize=None)
def compiler_identity(cxx: Optional[str]) -> str:
    """``--version`` first line and ``-dumpmachine`` target of ``cxx`` ("none" without a compiler)."""
    if cxx is None:
        return "none"
    parts = []
    for flag in ("--version", "-dumpmachine"):
        try:
            out = subprocess.run([cxx, flag], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        parts.append((out.splitlines() or ["?"])[0].strip())
    return " | ".join(parts)


def _mindspore_version() -> str:
    try:
        from importlib.metadata import version

        return version("mindspore")
    except Exception:  # noqa: BLE001 - any packaging problem only weakens the key
        return "unknown"


def sources(name: str) -> List[str]:
    """The source files of library ``name``, relative to ``csrc/``: ``<name>.cc``, or every ``.cc`` file in
    the folder ``<name>/`` (one unit per job, compiled into one library)."""
    folder = os.path.join(CSRC, name)
    if os.path.isdir(folder):
        return [os.path.join(name, f) for f in sorted(os.listdir(folder)) if f.endswith(".cc")]
    return [f"{name}.cc"]


def headers(name: str) -> List[str]:
    """The headers library ``name`` may include, relative to ``csrc/`` (sorted): those in ``csrc/`` and, for
    a library with a folder, those in the folder."""
    found = [f for f in os.listdir(CSRC) if f.endswith(".h")]
    folder = os.path.join(CSRC, name)
    if os.path.isdir(folder):
        found += [os.path.join(name, f) for f in os.listdir(folder) if f.endswith(".h")]
    return sorted(found)


def cache_key(name: str, link_args: Sequence[str] = (), cxx: Optional[str] = None) -> str:
    """The 16-hex-digit key of library ``name`` (:func:`sources`, with every header it may include) built
    with ``link_args`` by ``cxx``: a hash of the sources' names and contents, the flags, the compiler
    identity, the MindSpore version and the target ISA (the target triple and ``-march`` flags, here the
    triple's baseline)."""
    source = b""
    for file in [*sources(name), *headers(name)]:
        with open(os.path.join(CSRC, file), "rb") as f:
            source += file.encode() + b"\0" + f.read()
    march = [flag for flag in CXXFLAGS if flag.startswith("-march")] or ["baseline"]
    parts = [" ".join((*CXXFLAGS, *link_args)), compiler_identity(cxx), _mindspore_version(), " ".join(march)]
    return hashlib.sha256(source + "\0".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block; other processes wait."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _timeout() -> float:
    try:
        return float(os.environ.get(BUILD_TIMEOUT_ENV, _DEFAULT_TIMEOUT))
    except ValueError:
        return _DEFAULT_TIMEOUT


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _compile(cxx: str, source: Sequence[str], lib: str, link_args: Sequence[str]) -> None:
    """Compile the ``source`` files into the one library ``lib`` atomically; raises OSError / subprocess
    errors on failure."""
    with atomic_path(lib, suffix=".so") as tmp:
        # the link arguments go after the sources so that the linker resolves their symbols from them
        subprocess.run(
            [cxx, *CXXFLAGS, "-o", tmp, *source, *link_args],
            check=True,
            capture_output=True,
            text=True,
            timeout=_timeout(),
        )
        os.chmod(tmp, 0o755)  # a temporary file's 0600 would hide a shared cache from other users


def _one_line(err: BaseException) -> str:
    if isinstance(err, subprocess.TimeoutExpired):
        return f"the compiler ran past the {err.timeout:g} s timeout ({BUILD_TIMEOUT_ENV})"
    detail = (getattr(err, "stderr", "") or str(err)).strip()
    lines = [line for line in detail.splitlines() if "error" in line.lower()] or detail.splitlines() or ["?"]
    return lines[0].strip()


def cached_artifact(path: str, what: str, produce: Callable[[str], None], retry: bool = False) -> str:
    """Return ``path``, first running ``produce(path)`` under a file lock if it does not exist yet.

    One process produces while the others wait for it. ``produce`` must write ``path`` atomically and
    raise OSError or a subprocess error on failure; a failure writes the marker ``<path minus .so>.failed``
    and raises :class:`KernelBuildError`; while the marker exists, later calls raise at once
    (``retry=True``, as the prebuild command does, removes it first).
    """
    stem = path[:-3] if path.endswith(".so") else path
    marker = stem + ".failed"
    if os.path.exists(path):
        return path
    if retry and os.path.exists(marker):
        os.remove(marker)
    if os.path.exists(marker):
        raise KernelBuildError(what, _read(marker) or "an earlier build failed", marker)
    try:
        with file_lock(stem + ".lock"):
            if os.path.exists(path):  # produced by another process while this one waited
                return path
            if os.path.exists(marker):  # ... or failed there: that process has warned
                raise KernelBuildError(what, _read(marker) or "an earlier build failed", marker)
            try:
                produce(path)
            except (OSError, subprocess.SubprocessError) as err:
                reason = _one_line(err)
                write_text_atomic(marker, reason + "\n")
                _logger.warning(
                    "building visionzoo's %s failed (%s); this machine uses MindSpore's standard op "
                    "until `python -m visionzoo.ops build` succeeds (marker: %s)",
                    what,
                    reason,
                    marker,
                )
                raise KernelBuildError(what, reason, marker) from None
    except OSError as err:  # the cache directory itself is unusable (read-only, full)
        raise KernelBuildError(what, f"cache directory {os.path.dirname(path)}: {err}") from None
    _logger.debug("built %s: %s", what, path)
    return path


def build_library(name: str, link_args: Sequence[str] = (), what: str = "CPU kernels", retry: bool = False) -> str:
    """Compile library ``name`` (:func:`sources`) into a shared library (once per machine) and return its
    path, cached under :func:`visionzoo.runtime.cache_dir` as ``<name>_<key>.so`` (:func:`cache_key`) through
    :func:`cached_artifact` (lock, failure marker, ``retry``); raises :class:`KernelBuildError`."""
    cxx = compiler()
    lib = os.path.join(runtime.cache_dir(), f"{name}_{cache_key(name, link_args, cxx)}.so")

    def produce(out: str) -> None:
        if cxx is None:
            raise OSError(errno.ENOENT, "no C++ compiler found (set CXX or install g++)")
        _compile(cxx, [os.path.join(CSRC, f) for f in sources(name)], out, link_args)

    return cached_artifact(lib, what, produce, retry)


def copy_file(source: str, out: str) -> None:
    """Copy ``source`` to ``out`` atomically (a real copy: a new inode, so the loader maps it anew)."""
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o755)


def fallback(err: KernelBuildError) -> None:
    """What a layer does when its kernels are unavailable: raise under ``VISIONZOO_FAST_OPS=require``;
    otherwise log (debug level when a failure marker says another process already warned)."""
    if runtime.fast_ops_required():
        raise err
    if err.marker is not None:  # the process that failed has warned; one warning per machine
        _logger.info("%s; using MindSpore's standard op", err)
    else:
        _logger.warning("%s; using MindSpore's standard op", err)


def load_once(load: Callable[[], str]) -> Callable[[], Optional[str]]:
    """Wrap ``load`` (returns a library path or raises :class:`KernelBuildError`) so that it runs once per
    process: the wrapper returns the path, or None after one :func:`fallback` report (and raises on every
    call under ``VISIONZOO_FAST_OPS=require``). ``wrapper.cache_clear()`` forgets the outcome."""
    outcome: list = []

    @functools.wraps(load)
    def wrapper() -> Optional[str]:
        if not outcome:
            try:
                outcome.append(load())
            except KernelBuildError as err:
                outcome.append(err)
                fallback(err)  # reported once (or raised under require)
                return None
        result = outcome[0]
        if isinstance(result, KernelBuildError):
            if runtime.fast_ops_required():
                raise result
            return None
        return result

    wrapper.cache_clear = outcome.clear
    return wrapper
