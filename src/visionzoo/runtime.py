"""Process-wide runtime defaults and every CPU-specific performance choice, in one place.

Imported first by ``visionzoo/__init__.py`` so that the environment is set before MindSpore runs its
first operation. What is chosen, why, and how to switch it off (see also docs/performance.md):

=============================  ===========================================  ==============================
choice                         why                                          override
=============================  ===========================================  ==============================
``ONEDNN_MAX_CPU_ISA=AVX2``    MindSpore 2.10's oneDNN otherwise picks a     set the variable yourself, or
(x86-64, set on import; caps   reference convolution 30-100x slower for      ``VISIONZOO_NO_CPU_DEFAULTS=1``
MindSpore's own oneDNN only)   plain NCHW (``jit_uni_ncsp:conv+ref:any``)
fast-path ISA                  the fast convolution runs its own copy of     ``ONEDNN_MAX_CPU_ISA`` (then
(x86-64, :func:`choose_isa`)   oneDNN at the host's best fp32 ISA            both copies use it)
                               (AVX-512 where present, else AVX2)
``VISIONZOO_FAST_OPS=require`` benchmarks and CI: a fast layer that cannot   unset (default: fall back to
                               be built raises instead of falling back       the standard op, warning)
fast max pooling               oneDNN's ``simple_nchw`` pooling backward is  ``VISIONZOO_FAST_POOL=0`` or
(CPU target)                   ~40% of a GoogLeNet step; a C++ kernel is     :func:`use_fast_pool`\\ ``(False)``
                               5-20x faster with identical numerics
fast convolution               MindSpore hands oneDNN plain NCHW tensors,    ``VISIONZOO_FAST_CONV=0`` or
(CPU target)                   so convolutions run as im2col + GEMM; a C++   :func:`use_fast_conv`\\ ``(False)``
                               kernel lets oneDNN pick blocked layouts and
                               its direct kernels (~1.6x on VGG's convs)
fused JPEG training images    MindSpore decodes without libjpeg-turbo's     ``VISIONZOO_FAST_DECODE=0`` or
(host CPU, every device)       SIMD and runs each augmentation as its own    :func:`use_fast_decode`\\ ``(False)``
                               op; one C++ call per batch (ops/images.py)
                               decodes only the crop with SIMD and augments
conv formulation tuning        each conv geometry and direction keeps the    ``VISIONZOO_CONV_TUNING=0``:
(fast convolution)             fastest of its formulations (ops/conv.py      always oneDNN's blocked one
                               lists them), timed in its first call; they    (one formulation per layer);
                               round differently in the last bits, and the   ``=fresh``: tune, but neither
                               choice depends on timings; it is saved per    read nor save choices;
                               (geometry, ISA, threads) and reused by        ``python -m visionzoo.ops clear``
                               later runs
=============================  ===========================================  ==============================
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import threading
from typing import AbstractSet, Iterator, Mapping, NamedTuple, Optional

from .constants import DEVICES
from .errors import DeviceError

_logger = logging.getLogger(__name__)

#: Environment defaults applied on import when the user has not set the variable.
#: ONEDNN_MAX_CPU_ISA=AVX2: with the oneDNN build inside MindSpore 2.10 the default ISA dispatch picks
#: a reference convolution that is 30-100x slower than its AVX2 kernels (a 3x3 conv on 2x64x224x224
#: takes 9 s instead of 0.08 s): for plain NCHW tensors at the AVX-512 level oneDNN's first choice is
#: ``jit_uni_ncsp:conv+ref:any``. Capping the ISA at AVX2 selects ``x64:gemm:jit``. The cap reaches only
#: MindSpore's own libdnnl instance, which serves every standard convolution (AMP, VISIONZOO_FAST_CONV=0,
#: exports, no compiler); the fast convolution loads a private instance with its own ISA (fast_isa()).
CPU_ENV_DEFAULTS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
#: The oneDNN variable both the cap above and a user's choice go through.
ISA_ENV = "ONEDNN_MAX_CPU_ISA"
#: ``VISIONZOO_FAST_OPS=require``: a fast layer whose kernels cannot be built or loaded raises
#: instead of falling back to the standard op with a warning.
FAST_OPS_ENV = "VISIONZOO_FAST_OPS"

# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA values) -> the CPU flags (as /proc/cpuinfo spells them) they need.
# fp32 convolutions gain nothing above AVX512_CORE: VNNI, BF16, FP16 and AMX instructions are for int8 /
# bf16 / fp16 data, so AVX512_CORE is the best fp32 level even on an AMX host.
_ISA_FLAGS = (
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})),
    ("AVX2", frozenset({"avx2", "fma"})),
    ("AVX", frozenset({"avx"})),
    ("SSE41", frozenset({"sse4_1"})),
)


class IsaChoice(NamedTuple):
    """The oneDNN ISA levels of one process: ``standard`` is the cap for MindSpore's own oneDNN (None:
    left to the environment), ``fast`` the level of the fast convolution's private oneDNN (None: oneDNN's
    own choice, which honours ``ONEDNN_MAX_CPU_ISA``), ``source`` where it came from ("user", "auto",
    "off": VISIONZOO_NO_CPU_DEFAULTS, "other-arch")."""

    standard: Optional[str]
    fast: Optional[str]
    source: str


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The CPU feature flags of this host (the first ``flags`` line of ``path``), empty if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def best_fp32_isa(flags: AbstractSet[str]) -> Optional[str]:
    """The highest oneDNN ISA level whose instructions ``flags`` all has, among those that matter to
    fp32 convolutions (AVX512_CORE, AVX2, AVX, SSE41); None if none does."""
    for name, needed in _ISA_FLAGS:
        if needed <= flags:
            return name
    return None


def choose_isa(flags: AbstractSet[str], environ: Mapping[str, str], machine: Optional[str] = None) -> IsaChoice:
    """Which oneDNN ISA each path gets on a host with CPU ``flags`` (pure; see :data:`CPU_ENV_DEFAULTS`).

    A user-set ``ONEDNN_MAX_CPU_ISA`` is respected by both paths. Otherwise, on x86-64, MindSpore's own
    oneDNN is capped at AVX2 (its standard convolution must never reach the reference kernel) and the fast
    convolution runs at :func:`best_fp32_isa`. ``VISIONZOO_NO_CPU_DEFAULTS=1`` leaves MindSpore's oneDNN
    alone but still picks the fast path's level.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return IsaChoice(None, None, "other-arch")
    if environ.get(ISA_ENV):
        return IsaChoice(None, None, "user")
    best = best_fp32_isa(flags)
    if environ.get(NO_DEFAULTS_ENV, "") not in ("", "0"):
        return IsaChoice(None, best, "off")
    return IsaChoice(CPU_ENV_DEFAULTS[ISA_ENV], best, "auto")


