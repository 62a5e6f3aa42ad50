"""Compiling visionzoo's small C++ CPU kernels once per machine, cached and shared between processes."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from typing import Optional, Sequence

from .. import runtime

_logger = logging.getLogger(__name__)

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
# No -march=native: the cache may be shared between machines.
CXXFLAGS = ("-O3", "-fPIC", "-shared", "-std=c++17", "-fopenmp")


def build_library(name: str, link_args: Sequence[str] = (), what: str = "CPU kernels") -> Optional[str]:
    """Compile ``csrc/<name>.cc`` into a shared library and return its path, or None (with a warning)
    when there is no compiler or the build fails.

    The library is cached under :func:`visionzoo.runtime.cache_dir`, keyed by a hash of the source,
    the flags and ``link_args``, and written atomically so that concurrent processes can share it.
    """
    source = os.path.join(CSRC, f"{name}.cc")
    flags = [*CXXFLAGS, *link_args]
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read() + " ".join(flags).encode()).hexdigest()[:16]
    out_dir = runtime.cache_dir()
    lib = os.path.join(out_dir, f"{name}_{digest}.so")
    if os.path.exists(lib):
        return lib
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        _logger.warning("no C++ compiler found; visionzoo uses MindSpore's standard %s", what)
        return None
    tmp = None
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
        # the link arguments go after the source so that the linker resolves its symbols from them
        subprocess.run([cxx, *CXXFLAGS, "-o", tmp, source, *link_args], check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        _logger.warning("building visionzoo's %s failed (%s); using MindSpore's standard op", what, detail.strip())
        if tmp and os.path.exists(tmp):
            os.remove(tmp)
        return None
    _logger.debug("built %s: %s", what, lib)
    return lib
