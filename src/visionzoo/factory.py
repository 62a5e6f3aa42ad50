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
from .registry import (
    ModelInfo,
    builder_takes_pretrained,
    check_model_options,
    get_builder,
    get_model_spec,
    is_model,
    register_model,
    registered_models,
    split_name,
)
from .runtime import building_for

__all__ = ["create_model", "list_models", "get_model_info", "is_model", "register_model"]


def list_models(
    filter: Union[str, Sequence[str]] = "", exclude_filters: Union[str, Sequence[str]] = "", pretrained: bool = False
) -> List[str]:
    """Sorted names of registered models (built-in and plugins).

    ``filter`` / ``exclude_filters``: shell-style wildcards (a string or a list), e.g. ``"vgg*_bn"``.
    ``pretrained=True`` lists ``name.tag`` pairs, one per published weight set (a filter matches the
    model name or the pair, e.g. ``"*.tv_in1k"``).
    """
    return registered_models(filter, exclude_filters, pretrained)


def get_model_info(name: str) -> ModelInfo:
    """Facts about model ``name``: parameter count, input size, normalisation, head and first-conv
    names, flavour, source, the packaged recipes that train it, and pretrained tags.

    For ``"model.tag"`` the facts are the tag's: its source, URL, sha256, license, published
    top-1/top-5 (``info.weight`` holds them all) and preprocessing (``info.preprocessing``).
    """
    base, tag = split_name(name)
    spec = get_model_spec(base)
    weight = spec.get_weight(tag) if tag else None
    facts = weight if weight is not None else spec
    return ModelInfo(
        name=base,
        num_params=(weight.num_params if weight is not None and weight.num_params else spec.num_params),
        input_size=tuple(facts.input_size),
        mean=tuple(float(v) for v in facts.mean),
        std=tuple(float(v) for v in facts.std),
        classifier=spec.classifier,
        first_conv=spec.first_conv,
        flavour=spec.flavour,
        source=weight.source if weight is not None else spec.source,
        recipes=find_recipes(base),
        pretrained=tuple(w.tag for w in spec.weights),
        num_features=spec.num_features,
        tag=tag,
        weight=weight,
    )


def create_model(
    name: str,
    pretrained: Union[bool, str] = False,
    num_classes: int = 1000,
    in_channels: int = 3,
    checkpoint_path: Optional[str] = None,
    pretrained_file: Optional[str] = None,
    device: Optional[str] = None,
    **kwargs: Any,
) -> Any:
    """Build registered model ``name``.

    Args:
        name: a name from :func:`list_models`, optionally with a weight tag (``"vgg16_bn.tv_in1k"``):
            the model is built with the architecture options that tag's weights need, and
            ``pretrained=True`` loads that tag.
        pretrained: load published weights (True: the name's tag, else the model's default tag; or a
            tag string). The file comes from the cache (``$VISIONZOO_HOME/checkpoints``), else is
            downloaded and its sha256 checked.
        pretrained_file: a local copy of the published file to use instead of the cache or a download
            (its sha256 is checked; implies ``pretrained``).
        num_classes: classifier size. With weights for another size, the head is left fresh.
        in_channels: input channels.
        checkpoint_path: a ``.ckpt`` to load after building (a training checkpoint works too: optimizer
            state and counters are ignored; a head of another size is re-initialised with a warning).
        device: the device the model will run on ('CPU', 'GPU', 'Ascend'); decides whether its layers take
            visionzoo's fast CPU paths. Default: MindSpore's ``device_target`` when the model is built.
        **kwargs: builder options, e.g. ``drop_rate``, ``aux_logits`` (googlenet), ``pad_mode``,
            ``has_bias``, ``batch_norm``, ``has_dropout``, ``init_mode`` (vgg). ``None`` values mean
            "the model's default". An option the model does not take raises ModelError.
    """
    base, tag = split_name(name)
    if pretrained_file is not None and not pretrained:
        pretrained = True
    if pretrained and checkpoint_path:
        raise CheckpointError(
            "pass either pretrained=True or checkpoint_path, not both",
            hint="the checkpoint would overwrite the pretrained weights",
        )
    if tag and isinstance(pretrained, str) and pretrained != tag:
        raise CheckpointError(
            f"model name {name!r} carries tag {tag!r} but pretrained={pretrained!r}", hint="give the tag once"
        )
    builder = get_builder(base)
    spec = get_model_spec(base)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    own_weights = builder_takes_pretrained(base)  # a plugin builder that loads its own weights
    weight = None
    if tag:
        weight = spec.get_weight(tag)
    elif pretrained and not own_weights:
        weight = spec.get_weight(pretrained)
    if weight is not None:  # the architecture the weights were trained with; user options win
        kwargs = {**weight.model_options, **kwargs}
    check_model_options(base, kwargs)
    extra = {"pretrained": pretrained} if own_weights else {}
    with building_for(device):  # checks the name first
        model = builder(num_classes=num_classes, in_channels=in_channels, **extra, **kwargs)
    if weight is not None:
        model.pretrained_tag = weight.tag
    if weight is not None and pretrained and not own_weights:
        load_checkpoint(model, resolve_pretrained(weight, pretrained_file=pretrained_file), strict=True)
    if checkpoint_path:
        load_checkpoint(model, checkpoint_path, strict=True)
    return model
