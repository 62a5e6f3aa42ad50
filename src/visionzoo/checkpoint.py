"""Checkpoint loading with a report, and pretrained-weight resolution.

:func:`load_checkpoint` is used by :func:`visionzoo.create_model`, the trainer (fine-tuning from
``ckpt_path``) and validate. It reads a MindSpore ``.ckpt`` (a MindCV checkpoint, a visionzoo
training checkpoint or a bare ``save_checkpoint(model, ...)``), ignores training state, matches the
rest against the model by name and shape and says exactly what did not fit.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from .errors import CheckpointError

__all__ = [
    "LoadReport",
    "CheckpointNotFoundError",
    "load_checkpoint",
    "read_checkpoint",
    "is_training_state",
    "TRAINING_STATE_PREFIXES",
    "TRAINING_STATE_NAMES",
    "cache_dir",
    "resolve_pretrained",
    "file_sha256",
]

_logger = logging.getLogger(__name__)

# Training-checkpoint extras that are not model weights. The one list of them: the trainer saves
# its own state under ``_vz_*`` names, MindSpore optimizers under the rest.
TRAINING_STATE_PREFIXES: Tuple[str, ...] = (
    "moments.",  # Momentum
    "accum.",  # Adagrad / accumulation
    "adam_m.", "adam_v.",  # Adam, AdamWeightDecay
    "moment1.", "moment2.", "vhat.",  # AdamWeightDecay variants, AMSGrad
    "ema.",  # EMA copies of the weights (loaded instead with ema=True)
    "accumulated_grads.", "grad_accum.",  # gradient accumulation buffers
    "_vz_",  # visionzoo trainer state
)
TRAINING_STATE_NAMES = frozenset({
    "learning_rate", "global_step", "momentum", "beta1_power", "beta2_power", "weight_decay",
    "epoch_num", "step_num", "scale_sense", "loss_scale", "current_iterator_step",
    "last_overflow_iterator_step",
})


def is_training_state(name: str) -> bool:
    """True for optimizer state, EMA copies and counters that a training checkpoint stores."""
    return name in TRAINING_STATE_NAMES or name.startswith(TRAINING_STATE_PREFIXES)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (catchable as FileNotFoundError or CheckpointError)."""


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_checkpoint` did. Names are parameter names of the model / checkpoint."""

    path: str
    loaded: Tuple[str, ...]  # model parameters set from the checkpoint
    missing: Tuple[str, ...]  # model parameters the checkpoint lacks (left as they were)
    unexpected: Tuple[str, ...]  # checkpoint entries the model lacks (training state excluded)
    mismatched: Tuple[Tuple[str, Tuple[int, ...], Tuple[int, ...]], ...]  # (name, model shape, ckpt shape)
    dropped_classifier: Tuple[str, ...]  # head parameters of another class count, left fresh
    stripped: Tuple[str, ...]  # training state ignored (optimizer, EMA, counters)

    @property
    def ok(self) -> bool:
        """True when every model parameter was loaded or deliberately re-initialised."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} loaded"]
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("mis-shaped", self.mismatched), ("classifier re-initialised", self.dropped_classifier),
                             ("training-state entries ignored", self.stripped)):
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


def read_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a ``.ckpt`` into ``{name: Parameter}``; missing or unreadable files raise CheckpointError."""
    import mindspore as ms

    path = os.fspath(path)
    if not os.path.isfile(path):
        hint = " (it is a folder; pass the .ckpt file inside it)" if os.path.isdir(path) else ""
        raise CheckpointNotFoundError(f"checkpoint file not found: {path!r}{hint}")
    try:
        params = ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError/TypeError for damaged files
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: not a MindSpore .ckpt or the file is damaged "
            f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}); "
            "re-download or re-save it") from None
    if not params:
        raise CheckpointError(f"checkpoint {path!r} holds no parameters")
    return dict(params)


def _classifier_prefixes(model: Any, classifier: Union[None, str, Sequence[str]]) -> Tuple[str, ...]:
    if classifier is None:
        classifier = getattr(model, "classifier_names", None)
    if classifier is None:
        spec = getattr(model, "default_cfg", None)
        classifier = getattr(spec, "classifier", None) or (spec.get("classifier") if isinstance(spec, dict) else None)
    if not classifier:
        return ()
    return (classifier,) if isinstance(classifier, str) else tuple(classifier)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def load_checkpoint(model: Any, path: Union[str, os.PathLike, Mapping[str, Any]], strict: bool = True,
                    num_classes: Optional[int] = None, classifier: Union[None, str, Sequence[str]] = None,
                    ema: bool = False) -> LoadReport:
    """Load weights from ``path`` (a ``.ckpt`` file or a ``{name: Parameter}`` dict) into ``model``.

    Training state (:func:`is_training_state`) is ignored. Classifier parameters (``classifier``:
    name prefixes; default: the model's ``classifier_names`` or spec) whose shape differs, i.e. a
    checkpoint trained for another number of classes, are skipped and left freshly initialised,
    with a warning. Anything else that does not fit is reported and, with ``strict=True``, raises
    :class:`CheckpointError` before any weight is changed.

    Args:
        num_classes: the model's class count, for the messages (default: read from the head).
        ema: load the checkpoint's ``ema.*`` copies instead of the raw weights.
    """
    if isinstance(path, Mapping):
        where, params = "<dict>", dict(path)
    else:
        where, params = os.fspath(path), read_checkpoint(path)
    if ema:
        ema_params = {k[len("ema."):]: v for k, v in params.items() if k.startswith("ema.")}
        if not ema_params:
            raise CheckpointError(f"checkpoint {where!r} holds no EMA weights ('ema.*'); load it with ema=False")
        params = ema_params

    model_params = {p.name: p for p in model.get_parameters()}
    heads = _classifier_prefixes(model, classifier)
    stripped = tuple(sorted(k for k in params if k not in model_params and is_training_state(k)))
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
        to_load[name] = value
        loaded.append(name)
    missing = tuple(n for n in model_params if n not in params)
    unexpected = tuple(sorted(k for k in params if k not in model_params and not is_training_state(k)))
    report = LoadReport(path=where, loaded=tuple(loaded), missing=missing, unexpected=unexpected,
                        mismatched=tuple(mismatched), dropped_classifier=tuple(dropped), stripped=stripped)

    if not report.ok:
        problems = []
        if report.missing:
            problems.append(f"{len(report.missing)} missing in checkpoint: {_brief(report.missing)}")
        if report.unexpected:
            problems.append(f"{len(report.unexpected)} unexpected: {_brief(report.unexpected)}")
        if report.mismatched:
            problems.append(f"{len(report.mismatched)} of another shape: {_brief(report.mismatched)}")
        fix = ("the checkpoint was probably saved from another model or model options (check the model name, "
               "batch_norm/has_bias/aux_logits); pass strict=False to load only the parameters that fit")
        message = f"checkpoint {where!r} does not fit {type(model).__name__}: " + "; ".join(problems) + f". Likely fix: {fix}"
        if strict:
            raise CheckpointError(message)
        _logger.warning(message)
    if dropped:
        classes = num_classes if num_classes is not None else _head_size(model_params, dropped)
        _logger.warning("checkpoint %s: classifier %s has another number of classes; it is left freshly "
                        "initialised%s (fine-tuning)", where, ", ".join(dropped),
                        f" for {classes} classes" if classes else "")
    if to_load:
        import mindspore as ms

        not_loaded = ms.load_param_into_net(model, to_load, strict_load=False)
        # load_param_into_net returns (params not loaded, ckpt entries not used) in MindSpore 2.x
        left = not_loaded[0] if isinstance(not_loaded, tuple) else not_loaded
        left = [n for n in (left or []) if n in to_load]
        if left:
            raise CheckpointError(f"checkpoint {where!r}: MindSpore refused to load {_brief(left)}")
    _logger.info("loaded checkpoint %s: %s", where, report.summary())
    return report


def _head_size(model_params: Mapping[str, Any], names: Sequence[str]) -> Optional[int]:
    for n in names:
        if n.endswith(".weight") or n.endswith(".bias"):
            return int(model_params[n].shape[0])
    return None


# ---------------------------------------------------------------------------------------------
# Pretrained weights: local cache, sha256 check, download only when reachable.


def cache_dir() -> Path:
    """Folder of downloaded weights: ``$VISIONZOO_HOME/checkpoints``, default ``~/.cache/visionzoo/checkpoints``."""
    home = os.environ.get("VISIONZOO_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "visionzoo"
    return base / "checkpoints"


def file_sha256(path: Union[str, os.PathLike]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: Path, expected: str, url: str) -> None:
    actual = file_sha256(path)
    if not expected or not actual.startswith(expected.lower()):
        raise CheckpointError(
            f"checksum mismatch for {str(path)!r}: sha256 is {actual}, expected {expected or '(none given)'}; "
            f"the file is damaged or not these weights: delete it and download {url} again")


def resolve_pretrained(weight: Any, timeout: float = 10.0) -> Path:
    """Local path of published weights ``weight`` (a :class:`visionzoo.registry.WeightSpec`).

    Uses the cache file when present (checking its sha256); otherwise downloads the URL into the
    cache. Without network (or with ``VISIONZOO_OFFLINE=1``) raises CheckpointError saying where to
    put the file.
    """
    folder = cache_dir()
    target = folder / weight.file_name
    if target.is_file():
        _check_hash(target, weight.sha256, weight.url)
        return target
    offline = os.environ.get("VISIONZOO_OFFLINE", "") not in ("", "0")
    where = (f"download {weight.url} on a machine with network access and put it at {str(target)!r} "
             f"(sha256 {weight.sha256}; set VISIONZOO_HOME to use another cache folder)")
    if offline:
        raise CheckpointError(f"pretrained weights '{weight.tag}' are not in the cache and VISIONZOO_OFFLINE is set: {where}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(weight.url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out)
            _check_hash(Path(tmp), weight.sha256, weight.url)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except CheckpointError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise CheckpointError(f"cannot download pretrained weights '{weight.tag}' ({reason}): {where}") from None
    _logger.info("downloaded %s to %s", weight.url, target)
    return target
