"""Model registry: names -> builders, with one spec of facts per model.

Built-in models register themselves when :mod:`visionzoo.models` is imported (done lazily on the
first lookup). Third-party packages add models through the ``visionzoo.models`` entry-point group::

    # pyproject.toml of the plugin
    [project.entry-points."visionzoo.models"]
    mynet = "mypkg.models"          # a module whose import registers models, or
    mynet2 = "mypkg.models:mynet2"  # a builder, registered under the entry point's name

Entry points are loaded on the first unknown name and on every listing (each one once). A plugin
that fails to import is skipped with a warning naming it.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import inspect
import logging
import sys
import types
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .errors import ConfigError, ModelError

__all__ = [
    "WeightSpec",
    "ModelSpec",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "is_model",
    "get_model_info",
    "get_model_spec",
    "build_model_with_cfg",
    "ENTRY_POINT_GROUP",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CIFAR_MEAN",
    "CIFAR_STD",
]

_logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "visionzoo.models"

# Normalisation constants in 0-255 units (the data pipeline's convention).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
CIFAR_MEAN = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
CIFAR_STD = (0.2023 * 255, 0.1994 * 255, 0.2010 * 255)


@dataclass(frozen=True)
class WeightSpec:
    """One set of published weights: where to get it and how to check it."""

    tag: str
    url: str
    sha256: str  # full hex digest (a prefix of at least 8 characters is accepted)
    filename: str = ""  # name in the cache folder; default: the URL's last part
    num_classes: int = 1000

    @property
    def file_name(self) -> str:
        return self.filename or self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of one registered model (kept next to the model, in ``default_cfgs``)."""

    num_params: int  # trainable parameters at 1000 classes, default options
    num_features: int  # width of the classifier's input
    input_size: Tuple[int, int, int] = (3, 224, 224)
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    classifier: str = "classifier"  # parameter-name prefix of the classification head
    first_conv: str = "conv1.conv"  # parameter-name prefix of the first convolution
    flavour: str = ""
    source: str = ""
    weights: Tuple[WeightSpec, ...] = ()
    name: str = ""  # filled in by register_model
    module: str = ""  # filled in by register_model

    def get_weight(self, tag: Union[bool, str] = True) -> WeightSpec:
        """The weights named ``tag`` (``True``: the first listed). Raises CheckpointError if none."""
        from .errors import CheckpointError

        if not self.weights:
            raise CheckpointError(
                f"no pretrained weights are published for model '{self.name}' yet; "
                "train it (train.py) or pass checkpoint_path=... to create_model"
                + (" (MindCV's released checkpoints for this model load unchanged)" if "MindCV" in self.source else ""))
        if tag is True:
            return self.weights[0]
        for w in self.weights:
            if w.tag == tag:
                return w
        tags = ", ".join(w.tag for w in self.weights)
        raise CheckpointError(f"model '{self.name}' has no weights tagged {tag!r}; available: {tags}")


@dataclass(frozen=True)
class ModelInfo:
    """Public description of a registered model (see :func:`get_model_info`)."""

    name: str
    num_params: int
    input_size: Tuple[int, int, int]
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    classifier: str
    first_conv: str
    flavour: str
    source: str
    recipes: Tuple[str, ...]
    pretrained: Tuple[str, ...]
    num_features: int = 0

    def num_params_at(self, num_classes: int) -> int:
        """Trainable parameters with a ``num_classes`` head (the head is ``num_features -> classes``)."""
        return self.num_params + (num_classes - 1000) * (self.num_features + 1)


# name -> (builder, spec)
_MODELS: Dict[str, Tuple[Callable[..., Any], ModelSpec]] = {}
# entry points already tried: (distribution, name, value)
_PLUGINS_TRIED: Set[Tuple[str, str, str]] = set()
_BUILTINS_LOADED = False


