"""Process-wide runtime defaults and every CPU-specific performance choice, in one place.

Imported first by ``visionzoo/__init__.py`` so that the environment is set before MindSpore runs its
first operation. What is chosen, why, and how to switch it off (see also docs/performance.md):

=============================  ===========================================  ==============================
choice                         why                                          override
=============================  ===========================================  ==============================
``ONEDNN_MAX_CPU_ISA=AVX2``    MindSpore 2.10's oneDNN otherwise picks a     set the variable yourself, or
(x86-64, set on import)        reference convolution 30-100x slower          ``VISIONZOO_NO_CPU_DEFAULTS=1``
fast max pooling               oneDNN's ``simple_nchw`` pooling backward is  ``VISIONZOO_FAST_POOL=0`` or
(CPU target)                   ~40% of a GoogLeNet step; a C++ kernel is     :func:`use_fast_pool`\\ ``(False)``
                               5-20x faster with identical numerics
fast convolution               MindSpore hands oneDNN plain NCHW tensors,    ``VISIONZOO_FAST_CONV=0`` or
(CPU target)                   so convolutions run as im2col + GEMM; a C++   :func:`use_fast_conv`\\ ``(False)``
                               kernel lets oneDNN pick blocked layouts and
                               its direct kernels (~1.6x on VGG's convs)
conv formulation tuning        each conv geometry keeps the fastest of up    ``VISIONZOO_CONV_TUNING=0``:
(fast convolution)             to five formulations, timed over its first    always oneDNN's blocked one
                               calls; they round differently in the last     (bitwise-reproducible runs)
                               bits, and the choice depends on timings
=============================  ===========================================  ==============================
"""
from __future__ import annotations

import logging
import os
import platform
from typing import Optional

_logger = logging.getLogger(__name__)

#: Environment defaults applied on import when the user has not set the variable.
#: ONEDNN_MAX_CPU_ISA=AVX2: with the oneDNN build inside MindSpore 2.10 the default ISA dispatch picks
#: a reference convolution that is 30-100x slower than its AVX2 kernels (a 3x3 conv on 2x64x224x224
#: takes 9 s instead of 0.08 s). Capping the ISA at AVX2 selects the fast JIT kernels.
CPU_ENV_DEFAULTS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}

#: Environment switch for the fast CPU max pooling ("0" turns it off).
FAST_POOL_ENV = "VISIONZOO_FAST_POOL"
#: Environment switch for the fast CPU convolution ("0" turns it off).
FAST_CONV_ENV = "VISIONZOO_FAST_CONV"
#: Environment switch for the fast convolution's tuning ("0": always oneDNN's blocked formulation).
CONV_TUNING_ENV = "VISIONZOO_CONV_TUNING"
#: Environment switch that leaves the process environment untouched on import.
NO_DEFAULTS_ENV = "VISIONZOO_NO_CPU_DEFAULTS"

_applied: dict = {}
_overrides: dict = {"pool": None, "conv": None}  # use_fast_pool / use_fast_conv


def _is_off(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() in ("0", "false", "no", "off")


def apply_cpu_defaults(environ=None) -> dict:
    """Set :data:`CPU_ENV_DEFAULTS` in ``environ`` (default ``os.environ``) where not already set.

    Returns the mapping of variables that were set. A value the user already set is kept. Only
    x86-64 machines are affected (the variable is meaningless elsewhere). Set
    ``VISIONZOO_NO_CPU_DEFAULTS=1`` to leave the environment untouched.
    """
    env = os.environ if environ is None else environ
    chosen = {}
    if env.get(NO_DEFAULTS_ENV, "") not in ("", "0"):
        _logger.debug("%s is set: environment left untouched", NO_DEFAULTS_ENV)
        return chosen
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return chosen
    for key, value in CPU_ENV_DEFAULTS.items():
        if key in env:
            _logger.debug("keeping user-set %s=%s", key, env[key])
            continue
        env[key] = value
        chosen[key] = value
    if chosen:
        _logger.debug("visionzoo CPU defaults applied: %s", chosen)
    return chosen


def _fast_path_enabled(kind: str, env_var: str) -> bool:
    """The choice for one kind of fast CPU layer: the use_fast_* override, then ``env_var=0`` (off),
    then on exactly when MindSpore's ``device_target`` is ``"CPU"`` (Ascend and GPU keep standard ops)."""
    if _overrides[kind] is not None:
        return _overrides[kind]
    if _is_off(os.environ.get(env_var)):
        return False
    import mindspore as ms  # deferred: importing visionzoo must not initialise MindSpore's context

    return ms.get_context("device_target") == "CPU"


def use_fast_pool(enabled: Optional[bool]) -> None:
    """Force the fast CPU max pooling on (True) or off (False) for layers built from now on.

    ``None`` restores the automatic choice (on for ``device_target == "CPU"`` unless
    ``VISIONZOO_FAST_POOL=0``). Layers already built keep their choice.
    """
    _overrides["pool"] = enabled


def fast_pool_enabled() -> bool:
    """Whether :class:`visionzoo.ops.MaxPool2d` layers built now take the fast CPU path.

    Order: :func:`use_fast_pool` override, then ``VISIONZOO_FAST_POOL=0`` (off), then on exactly when
    MindSpore's ``device_target`` is ``"CPU"`` (Ascend and GPU keep the standard op).
    """
    return _fast_path_enabled("pool", FAST_POOL_ENV)


def use_fast_conv(enabled: Optional[bool]) -> None:
    """Force the fast CPU convolution on (True) or off (False) for layers built from now on; ``None``
    restores the automatic choice (see :func:`fast_conv_enabled`). Layers already built keep theirs.
    """
    _overrides["conv"] = enabled


def fast_conv_enabled() -> bool:
    """Whether :class:`visionzoo.ops.Conv2d` layers built now take the fast CPU path: the
    :func:`use_fast_conv` override, then ``VISIONZOO_FAST_CONV=0`` (off), then on for the CPU target.
    """
    return _fast_path_enabled("conv", FAST_CONV_ENV)


def conv_tuning_enabled() -> bool:
    """Whether the fast convolution times its formulations over each geometry's first calls and keeps the
    fastest (default), or always runs oneDNN's blocked one (``VISIONZOO_CONV_TUNING=0``, read when the
    kernels are first loaded in a process). The formulations compute the same convolution with float32
    sums in different orders, and which one wins depends on timings; switch tuning off when two runs
    with the same seed must agree bit for bit.
    """
    return not _is_off(os.environ.get(CONV_TUNING_ENV))


def cache_dir() -> str:
    """Directory for build artefacts (compiled CPU kernels): ``kernels/`` under the one visionzoo cache
    root, :func:`visionzoo.files.cache_root` (``$VISIONZOO_HOME``, else ``$XDG_CACHE_HOME/visionzoo``,
    else ``~/.cache/visionzoo``)."""
    from .files import cache_root

    return str(cache_root("kernels"))


_applied = apply_cpu_defaults()
