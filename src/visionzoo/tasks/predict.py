"""Predict the classes of images with a trained checkpoint: :class:`Predictor` and :func:`predict`.

Images go through the recipe's own *eval* transforms (:mod:`visionzoo.data.transforms`), the ones
validation uses, so a prediction here and a score from ``validate.py`` see the same pixels:

* ImageNet-style recipes (``dataset: imagenet``): decode -> resize the shorter side to
  ``int(image_resize / crop_pct)`` -> centre crop ``image_resize`` -> normalise -> CHW.
* Array recipes (cifar10, cifar100, digits, synthetic): decode -> (a non-square image is centre
  cropped to its shorter side) -> resize to ``image_resize`` when it differs -> normalise -> CHW.
  A 32x32 PNG of a CIFAR image therefore gets exactly the validation tensor.

Class names come from the checkpoint's own class-name record (``_vz_classes``) (written by the trainer), else
from ``classes.json`` beside the checkpoint, else ``class_<i>``.

Example::

    from visionzoo import Predictor
    predictor = Predictor(checkpoint_path="ckpt/googlenet_cifar-best.ckpt")  # recipe read from the checkpoint
    best = [(p.source, p.labels[0], p.probs[0]) for p in predictor.predict(["cat.png", "ship.jpg"], topk=3)]
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..checkpoint import load_checkpoint, read_meta, records
from ..config import Config, load_config, load_config_text
from ..data.images import as_rgb_array, decode_file, list_images
from ..data.transforms import decoded_eval
from ..engine.build import build_network
from ..errors import ConfigError
from .engines import InferenceEngine
from .validate import load_for_eval, resolve_checkpoint, with_tag_preprocessing

__all__ = ["Predictor", "Prediction", "predict", "class_names_for", "config_for"]

_logger = logging.getLogger(__name__)

ImageLike = Union[str, "os.PathLike[str]", np.ndarray, Any]  # a path, a uint8 HWC/HW array or a PIL image


@dataclass
class Prediction:
    """Top-k classes of one image, most probable first."""

    source: str  # the file path, or "<array 0>" for an in-memory image
    indices: List[int]
    labels: List[str]
    probs: List[float]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "image": self.source,
            "topk": [{"class": c, "index": i, "prob": p} for c, i, p in zip(self.labels, self.indices, self.probs)],
        }


# ---------------------------------------------------------------------------------------------
# class names and the recipe of a checkpoint


def class_names_for(
    checkpoint_path: Optional[str], num_classes: int, meta: Optional[Dict[str, Any]] = None
) -> List[str]:
    """Class names for a checkpoint: its ``_vz_classes``, else ``classes.json`` beside it, else ``class_<i>``.

    A list of another length than ``num_classes`` is ignored with a warning (it belongs to other weights).
    """
    candidates: List[Tuple[str, Any]] = []
    if checkpoint_path:
        meta = read_meta(checkpoint_path) if meta is None else meta
        if records.CLASSES in meta:
            candidates.append(
                (f"{checkpoint_path} ({records.CLASSES})", lambda: json.loads(str(meta[records.CLASSES])))
            )
        beside = os.path.join(os.path.dirname(os.path.abspath(checkpoint_path)), "classes.json")
        if os.path.isfile(beside):
            candidates.append((beside, lambda: _read_json(beside)))
    for where, read in candidates:
        try:
            names = read()
        except (ValueError, OSError) as e:
            _logger.warning("ignoring class names in %s: %s", where, e)
            continue
        if isinstance(names, list) and len(names) == num_classes:
            return [str(n) for n in names]
        _logger.warning(
            "ignoring class names in %s: %s names for a model of %d classes",
            where,
            len(names) if isinstance(names, list) else "no list of",
            num_classes,
        )
    return [f"class_{i}" for i in range(num_classes)]


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def config_for(
    cfg: Union[None, str, Config] = None,
    checkpoint_path: Optional[str] = None,
    model: Optional[str] = None,
    meta: Optional[Dict[str, Any]] = None,
    **overrides: Any,
) -> Config:
    """The recipe to predict with: ``cfg`` (a Config or a YAML path), else the one stored in the
    checkpoint (``_vz_config``), else the schema defaults for ``model``; then ``overrides``.

    A stored recipe keeps its model, data and transform keys but not where it was trained:
    ``device_target`` and ``distribute`` go back to their defaults (CPU, False) unless overridden.
    """
    if isinstance(cfg, Config):
        base = cfg
    elif cfg is not None:
        base = load_config(os.fspath(cfg))
    elif checkpoint_path == "auto":
        raise ConfigError("checkpoint 'auto' needs a recipe (cfg / -c RECIPE) to know ckpt_save_dir")
    else:
        stored = meta if meta is not None else read_meta(checkpoint_path) if checkpoint_path else {}
        text = stored.get(records.CONFIG)
        if text is not None:
            base = _config_from_yaml_text(str(text), checkpoint_path or "<checkpoint>")
            defaults = Config()
            base = base.replace(device_target=defaults.device_target, distribute=defaults.distribute)
        elif model is None:
            where = (
                f"checkpoint {checkpoint_path!r} stores no recipe (it was not written by visionzoo's trainer)"
                if checkpoint_path
                else "no checkpoint given"
            )
            raise ConfigError(
                f"no recipe to predict with: {where}; pass the recipe (-c RECIPE, or cfg=) or at least "
                "the model (--model NAME --num_classes N, or model=..., num_classes=...)"
            )
        else:
            base = load_config(None, {"model": model})
    changes = dict(overrides)
    if model is not None:
        changes["model"] = model
    return base.replace(**changes) if changes else base


def _config_from_yaml_text(text: str, where: str) -> Config:
    try:
        return load_config_text(text, where)
    except ConfigError as e:
        raise ConfigError(
            f"the recipe stored in this checkpoint does not load here ({e.what})",
            path=where,
            hint="pass the recipe with -c/cfg",
        ) from None


# ---------------------------------------------------------------------------------------------
# the predictor


class Predictor:
    """A network, its recipe's eval transforms and its class names, ready to predict images.

    Args:
        cfg: a :class:`~visionzoo.config.Config` or a recipe path; default: the recipe stored in
            the checkpoint (visionzoo training checkpoints carry it), else defaults for ``model``.
        model: a registered model name (overrides the recipe's), or an ``nn.Cell`` to use as is.
        checkpoint_path: weights to load strictly (a visionzoo or MindCV ``.ckpt``).
        class_names: names to report instead of the checkpoint's.
        batch_size: images per forward pass (default: the recipe's eval_batch_size or batch_size).
        engine: ``auto`` (default: the fastest installed, see :mod:`visionzoo.tasks.engines`),
            ``mindspore``, ``onnxruntime`` or ``openvino``.
        **overrides: recipe keys to change, e.g. ``val_amp_level="O2"``, ``image_resize=32``.

    With a weight tag (``model="vgg16_bn.tv_in1k"``, or ``pretrained=True``) the tag's input size,
    crop_pct, interpolation and mean/std are used wherever the recipe leaves them at their defaults.
    """

    def __init__(
        self,
        cfg: Union[None, str, Config] = None,
        *,
        model: Any = None,
        checkpoint_path: Optional[str] = None,
        class_names: Optional[Sequence[str]] = None,
        batch_size: Optional[int] = None,
        engine: str = "auto",
        **overrides: Any,
    ) -> None:
        from mindspore import nn

        cell = model if isinstance(model, nn.Cell) else None
        name = None if cell is not None else model
        path = os.fspath(checkpoint_path) if checkpoint_path else None
        meta = read_meta(path) if path and path != "auto" else {}
        if cell is not None and cfg is None and not meta.get(records.CONFIG):
            raise ConfigError("a Predictor over a given network needs cfg (the recipe whose eval transforms to use)")
        # the weight tag's preprocessing (model "name.tag", or pretrained) where the recipe sets none
        self.cfg = with_tag_preprocessing(config_for(cfg, path, name, meta=meta, **overrides))
        if path:
            if path == "auto":
                path = resolve_checkpoint(self.cfg.replace(ckpt_path=path))
                meta = read_meta(path)
            if cell is not None:
                load_checkpoint(cell, path, strict=True, classifier=())  # as validation: all must fit
                self.network = cell
            else:
                self.network = load_for_eval(self.cfg, path)
        elif cell is not None:
            self.network = cell
        else:
            if not self.cfg.pretrained:
                _logger.warning(
                    "no checkpoint_path and pretrained False: %s predicts with random weights", self.cfg.model
                )
            self.network = build_network(self.cfg, checkpoint_path="", amp_level=self.cfg.val_amp_level)
        self.network.set_train(False)
        self.engine = InferenceEngine(self.network, engine, device_target=self.cfg.device_target)
        self.checkpoint_path = path
        self.num_classes = int(self.cfg.num_classes)
        if class_names is not None:
            if len(class_names) != self.num_classes:
                raise ConfigError(
                    f"class_names has {len(class_names)} names but the model has {self.num_classes} classes"
                )
            self.class_names = [str(c) for c in class_names]
        else:
            self.class_names = class_names_for(path, self.num_classes, meta=meta)
        self.batch_size = int(batch_size or self.cfg.eval_batch_size or self.cfg.batch_size)
        self._ops_cache: Dict[Any, Any] = {}

    # -------------------------------------------------------------- transforms
    def _eval_ops(self, height: int, width: int):
        """The recipe's eval transforms for a decoded H x W x 3 uint8 image (cached per image size)."""
        import mindspore.dataset.transforms as T

        key = ("folder",) if self.cfg.dataset == "imagenet" else ("array", height, width)
        if key not in self._ops_cache:
            self._ops_cache[key] = T.Compose(decoded_eval(self.cfg, height, width))
        return self._ops_cache[key]

    def preprocess(self, image: ImageLike, index: int = 0) -> np.ndarray:
        """One image (path, uint8 array or PIL image) -> float32 C x H x W, as the validation pipeline makes it."""
        if isinstance(image, (str, os.PathLike)):
            pixels = decode_file(os.fspath(image))
        else:
            pixels = as_rgb_array(image, index)
        out = self._eval_ops(pixels.shape[0], pixels.shape[1])(pixels)
        return np.asarray(out, dtype=np.float32)

    # -------------------------------------------------------------- forward
    def logits_of(self, batch: np.ndarray) -> np.ndarray:
        """float32 N x C x H x W (already transformed) -> float32 N x num_classes logits, through the engine."""
        return self.engine(batch)

    def _expand(self, images: Union[ImageLike, Iterable[ImageLike]]) -> Tuple[List[Any], List[str]]:
        """Sources and their display names; a folder expands to its images."""
        if isinstance(images, (str, os.PathLike)) or not isinstance(images, (list, tuple)):
            images = [images]
        items: List[Any] = []
        names: List[str] = []
        for i, item in enumerate(images):
            if isinstance(item, (str, os.PathLike)):
                for path in list_images(item):
                    items.append(path)
                    names.append(path)
            else:
                items.append(item)
                names.append(f"<array {i}>")
        return items, names

    def logits(self, images: Union[ImageLike, Iterable[ImageLike]]) -> np.ndarray:
        """float32 N x num_classes logits for images (paths, folders, uint8 arrays or PIL images)."""
        items, _ = self._expand(images)
        return self._forward(items)

    def _forward(self, items: Sequence[Any]) -> np.ndarray:
        outputs = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            batch = np.stack([self.preprocess(x, start + k) for k, x in enumerate(chunk)])
            outputs.append(self.logits_of(batch))
        if not outputs:
            return np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(outputs)

    def predict(self, images: Union[ImageLike, Iterable[ImageLike]], topk: int = 5) -> List[Prediction]:
        """Top-``topk`` classes with softmax probabilities for each image, in input order."""
        if int(topk) < 1:
            raise ConfigError(f"topk must be >= 1, got {topk}")
        k = min(int(topk), self.num_classes)
        items, names = self._expand(images)
        logits = self._forward(items).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        results = []
        for name, p in zip(names, probs):
            order = np.argsort(-p, kind="stable")[:k]
            results.append(
                Prediction(
                    source=name,
                    indices=[int(i) for i in order],
                    labels=[self.class_names[i] for i in order],
                    probs=[float(p[i]) for i in order],
                )
            )
        return results


def predict(
    images: Union[ImageLike, Iterable[ImageLike]],
    *,
    cfg: Union[None, str, Config] = None,
    model: Any = None,
    checkpoint_path: Optional[str] = None,
    topk: int = 5,
    **overrides: Any,
) -> List[Prediction]:
    """One-call prediction: ``Predictor(cfg, model=..., checkpoint_path=..., **overrides).predict(images, topk)``."""
    return Predictor(cfg, model=model, checkpoint_path=checkpoint_path, **overrides).predict(images, topk=topk)