def register_model(fn: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None,
                   spec: Optional[ModelSpec] = None) -> Any:
    """Register a model builder; use as ``@register_model`` or ``@register_model(name=..., spec=...)``.

    The builder is called as ``fn(pretrained=..., num_classes=..., in_channels=..., **kwargs)``. Its
    spec is ``spec``, else ``default_cfgs[name]`` of the builder's module, else a minimal spec.
    Registering a name twice raises :class:`ModelError`.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        model_name = name or f.__name__
        if model_name in _MODELS:
            other = _MODELS[model_name][1].module or "?"
            raise ModelError(
                f"model '{model_name}' is already registered (by {other}); pick another name "
                "(registering a name twice is refused so one model cannot silently replace another)")
        s = spec
        if s is None:
            cfgs = getattr(sys.modules.get(f.__module__), "default_cfgs", {}) or {}
            s = cfgs.get(model_name) if isinstance(cfgs, dict) else None
        if s is None:
            s = ModelSpec(num_params=0, num_features=0)
        if not isinstance(s, ModelSpec):
            raise ModelError(f"spec of model '{model_name}' must be a visionzoo.registry.ModelSpec, got {type(s).__name__}")
        _MODELS[model_name] = (f, replace(s, name=model_name, module=f.__module__))
        mod = sys.modules.get(f.__module__)
        if mod is not None and isinstance(getattr(mod, "__all__", None), list) and model_name not in mod.__all__:
            mod.__all__.append(model_name)
        return f

    return decorate(fn) if fn is not None else decorate


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from . import models  # noqa: F401  (registers the built-in models)


def _entry_points() -> List[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> List[str]:
    """Load entry points of the ``visionzoo.models`` group not tried yet; returns their names."""
    loaded = []
    for ep in _entry_points():
        dist = getattr(getattr(ep, "dist", None), "name", "") or ""
        key = (dist, ep.name, ep.value)
        if key in _PLUGINS_TRIED:
            continue
        _PLUGINS_TRIED.add(key)
        where = f"entry point '{ep.name} = {ep.value}'" + (f" of distribution '{dist}'" if dist else "")
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, types.ModuleType) and ep.name not in _MODELS:
                register_model(obj, name=ep.name)
        except Exception as e:  # a broken plugin must not break the zoo
            msg = f"visionzoo: skipped model plugin {where}: {type(e).__name__}: {e}"
            _logger.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded


def _suggest(name: str, names: Sequence[str], n: int = 3) -> List[str]:
    """Closest names by difflib's ratio; a swap of characters (vgg61 -> vgg16) ranks first."""
    scored = []
    for candidate in names:
        ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
        if ratio >= 0.6:
            scored.append((-(ratio + (0.1 if sorted(candidate) == sorted(name) else 0.0)), candidate))
    return [c for _, c in sorted(scored)[:n]]


def _lookup(name: str) -> Tuple[Callable[..., Any], ModelSpec]:
    _load_builtins()
    if name not in _MODELS:
        load_plugins()
    if name not in _MODELS:
        close = _suggest(str(name), list(_MODELS))
        hint = f" Did you mean: {', '.join(close)}?" if close else " See visionzoo.list_models()."
        raise ModelError(f"Unknown model '{name}'.{hint}")
    return _MODELS[name]


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model (built-in or from a plugin)."""
    try:
        _lookup(name)
    except ModelError:
        return False
    return True


def list_models(filter: Union[str, Sequence[str]] = "", exclude_filters: Union[str, Sequence[str]] = "",
                pretrained: bool = False) -> List[str]:
    """Sorted names of registered models.

    ``filter`` / ``exclude_filters``: shell-style wildcards (a string or a list), e.g. ``"vgg*_bn"``.
    ``pretrained=True`` keeps only models with published weights.
    """
    _load_builtins()
    load_plugins()
    names: Iterable[str] = _MODELS.keys()
    include = [filter] if isinstance(filter, str) else list(filter)
    include = [f for f in include if f]
    if include:
        names = {n for n in names if any(fnmatch.fnmatchcase(n, f) for f in include)}
    exclude = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    exclude = [f for f in exclude if f]
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, f) for f in exclude)]
    if pretrained:
        names = [n for n in names if _MODELS[n][1].weights]
    return sorted(names)


def get_model_spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` of ``name`` (raises ModelError with suggestions if unknown)."""
    return _lookup(name)[1]


