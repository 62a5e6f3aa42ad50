"""Optimizers with weight decay chosen by each parameter's role, and a learning rate scaled down for
the backbone when fine-tuning (``backbone_lr_scale``)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Tuple

import numpy as np
from mindspore import Parameter, Tensor, nn

from ..errors import ConfigError
from ..models.layers import under_prefixes

__all__ = ["build_optimizer", "split_decay_params", "head_prefixes"]

_logger = logging.getLogger(__name__)

_NORM_CELLS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)


def split_decay_params(network: nn.Cell, biases: bool = True) -> Tuple[List[Parameter], List[Parameter]]:
    """Split trainable parameters into (decay, no_decay) by role, not by name.

    No decay: every parameter of a normalisation cell (BatchNorm gamma/beta, ...) and, with
    ``biases``, the bias of any cell that has one (``cell.bias``). Everything else decays.
    """
    no_decay_ids = set()
    for _, cell in network.cells_and_names():
        if isinstance(cell, _NORM_CELLS):
            no_decay_ids.update(id(p) for p in cell.get_parameters(expand=False))
        bias = getattr(cell, "bias", None)
        if biases and isinstance(bias, Parameter):
            no_decay_ids.add(id(bias))
    decay, no_decay = [], []
    for p in network.trainable_params():
        (no_decay if id(p) in no_decay_ids else decay).append(p)
    return decay, no_decay


def head_prefixes(network: nn.Cell) -> Tuple[str, ...]:
    """Parameter-name prefixes of ``network``'s head: the layers a new ``num_classes`` replaces (the
    model's ``classifier_names``, which ``freeze_backbone`` and checkpoint loading use too). AMP's
    output wrapper is looked through."""
    cell = network
    while not hasattr(cell, "classifier_names") and hasattr(cell, "_backbone"):
        cell = cell._backbone
    return tuple(getattr(cell, "classifier_names", None) or ())


def build_optimizer(cfg: Any, network: nn.Cell, lr: np.ndarray) -> nn.Optimizer:
    """Build ``cfg.opt`` over ``network``'s trainable parameters with the per-update ``lr`` array.

    ``weight_decay_filter`` (MindCV's meanings): 'disable' decays every parameter (the model_zoo
    GoogLeNet recipe); 'norm_and_bias' exempts normalisation parameters and biases; 'auto' exempts
    normalisation parameters only (MindCV passes no groups, and MindSpore's default filter skips
    gamma/beta but decays biases). See :func:`split_decay_params`.

    ``backbone_lr_scale`` below 1: every parameter outside the head (:func:`head_prefixes`) learns
    at ``lr * backbone_lr_scale`` at every step (its own group, per decay group), the head at ``lr``.
    """
    params = network.trainable_params()
    # Always pass explicit groups: a plain parameter list makes MindSpore skip decay on any name
    # containing "beta" or "gamma", which would silently break the 'disable' (decay all) recipes.
    if cfg.weight_decay_filter != "disable":
        decay, no_decay = split_decay_params(network, biases=cfg.weight_decay_filter == "norm_and_bias")
    else:
        decay, no_decay = params, []
    _logger.debug("weight decay %g on %d tensors, none on %d", cfg.weight_decay, len(decay), len(no_decay))
    table = np.asarray(lr, dtype=np.float32)
    scale = cfg.backbone_lr_scale
    head: Tuple[str, ...] = ()
    if scale != 1.0:
        head = head_prefixes(network)
        if not head:
            raise ConfigError(
                f"key 'backbone_lr_scale' ({scale:g}) needs the model's head, but "
                f"{type(network).__name__} names none (no classifier_names)",
                hint="set backbone_lr_scale 1 for this model",
            )
    backbone_lr = Tensor(table * np.float32(scale))
    params_arg: List[Dict[str, Any]] = []
    for group, decay_value in ((decay, cfg.weight_decay), (no_decay, 0.0)):
        if not head:
            parts = [(group, {})]
        else:  # the backbone's share of this decay group at the scaled table, the head's at the schedule's
            parts = [
                ([p for p in group if not under_prefixes(p.name, head)], {"lr": backbone_lr}),
                ([p for p in group if under_prefixes(p.name, head)], {}),
            ]
        for members, extra in parts:
            if members:
                params_arg.append({"params": members, "weight_decay": decay_value, **extra})
    params_arg.append({"order_params": params})
    if head:
        _logger.debug(
            "backbone lr x%g on %d tensors; head %s at the schedule's lr",
            scale,
            sum(len(g["params"]) for g in params_arg if "lr" in g),
            ", ".join(head),
        )
    weight_decay = 0.0
    learning_rate = Tensor(table)
    name = cfg.opt
    if name in ("momentum", "nesterov"):
        return nn.Momentum(
            params_arg,
            learning_rate=learning_rate,
            momentum=cfg.momentum,
            weight_decay=weight_decay,
            use_nesterov=cfg.use_nesterov or name == "nesterov",
        )
    if name == "sgd":
        return nn.SGD(
            params_arg,
            learning_rate=learning_rate,
            momentum=cfg.momentum,
            weight_decay=weight_decay,
            nesterov=cfg.use_nesterov,
        )
    if name == "adamw":
        return nn.AdamWeightDecay(params_arg, learning_rate=learning_rate, eps=cfg.eps, weight_decay=weight_decay)
    if name == "adam":
        return nn.Adam(params_arg, learning_rate=learning_rate, eps=cfg.eps, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")  # the config schema refuses other names
