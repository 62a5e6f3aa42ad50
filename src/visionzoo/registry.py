"""Model registry: names -> builders, with one :class:`ModelSpec` of facts per model.

The registry imports no model. Built-in models register themselves when :mod:`visionzoo.models` is
imported (:mod:`visionzoo.factory` and :mod:`visionzoo.config` do that); third-party packages add
models through the ``visionzoo.models`` entry-point group::

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
import typing
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .constants import IMAGENET_MEAN, IMAGENET_STD
from .errors import CheckpointError, ModelError

__all__ = [
    "WeightSpec",
    "ModelSpec",
    "ModelInfo",
    "register_model",
    "registered_models",
    "is_model",
    "get_model_spec",
    "get_builder",
    "check_model_options",
    "builder_takes_pretrained",
    "suggest",
    "build_model",
    "split_name",
    "get_weight_spec",
    "load_plugins",
    "ENTRY_POINT_GROUP",
]

_logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "visionzoo.models"


@dataclass(frozen=True)
class WeightSpec:
    """One set of published weights (a timm-style tag): where to get it, how to check it, which
    architecture options it needs, how it was scored and how its inputs must be preprocessed."""

    tag: str
    url: str
    sha256: str  # full hex digest, or the published prefix (at least 8 hex digits)
    filename: str = ""  # name in the cache folder; default: the URL's last part
    num_classes: int = 1000
    source: str = ""  # who published it: "MindCV", "torchvision", ...
    license: str = ""
    top1: Optional[float] = None  # published ImageNet-1k top-1 / top-5 (%), None: not published
    top5: Optional[float] = None
    num_params: int = 0  # parameters of the model these weights fill (0: not given)
    # builder options the weights need, e.g. (("has_bias", True),); create_model applies them
    options: Tuple[Tuple[str, Any], ...] = ()
    # eval preprocessing: resize the shorter side to input_size / crop_pct, centre crop, normalise
    input_size: Tuple[int, int, int] = (3, 224, 224)
    mean: Tuple[float, float, float] = IMAGENET_MEAN  # 0-255 units
    std: Tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    recipe: str = ""  # where the training recipe is published
    notes: str = ""

    @property
    def file_name(self) -> str:
        return self.filename or self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def model_options(self) -> Dict[str, Any]:
        """The builder options these weights need, as a dict."""
        return dict(self.options)

    @property
    def preprocessing(self) -> Dict[str, Any]:
        """Eval preprocessing as recipe keys (``image_resize``, ``crop_pct``, ``interpolation``, ``mean``, ``std``)."""
        return {
            "image_resize": int(self.input_size[-1]),
            "crop_pct": float(self.crop_pct),
            "interpolation": self.interpolation,
            "mean": tuple(float(v) for v in self.mean),
            "std": tuple(float(v) for v in self.std),
        }


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of one registered model (kept next to the model, in its ``model_specs``)."""

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
    # (regex, replacement) pairs mapping torch state-dict names to this model's (after BatchNorm renames)
    torch_renames: Tuple[Tuple[str, str], ...] = ()
    name: str = ""  # filled in by register_model
    module: str = ""  # filled in by register_model

    def get_weight(self, tag: Union[bool, str] = True) -> WeightSpec:
        """The weights named ``tag`` (``True``: the first listed, the model's default tag). Raises
        CheckpointError if none."""
        if not self.weights:
            hint = "train it (train.py) or pass checkpoint_path=... to create_model"
            if "MindCV" in self.source:
                hint += " (MindCV's released checkpoints for this model load unchanged)"
            raise CheckpointError(f"no pretrained weights are published for model '{self.name}' yet", hint=hint)
        if tag is True:
            return self.weights[0]
        for w in self.weights:
            if w.tag == tag:
                return w
        tags = ", ".join(w.tag for w in self.weights)
        raise CheckpointError(f"model '{self.name}' has no weights tagged {tag!r}", hint=f"available: {tags}")