def _configs_root() -> Optional[Path]:
    """``configs/`` under the current directory, else next to the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "configs").is_dir():
            return base
    return None


def find_recipes(name: str, root: Optional[Union[str, Path]] = None) -> Tuple[str, ...]:
    """Paths (``configs/...yaml``, sorted) of recipes whose ``model:`` key is ``name``."""
    from .config import load_yaml

    base = Path(root) if root is not None else _configs_root()
    if base is None or not (base / "configs").is_dir():
        return ()
    found = []
    for path in sorted((base / "configs").rglob("*.yaml")):
        try:
            model = load_yaml(str(path)).get("model")
            if isinstance(model, dict):  # grouped layout: ``model: {model: name, ...}``
                model = model.get("model")
        except ConfigError as e:  # a broken recipe is reported by the recipe tests, not here
            _logger.debug("skipping %s: %s", path, e)
            continue
        if model == name:
            found.append(path.relative_to(base).as_posix())
    return tuple(found)


def get_model_info(name: str) -> ModelInfo:
    """Facts about model ``name``: parameter count, input size, normalisation, head and first-conv
    names, flavour, source, the recipes under ``configs/`` that train it, and pretrained tags."""
    spec = get_model_spec(name)
    return ModelInfo(
        name=name,
        num_params=spec.num_params,
        input_size=tuple(spec.input_size),
        mean=tuple(float(v) for v in spec.mean),
        std=tuple(float(v) for v in spec.std),
        classifier=spec.classifier,
        first_conv=spec.first_conv,
        flavour=spec.flavour,
        source=spec.source,
        recipes=find_recipes(name),
        pretrained=tuple(w.tag for w in spec.weights),
        num_features=spec.num_features,
    )


def build_model_with_cfg(model_cls: Callable[..., Any], variant: str, pretrained: Union[bool, str] = False,
                         **kwargs: Any) -> Any:
    """Build ``model_cls(**kwargs)``, attach the spec of ``variant`` and load pretrained weights.

    The one place where models are built and loaded; every model file's ``_create_*`` calls it.
    ``pretrained``: False, True (the first published weights) or a weight tag.
    """
    spec = get_model_spec(variant)
    model = model_cls(**kwargs)
    model.default_cfg = spec
    if pretrained:
        from .checkpoint import load_checkpoint, resolve_pretrained

        path = resolve_pretrained(spec.get_weight(pretrained))
        load_checkpoint(model, path, strict=True)
    return model


def _accepted_kwargs(fn: Callable[..., Any]) -> Optional[Set[str]]:
    """Names ``fn`` accepts, or None when it takes ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def create_model(name: str, pretrained: Union[bool, str] = False, num_classes: int = 1000, in_channels: int = 3,
                 checkpoint_path: Optional[str] = None, **kwargs: Any) -> Any:
    """Build registered model ``name``.

    Args:
        name: a name from :func:`list_models`.
        pretrained: load published weights (True: the default tag; or a tag string).
        num_classes: classifier size. With weights for another size, the head is left fresh.
        in_channels: input channels.
        checkpoint_path: a ``.ckpt`` to load after building (a training checkpoint works too: optimizer
            state and counters are ignored; a head of another size is re-initialised with a warning).
        **kwargs: builder options, e.g. ``drop_rate``, ``aux_logits`` (googlenet), ``pad_mode``,
            ``has_bias``, ``batch_norm``, ``has_dropout``, ``initialize_mode`` (vgg). ``None`` values
            mean "the model's default".
    """
    fn, _ = _lookup(name)
    if pretrained and checkpoint_path:
        from .errors import CheckpointError

        raise CheckpointError("pass either pretrained=True or checkpoint_path, not both "
                              "(the checkpoint would overwrite the pretrained weights)")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = _accepted_kwargs(fn)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ModelError(f"model '{name}' does not take option(s) {', '.join(unknown)}; "
                             f"it takes: {', '.join(sorted(accepted))}")
    try:
        model = fn(pretrained=pretrained, num_classes=num_classes, in_channels=in_channels, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise ModelError(f"model '{name}': {e}") from None
        raise
    if checkpoint_path:
        from .checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint_path, strict=True)
    return model