def fast_isa() -> Optional[str]:
    """The ISA level for the fast convolution's private oneDNN in this process (None: oneDNN decides,
    honouring a user-set ``ONEDNN_MAX_CPU_ISA``). Fixed on import, like the cap."""
    return _isa.fast


def fast_ops_required() -> bool:
    """``VISIONZOO_FAST_OPS=require``: a fast layer that cannot get its kernels raises instead of falling
    back (for benchmarks and CI, where a silent fallback would measure the wrong thing)."""
    return os.environ.get(FAST_OPS_ENV, "").strip().lower() == "require"


#: Environment switch for the fast CPU max pooling ("0" turns it off).
FAST_POOL_ENV = "VISIONZOO_FAST_POOL"
#: Environment switch for the fast CPU convolution ("0" turns it off).
FAST_CONV_ENV = "VISIONZOO_FAST_CONV"
#: Environment switch for the fused JPEG training images ("0" turns them off).
FAST_DECODE_ENV = "VISIONZOO_FAST_DECODE"
#: Environment switch for the fast convolution's tuning ("0": always oneDNN's blocked formulation).
CONV_TUNING_ENV = "VISIONZOO_CONV_TUNING"
#: Environment switch that leaves the process environment untouched on import.
NO_DEFAULTS_ENV = "VISIONZOO_NO_CPU_DEFAULTS"

_applied: dict = {}
_isa = IsaChoice(None, None, "other-arch")
_overrides: dict = {"pool": None, "conv": None, "decode": None}  # use_fast_pool / _conv / _decode


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


_build_device = threading.local()  # the device of the model being built now (building_for)