@dataclass(frozen=True)
class ModelInfo:
    """Public description of a registered model (see :func:`visionzoo.get_model_info`)."""

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
    # set when the name carries a tag ("vgg16.mindcv_in1k"): that tag's facts
    tag: str = ""
    weight: Optional[WeightSpec] = None

    @property
    def url(self) -> str:
        return self.weight.url if self.weight else ""

    @property
    def sha256(self) -> str:
        return self.weight.sha256 if self.weight else ""

    @property
    def license(self) -> str:
        return self.weight.license if self.weight else ""

    @property
    def top1(self) -> Optional[float]:
        return self.weight.top1 if self.weight else None

    @property
    def top5(self) -> Optional[float]:
        return self.weight.top5 if self.weight else None

    @property
    def preprocessing(self) -> Dict[str, Any]:
        """Eval preprocessing (recipe keys): the tag's, else the model's input size and mean/std."""
        if self.weight:
            return self.weight.preprocessing
        return {
            "image_resize": int(self.input_size[-1]),
            "crop_pct": 0.875,
            "interpolation": "bilinear",
            "mean": tuple(self.mean),
            "std": tuple(self.std),
        }

    def num_params_at(self, num_classes: int) -> int:
        """Trainable parameters with a ``num_classes`` head (the head is ``num_features -> classes``)."""
        return self.num_params + (num_classes - 1000) * (self.num_features + 1)


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., Any]
    spec: ModelSpec
    options: Optional[Tuple[str, ...]]  # option names the builder accepts; None: not known


# name -> entry
_MODELS: Dict[str, _Entry] = {}
# entry points already tried: (distribution, name, value)
_PLUGINS_TRIED: Set[Tuple[str, str, str]] = set()
# builder arguments every builder receives from the factory
_FACTORY_ARGS = ("pretrained", "num_classes", "in_channels")


def _signature_names(fn: Callable[..., Any]) -> Tuple[Optional[Set[str]], bool]:
    """(named parameters, takes ``**kwargs``) of ``fn``; (None, True) when it cannot be inspected."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None, True
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _model_class(fn: Callable[..., Any], model_cls: Optional[type]) -> Optional[type]:
    """The class a builder returns: ``model_cls``, else its return annotation when that is a class."""
    if model_cls is not None:
        return model_cls
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001  an unresolvable annotation only means "not known"
        return None
    return hint if isinstance(hint, type) else None


def _accepted_options(fn: Callable[..., Any], model_cls: Optional[type]) -> Optional[Tuple[str, ...]]:
    """Options a builder accepts: its own named parameters, plus the model class's constructor
    parameters when it forwards ``**kwargs`` to that class; None when neither can be known."""
    named, var_kw = _signature_names(fn)
    if named is None:
        return None
    if not var_kw:
        return tuple(sorted(named))
    cls = _model_class(fn, model_cls)
    if cls is None:
        return None
    cls_named, cls_var_kw = _signature_names(cls.__init__)
    if cls_named is None or cls_var_kw:
        return None
    return tuple(sorted((named | cls_named) - {"self"}))


def register_model(
    fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    spec: Optional[ModelSpec] = None,
    model_cls: Optional[type] = None,
) -> Any:
    """Register a model builder; use as ``@register_model`` or ``@register_model(name=..., spec=...)``.

    The builder is called as ``fn(num_classes=..., in_channels=..., **options)`` (plus
    ``pretrained=`` when it declares that parameter: it then loads weights itself). Its spec is
    ``spec``, else ``model_specs[name]`` of the builder's module, else a minimal spec. The options
    it accepts are read from its signature and, when it forwards ``**kwargs``, from the signature of
    ``model_cls`` (default: the builder's return annotation). Registering a name twice raises
    :class:`ModelError`.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        model_name = name or f.__name__
        if model_name in _MODELS:
            other = _MODELS[model_name].spec.module or "?"
            raise ModelError(
                f"model '{model_name}' is already registered (by {other})",
                hint="pick another name (registering a name twice is refused so one model "
                "cannot silently replace another)",
            )
        s = spec
        if s is None:
            table = getattr(sys.modules.get(f.__module__), "model_specs", {}) or {}
            s = table.get(model_name) if isinstance(table, dict) else None
        if s is None:
            s = ModelSpec(num_params=0, num_features=0)
        if not isinstance(s, ModelSpec):
            raise ModelError(
                f"spec of model '{model_name}' must be a visionzoo.registry.ModelSpec, got {type(s).__name__}"
            )
        _MODELS[model_name] = _Entry(
            f, replace(s, name=model_name, module=f.__module__), _accepted_options(f, model_cls)
        )
        mod = sys.modules.get(f.__module__)
        if mod is not None and isinstance(getattr(mod, "__all__", None), list) and model_name not in mod.__all__:
            mod.__all__.append(model_name)
        return f

    return decorate(fn) if fn is not None else decorate


def _entry_points() -> List[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))  # Python 3.9: a dict of groups


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


