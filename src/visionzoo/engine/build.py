"""Building the network a recipe describes: the registered model, its options, weights and AMP level."""

from __future__ import annotations

from typing import Any, Dict, Optional

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.common import initializer as init

from ..config import Config
from ..factory import create_model
from ..registry import get_model_spec, split_name

__all__ = ["build_network", "model_options", "tag_weight", "mindcv_seeded_init", "MINDCV_INIT_MODES"]

#: Initialisation schemes that are MindCV's own (its googlenet): for these a seed gives MindCV's weights.
MINDCV_INIT_MODES = ("mindcv_googlenet",)


def model_options(cfg: Config) -> Dict[str, Any]:
    """The builder options a recipe sets: ``model_kwargs`` plus ``drop_rate``, ``drop_path_rate`` (when not 0:
    the config admits it only for a model that takes it) and ``aux_logits``."""
    kwargs: Dict[str, Any] = dict(cfg.model_kwargs)
    if cfg.drop_rate is not None:
        kwargs["drop_rate"] = cfg.drop_rate
    if cfg.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.drop_path_rate
    if cfg.aux_logits:
        kwargs["aux_logits"] = True
    return kwargs


def tag_weight(cfg: Config) -> Any:
    """The WeightSpec a recipe's network uses: the tag in ``model`` ("vgg16_bn.tv_in1k"), else the
    model's default tag when ``pretrained`` is set; None without one."""
    base, tag = split_name(cfg.model)
    spec = get_model_spec(base)
    if tag:
        return spec.get_weight(tag)
    if cfg.pretrained and spec.weights:
        return spec.get_weight(True)
    return None


def build_network(
    cfg: Config, checkpoint_path: Optional[str] = None, amp_level: Optional[str] = None, *, load_weights: bool = True
):
    """Create ``cfg.model`` with the recipe's classes, dropout and aux heads; apply AMP.

    ``checkpoint_path`` (default ``cfg.ckpt_path``) loads weights with the registry's strict report.
    ``load_weights=False`` is for a caller that sets the weights itself (a checkpoint to score, the
    training network's weights): the network has the architecture ``pretrained`` or the model's tag
    selects, but neither the published weights (no download) nor a checkpoint is read.
    O2 keeps BatchNorm in float32; with ``keep_batchnorm_fp32: False`` the whole network runs in
    float16 (MindSpore's O3), as the model_zoo GoogLeNet CIFAR-10 recipe does.
    """
    kwargs = model_options(cfg)
    path = (cfg.ckpt_path if checkpoint_path is None else checkpoint_path) if load_weights else ""
    weight = None if load_weights else tag_weight(cfg)
    network = create_model(
        # the tag's name builds the architecture its weights need, without loading them
        cfg.model if weight is None else f"{split_name(cfg.model)[0]}.{weight.tag}",
        pretrained=cfg.pretrained and load_weights,
        num_classes=cfg.num_classes,
        in_channels=cfg.in_channels,
        checkpoint_path=path or None,
        device=cfg.device_target,
        **kwargs,
    )
    if load_weights and not (cfg.pretrained or path):
        mindcv_seeded_init(network, cfg.seed)
    level = cfg.amp_level if amp_level is None else amp_level
    if level == "O2" and not cfg.keep_batchnorm_fp32:
        level = "O3"
    if level != "O0":
        network = ms.amp.auto_mixed_precision(network, level)
    return network


def mindcv_seeded_init(network: nn.Cell, seed: int) -> bool:
    """Re-draw the weights of a MindCV-flavoured model exactly as MindCV does after ``set_seed(seed)``.

    MindSpore draws one numpy seed per randomly initialised tensor, at construction. MindCV's models
    are first built with MindSpore's default initialisers (one draw per Conv2d/Dense weight and per
    default-initialised bias) and then re-initialised in ``cells_and_names`` order by
    ``_initialize_weights`` (one draw per weight, biases zero). visionzoo builds with the final
    scheme directly, so the same seed gave other (equally distributed) weights. This replays MindCV's
    sequence: reset the seed, skip the default draws, re-draw every weight with the model's scheme.
    Applies to models whose ``init_mode`` is in :data:`MINDCV_INIT_MODES`; returns whether it did.
    """
    from ..models.layers import conv_initializer, dense_initializer

    mode = getattr(network, "init_mode", None)
    if mode not in MINDCV_INIT_MODES:
        return False
    cells = [c for _, c in network.cells_and_names() if isinstance(c, (nn.Conv2d, nn.Dense))]
    ms.set_seed(int(seed))
    # MindCV's constructors: every weight and every bias of these cells gets a default random draw
    skipped = sum(1 + (c.bias is not None) for c in cells)
    np.random.randint(low=1, high=(1 << 63), size=skipped, dtype=np.int64)  # MindSpore's per-tensor seeds
    for cell in cells:
        scheme = conv_initializer(mode) if isinstance(cell, nn.Conv2d) else dense_initializer(mode)
        cell.weight.set_data(init.initializer(scheme, cell.weight.shape, cell.weight.dtype))
        if cell.bias is not None:
            cell.bias.set_data(init.initializer("zeros", cell.bias.shape, cell.bias.dtype))
    return True
