"""Loading weights into a model, with a report of what fitted.

:func:`load_checkpoint` is used by :func:`visionzoo.create_model`, the trainer (fine-tuning from
``ckpt_path``) and validation. It reads a MindSpore ``.ckpt`` (a MindCV checkpoint, a visionzoo
training checkpoint or a bare ``save_checkpoint(model, ...)``), ignores training state, matches the
rest against the model by name and shape and says exactly what did not fit. A torch ``.pth``/``.pt``
state dict (torchvision's published weights, or ``torch.save(model.state_dict())``) is read by the
restricted reader of :mod:`.torch_pth` and converted to the model's names first, then loaded the same way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import CheckpointError
from .io import read_checkpoint
from .records import ema_entries, is_training_state
from .torch_pth import convert_state_dict, is_torch_file, read_torch_state_dict

__all__ = ["LoadReport", "load_checkpoint", "read_weights", "MISFIT_HINT"]

_logger = logging.getLogger(__name__)

#: The fix suggested when a checkpoint does not fit; callers with more context replace it (``with_hint``).
MISFIT_HINT = (
    "the checkpoint was probably saved from another model or model options (check the model name, "
    "batch_norm/has_bias/aux_logits); pass strict=False to load only the parameters that fit"
)


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_checkpoint` did. Names are parameter names of the model / checkpoint."""

    path: str
    loaded: Tuple[str, ...]  # model parameters set from the checkpoint
    missing: Tuple[str, ...]  # model parameters the checkpoint lacks (left as they were)
    unexpected: Tuple[str, ...]  # checkpoint entries the model lacks (training state excluded)
    mismatched: Tuple[Tuple[str, Tuple[int, ...], Tuple[int, ...]], ...]  # (name, model shape, ckpt shape)
    dropped_classifier: Tuple[str, ...]  # head parameters of another class count, left fresh
    stripped: Tuple[str, ...]  # ignored: training state (optimizer, EMA, counters), heads the model omits

    @property
    def ok(self) -> bool:
        """True when every model parameter was loaded or deliberately re-initialised."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} loaded"]
        for label, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.mismatched),
            ("classifier re-initialised", self.dropped_classifier),
            ("training-state entries ignored", self.stripped),
        ):
            if items:
                parts.append(f"{len(items)} {label}")
        return ", ".join(parts)


def _brief(names: Sequence[Any], n: int = 5) -> str:
    shown = []
    for item in list(names)[:n]:
        if isinstance(item, tuple):
            shown.append(f"{item[0]} (model {list(item[1])}, checkpoint {list(item[2])})")
        else:
            shown.append(str(item))
    more = f", ... ({len(names) - n} more)" if len(names) > n else ""
    return ", ".join(shown) + more


def _classifier_prefixes(model: Any, classifier: Union[None, str, Sequence[str]]) -> Tuple[str, ...]:
    if classifier is None:
        classifier = getattr(model, "classifier_names", None)
    if classifier is None:
        spec = getattr(model, "spec", None)
        classifier = getattr(spec, "classifier", None) or (spec.get("classifier") if isinstance(spec, dict) else None)
    if not classifier:
        return ()
    return (classifier,) if isinstance(classifier, str) else tuple(classifier)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def read_weights(model: Any, path: Union[str, os.PathLike]) -> Tuple[dict, Tuple[str, ...]]:
    """Entries of checkpoint ``path`` under ``model``'s names: a MindSpore ``.ckpt`` as stored, a torch
    state dict converted (:func:`.torch_pth.convert_state_dict` with the renames of ``model.spec``).
    Returns ``(entries, torch entries dropped by the conversion)``."""
    if not is_torch_file(path):
        return read_checkpoint(path), ()
    state = read_torch_state_dict(path)
    renames = tuple(getattr(getattr(model, "spec", None), "torch_renames", ()) or ())
    return convert_state_dict(state, (p.name for p in model.get_parameters()), renames)


def load_checkpoint(
    model: Any,
    path: Union[str, os.PathLike, Mapping[str, Any]],
    strict: bool = True,
    num_classes: Optional[int] = None,
    classifier: Union[None, str, Sequence[str]] = None,
    ema: bool = False,
    misfit_hint: str = MISFIT_HINT,
) -> LoadReport:
    """Load weights from ``path`` (a ``.ckpt``, a torch ``.pth``/``.pt`` state dict, or a
    ``{name: Parameter}`` dict) into ``model``.

    Training state (:func:`is_training_state`) is ignored. Classifier parameters (``classifier``:
    name prefixes; default: the model's ``classifier_names`` or spec) whose shape differs, i.e. a
    checkpoint trained for another number of classes, are skipped and left freshly initialised,
    with a warning. Anything else that does not fit is reported and, with ``strict=True``, raises
    :class:`CheckpointError` before any weight is changed.

    Args:
        num_classes: the model's class count, for the messages (default: read from the head).
        ema: load the checkpoint's ``ema.*`` copies instead of the raw weights.
        misfit_hint: the fix a misfit error suggests (callers that know the recipe name a better one).
    """
    converted_away: Tuple[str, ...] = ()
    if isinstance(path, Mapping):
        where, params = "<dict>", dict(path)
    else:
        where = os.fspath(path)
        params, converted_away = read_weights(model, path)
    if ema:
        params = ema_entries(params)
        if not params:
            raise CheckpointError(
                "ema True, but the checkpoint holds no EMA weights (ema.<name>)",
                path=where,
                hint="load it with ema False, or pick a checkpoint trained with ema True",
            )

    model_params = {p.name: p for p in model.get_parameters()}
    heads = _classifier_prefixes(model, classifier)
    # heads the model chose not to build (GoogLeNet without aux_logits) are ignored, not "unexpected"
    optional = tuple(getattr(model, "optional_checkpoint_prefixes", ()))
    stripped = tuple(
        sorted(k for k in params if k not in model_params and (is_training_state(k) or _under(k, optional)))
    )
    loaded, mismatched, dropped = [], [], []
    to_load = {}
    for name, param in model_params.items():
        if name not in params:
            continue
        value = params[name]
        ckpt_shape = tuple(value.shape)
        if ckpt_shape != tuple(param.shape):
            if _under(name, heads):
                dropped.append(name)
            else:
                mismatched.append((name, tuple(param.shape), ckpt_shape))
            continue
        if isinstance(value, np.ndarray):  # a converted torch entry: as a Parameter of the model's dtype
            import mindspore as ms

            np_dtype = {ms.float32: np.float32, ms.float16: np.float16, ms.float64: np.float64}.get(param.dtype)
            value = ms.Parameter(
                ms.Tensor(value if np_dtype is None else value.astype(np_dtype, copy=False)), name=name
            )
        to_load[name] = value
        loaded.append(name)
    missing = tuple(n for n in model_params if n not in params)
    unexpected = tuple(sorted(k for k in params if k not in model_params and k not in stripped))
    report = LoadReport(
        path=where,
        loaded=tuple(loaded),
        missing=missing,
        unexpected=unexpected,
        mismatched=tuple(mismatched),
        dropped_classifier=tuple(dropped),
        stripped=stripped + converted_away,
    )

    if not report.ok:
        problems = []
        if report.missing:
            problems.append(f"{len(report.missing)} missing in checkpoint: {_brief(report.missing)}")
        if report.unexpected:
            problems.append(f"{len(report.unexpected)} unexpected: {_brief(report.unexpected)}")
        if report.mismatched:
            problems.append(f"{len(report.mismatched)} of another shape: {_brief(report.mismatched)}")
        error = CheckpointError(
            f"checkpoint does not fit {type(model).__name__} (" + "; ".join(problems) + ")",
            path=where,
            hint=misfit_hint,
        )
        if strict:
            raise error
        _logger.warning("%s", error)
    if dropped:
        classes = num_classes if num_classes is not None else _head_size(model_params, dropped)
        _logger.warning(
            "checkpoint %s: classifier %s has another number of classes; it is left freshly "
            "initialised%s (fine-tuning)",
            where,
            ", ".join(dropped),
            f" for {classes} classes" if classes else "",
        )
    if to_load:
        import mindspore as ms

        not_loaded = ms.load_param_into_net(model, to_load, strict_load=False)
        # load_param_into_net returns (params not loaded, ckpt entries not used) in MindSpore 2.x
        left = not_loaded[0] if isinstance(not_loaded, tuple) else not_loaded
        left = [n for n in (left or []) if n in to_load]
        if left:
            raise CheckpointError(f"MindSpore refused to load {_brief(left)}", path=where)
    _logger.info("loaded checkpoint %s: %s", where, report.summary())
    return report


def _head_size(model_params: Mapping[str, Any], names: Sequence[str]) -> Optional[int]:
    for n in names:
        if n.endswith(".weight") or n.endswith(".bias"):
            return int(model_params[n].shape[0])
    return None
