"""Building the network a recipe describes: the registered model, its options, weights and AMP level."""
from __future__ import annotations

from typing import Any, Dict, Optional

import mindspore as ms

from ..config import Config
from ..factory import create_model

__all__ = ["build_network", "model_options"]


def model_options(cfg: Config) -> Dict[str, Any]:
    """The builder options a recipe sets: ``model_kwargs`` plus ``drop_rate`` and ``aux_logits``."""
    kwargs: Dict[str, Any] = dict(cfg.model_kwargs)
    if cfg.drop_rate is not None:
        kwargs["drop_rate"] = cfg.drop_rate
    if cfg.aux_logits:
        kwargs["aux_logits"] = True
    return kwargs


def build_network(cfg: Config, checkpoint_path: Optional[str] = None, amp_level: Optional[str] = None):
    """Create ``cfg.model`` with the recipe's classes, dropout and aux heads; apply AMP.

    ``checkpoint_path`` (default ``cfg.ckpt_path``) loads weights with the registry's strict report.
    O2 keeps BatchNorm in float32; with ``keep_batchnorm_fp32: False`` the whole network runs in
    float16 (MindSpore's O3), as the model_zoo GoogLeNet CIFAR-10 recipe does.
    """
    kwargs = model_options(cfg)
    path = cfg.ckpt_path if checkpoint_path is None else checkpoint_path
    network = create_model(cfg.model, pretrained=cfg.pretrained, num_classes=cfg.num_classes,
                           in_channels=cfg.in_channels, checkpoint_path=path or None, **kwargs)
    level = cfg.amp_level if amp_level is None else amp_level
    if level == "O2" and not cfg.keep_batchnorm_fp32:
        level = "O3"
    if level != "O0":
        network = ms.amp.auto_mixed_precision(network, level)
    return network
