"""The public model API: :func:`create_model`, :func:`list_models`, :func:`get_model_info`.

It composes the registry (names -> builders), the built-in models (imported here, which registers
them), the checkpoint package (weights) and the packaged recipes (for :func:`get_model_info`).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

from . import models as _models  # noqa: F401  registers the built-in models
from .checkpoint import load_checkpoint, resolve_pretrained
from .errors import CheckpointError
from .recipes import find_recipes
from .registry import (ModelInfo, builder_takes_pretrained, check_model_options, get_builder, get_model_spec,
                       is_model, register_model, registered_models)

__all__ = ["create_model", "list_models", "get_model_info", "is_model", "register_model"]


def list_models(filter: Union[str, Sequence[str]] = "", exclude_filters: Union[str, Sequence[str]] = "",
                pretrained: bool = False) -> List[str]:
    """Sorted names of registered models (built-in and plugins).

    ``filter`` / ``exclude_filters``: shell-style wildcards (a string or a list), e.g. ``"vgg*_bn"``.
    ``pretrained=True`` keeps only models with published weights.
    """
    return registered_models(filter, exclude_filters, pretrained)


def get_model_info(name: str) -> ModelInfo:
    """Facts about model ``name``: parameter count, input size, normalisation, head and first-conv
    names, flavour, source, the packaged recipes that train it, and pretrained tags."""
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
            ``has_bias``, ``batch_norm``, ``has_dropout``, ``init_mode`` (vgg). ``None`` values mean
            "the model's default". An option the model does not take raises ModelError.
    """
    if pretrained and checkpoint_path:
        raise CheckpointError("pass either pretrained=True or checkpoint_path, not both",
                              hint="the checkpoint would overwrite the pretrained weights")
    builder = get_builder(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_model_options(name, kwargs)
    own_weights = builder_takes_pretrained(name)  # a plugin builder that loads its own weights
    weight = get_model_spec(name).get_weight(pretrained) if pretrained and not own_weights else None
    extra = {"pretrained": pretrained} if own_weights else {}
    model = builder(num_classes=num_classes, in_channels=in_channels, **extra, **kwargs)
    if weight is not None:
        load_checkpoint(model, resolve_pretrained(weight), strict=True)
    if checkpoint_path:
        load_checkpoint(model, checkpoint_path, strict=True)
    return model