def suggest(name: str, names: Sequence[str], n: int = 3) -> List[str]:
    """Closest names by difflib's ratio; a swap of characters (vgg61 -> vgg16) ranks first."""
    scored = []
    for candidate in names:
        ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
        if ratio >= 0.6:
            scored.append((-(ratio + (0.1 if sorted(candidate) == sorted(name) else 0.0)), candidate))
    return [c for _, c in sorted(scored)[:n]]


def split_name(name: str) -> Tuple[str, str]:
    """``"vgg16_bn.tv_in1k"`` -> ``("vgg16_bn", "tv_in1k")``; a name without a tag -> ``(name, "")``."""
    base, _, tag = str(name).partition(".")
    return base, tag


def get_weight_spec(name: str, tag: Union[bool, str] = True) -> WeightSpec:
    """The :class:`WeightSpec` of ``"model.tag"`` (or of ``name`` with ``tag``; True: the default tag)."""
    base, own = split_name(name)
    return get_model_spec(base).get_weight(own or tag)


def _lookup(name: str) -> _Entry:
    if name not in _MODELS:
        load_plugins()
    if name not in _MODELS:
        close = suggest(str(name), list(_MODELS))
        hint = f" Did you mean: {', '.join(close)}?" if close else " See visionzoo.list_models()."
        raise ModelError(f"Unknown model '{name}'.{hint}")
    return _MODELS[name]


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model (built-in or from a plugin), or ``model.tag`` with a
    registered tag."""
    base, tag = split_name(name)
    try:
        entry = _lookup(base)
    except ModelError:
        return False
    return not tag or any(w.tag == tag for w in entry.spec.weights)


def registered_models(
    filter: Union[str, Sequence[str]] = "", exclude_filters: Union[str, Sequence[str]] = "", pretrained: bool = False
) -> List[str]:
    """Sorted names of the models registered so far (plugins loaded first); see
    :func:`visionzoo.list_models`, which registers the built-in models before listing."""
    load_plugins()
    names: Iterable[str] = _MODELS.keys()
    include = [filter] if isinstance(filter, str) else list(filter)
    include = [f for f in include if f]
    if include:
        names = {n for n in names if any(fnmatch.fnmatchcase(n, f) for f in include)}
    exclude = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    exclude = [f for f in exclude if f]
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, f) for f in exclude)]
    if pretrained:  # name.tag pairs; a filter may match the model name or the pair
        pairs = [f"{n}.{w.tag}" for n in _MODELS for w in _MODELS[n].spec.weights]
        keep = set(names)
        names = [
            p
            for p in pairs
            if split_name(p)[0] in keep
            or (
                include
                and any(fnmatch.fnmatchcase(p, f) for f in include)
                and not any(fnmatch.fnmatchcase(p, f) for f in exclude)
            )
        ]
    return sorted(names)


def get_model_spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` of ``name`` (a ``.tag`` suffix is ignored; raises ModelError
    with suggestions if unknown)."""
    return _lookup(split_name(name)[0]).spec


def get_builder(name: str) -> Callable[..., Any]:
    """The builder registered as ``name`` (a ``.tag`` suffix is ignored)."""
    return _lookup(split_name(name)[0]).builder


def check_model_options(name: str, options: Iterable[str]) -> None:
    """Raise :class:`ModelError` naming the options model ``name`` does not take (checked against
    the builder's and the model class's signatures; nothing is checked when they take ``**kwargs``)."""
    accepted = _lookup(split_name(name)[0]).options
    if accepted is None:
        return
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(o for o in accepted if o not in _FACTORY_ARGS)
        raise ModelError(f"model '{name}' does not take option(s) {', '.join(unknown)}", hint=f"it takes: {allowed}")


def builder_takes_pretrained(name: str) -> bool:
    """Whether the builder of ``name`` loads pretrained weights itself (declares ``pretrained``)."""
    named, _ = _signature_names(_lookup(split_name(name)[0]).builder)
    return bool(named) and "pretrained" in named


def build_model(model_cls: Callable[..., Any], variant: str, **kwargs: Any) -> Any:
    """Build ``model_cls(**kwargs)`` and attach the spec of ``variant`` as ``model.spec``.

    The one place where a model file's ``_create_*`` builds; loading weights is the factory's job
    (:func:`visionzoo.create_model`).
    """
    model = model_cls(**kwargs)
    model.spec = get_model_spec(variant)
    return model