def check_device(device: str) -> str:
    """``device`` as MindSpore spells it (case-insensitive), or DeviceError naming the choices."""
    for name in DEVICES:
        if isinstance(device, str) and device.lower() == name.lower():
            return name
    raise DeviceError(
        f"device {device!r} is not one of {', '.join(DEVICES)}",
        hint="pass device='CPU', 'GPU' or 'Ascend' (or leave it unset for MindSpore's device_target)",
    )


@contextlib.contextmanager
def building_for(device: Optional[str]) -> Iterator[None]:
    """Build layers in this block for ``device`` (``None``: MindSpore's current ``device_target``): the
    fast CPU paths are taken exactly when it is ``"CPU"``, whatever the global context says (a model built
    for Ascend in a process whose context is still the default CPU keeps the standard ops)."""
    previous = getattr(_build_device, "value", None)
    _build_device.value = previous if device is None else check_device(device)
    try:
        yield
    finally:
        _build_device.value = previous


def build_device() -> str:
    """The device layers built now are for: the innermost :func:`building_for`, else MindSpore's
    ``device_target``."""
    device = getattr(_build_device, "value", None)
    if device is not None:
        return device
    import mindspore as ms  # deferred: importing visionzoo must not initialise MindSpore's context

    return ms.get_context("device_target")


def _fast_path_enabled(kind: str, env_var: str) -> bool:
    """The choice for one kind of fast CPU layer: the use_fast_* override, then ``env_var=0`` (off),
    then on exactly when the device the layer is built for (:func:`build_device`) is ``"CPU"`` (Ascend and
    GPU keep standard ops)."""
    if _overrides[kind] is not None:
        return _overrides[kind]
    if _is_off(os.environ.get(env_var)):
        return False
    return build_device() == "CPU"


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


def use_fast_decode(enabled: Optional[bool]) -> None:
    """Force the fused JPEG training images on (True) or off (False) for datasets built from now on;
    ``None`` restores the automatic choice (see :func:`fast_decode_enabled`)."""
    _overrides["decode"] = enabled


def fast_decode_enabled() -> bool:
    """Whether JPEG-folder training pipelines built now use the fused kernels of
    :mod:`visionzoo.ops.images`: the :func:`use_fast_decode` override, then ``VISIONZOO_FAST_DECODE=0``
    (off), then on for every device target (the input pipeline runs on the host CPU)."""
    if _overrides["decode"] is not None:
        return _overrides["decode"]
    return not _is_off(os.environ.get(FAST_DECODE_ENV))


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


def conv_tuning_persistent() -> bool:
    """Whether tuning choices are read from and saved to the cache directory (default), so that later
    runs on this host reuse them; ``VISIONZOO_CONV_TUNING=fresh`` tunes from scratch and saves nothing."""
    return conv_tuning_enabled() and os.environ.get(CONV_TUNING_ENV, "").strip().lower() != "fresh"


def isa_choice() -> IsaChoice:
    """This process's :class:`IsaChoice` (made on import from the CPU flags and the environment)."""
    return _isa


def conv_tuning_enabled() -> bool:
    """Whether the fast convolution times its formulations in each geometry's first call and keeps the
    fastest (default), or always runs oneDNN's blocked one (``VISIONZOO_CONV_TUNING=0``, read when the
    kernels are first loaded in a process). The formulations compute the same convolution with float32
    sums in different orders, and which one wins depends on timings; the choice is saved per host, so a
    later run starts with it and computes bit-identical results (the tuning call's result is already the
    kept formulation's). With tuning off, runs are bit-identical without a saved choice
    (benchmarks/repro_check.sh).
    """
    return not _is_off(os.environ.get(CONV_TUNING_ENV))


def cache_dir() -> str:
    """Directory for build artefacts (compiled CPU kernels): ``kernels/`` under the one visionzoo cache
    root, :func:`visionzoo.files.cache_root` (``$VISIONZOO_HOME``, else ``$XDG_CACHE_HOME/visionzoo``,
    else ``~/.cache/visionzoo``)."""
    from .files import cache_root

    return str(cache_root("kernels"))


_isa = choose_isa(cpu_flags(), os.environ)
_applied = apply_cpu_defaults()
