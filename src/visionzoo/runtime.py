"""Process-wide runtime defaults that must be set before MindSpore runs its first operation.

Kept in one place so that every CPU-specific choice is visible and overridable. Imported first by
``visionzoo/__init__.py``.
"""
from __future__ import annotations

import logging
import os
import platform

_logger = logging.getLogger(__name__)

#: Environment defaults applied on import when the user has not set the variable.
#: ONEDNN_MAX_CPU_ISA=AVX2: on AVX-512 CPUs the oneDNN build inside MindSpore 2.10 picks a reference
#: convolution that is 30-100x slower than its AVX2 kernels (a 3x3 conv on 2x64x224x224 takes 9 s
#: instead of 0.08 s). Capping the ISA at AVX2 selects the fast JIT kernels.
CPU_ENV_DEFAULTS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}

_applied: dict = {}


def apply_cpu_defaults(environ=None) -> dict:
    """Set :data:`CPU_ENV_DEFAULTS` in ``environ`` (default ``os.environ``) where not already set.

    Returns the mapping of variables that were set. A value the user already set is kept. Only
    x86-64 machines are affected (the variable is meaningless elsewhere). Set
    ``VISIONZOO_NO_CPU_DEFAULTS=1`` to leave the environment untouched.
    """
    env = os.environ if environ is None else environ
    chosen = {}
    if env.get("VISIONZOO_NO_CPU_DEFAULTS", "") not in ("", "0"):
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


_applied = apply_cpu_defaults()
