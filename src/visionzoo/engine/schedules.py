"""Learning-rate schedules, computed per optimizer update.

Every schedule returns a float32 array with one learning rate per optimizer update for the whole
run (``epochs * updates_per_epoch``). MindSpore's optimizers index it with their ``global_step``,
which is saved in checkpoints, so a resumed run continues at exactly the same LR position, also
in dataset sink mode, and gradient accumulation advances the schedule once per update.

Formulas (``u`` = update index, ``W`` = warmup updates, ``T`` = total updates, ``e`` = epoch of
``u`` as a float, or its floor with ``lr_epoch_stair``):

- warmup (all schedules, when ``warmup_epochs > 0``): ``lr * (f + (1 - f) * u / W)``, ``f`` = warmup_factor
- constant: ``lr``
- cosine_decay / warmup_cosine_decay (MindCV): ``min_lr + (lr - min_lr) * (1 + cos(pi * t / D)) / 2``
  with ``t`` the epochs since warmup and ``D`` = decay_epochs; ``min_lr`` after ``D``
- step_decay: ``lr * decay_rate ** floor(m / decay_epochs)``, ``m`` = whole epochs since warmup (MindCV)
- multi_step_decay: ``lr * decay_rate ** (number of milestones <= m)`` (milestones count from the end of
  warmup, as in MindCV)
- exponential_decay (MindCV): ``lr * decay_rate ** m`` (``m`` fractional unless ``lr_epoch_stair``)
- staged_decay (model_zoo GoogLeNet CIFAR-10): ``lr`` x1, x0.1, x0.01, x0.001 after the fractions
  ``staged_decay_points`` (0.3, 0.6, 0.8) of ``T``
- polynomial_decay: with ``lr_power`` unset, MindCV's ``lr * (1 - m / (epochs - warmup)) ** decay_rate``;
  with ``lr_power`` set (model_zoo VGG16 CIFAR-10, power 2): ``min_lr + (lr - min_lr) * (1 - p) ** lr_power``,
  ``p = (u - W) / (T - W)``
- warmup with ``lr_epoch_stair``: the ramp also steps once per epoch (MindCV's ``linear_lr``)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["build_lr_schedule"]


def build_lr_schedule(cfg: Any, updates_per_epoch: int, lr: float = None) -> np.ndarray:
    """One learning rate per optimizer update, as float32. ``lr`` overrides ``cfg.lr`` (lr scaling)."""
    base = float(cfg.lr if lr is None else lr)
    epochs = int(cfg.epoch_size)
    total = epochs * updates_per_epoch
    warmup = min(int(cfg.warmup_epochs) * updates_per_epoch, total)
    u = np.arange(total, dtype=np.float64)
    epoch = u / updates_per_epoch
    if cfg.lr_epoch_stair:
        epoch = np.floor(epoch)
    name = cfg.scheduler
    # after warmup every schedule restarts its epoch count at 0, as MindCV's create_scheduler does
    # (its decay phase is a separate table of num_epochs - warmup_epochs epochs appended to the warmup)
    main = np.maximum(epoch - cfg.warmup_epochs, 0.0)
    if name == "constant":
        out = np.full(total, base)
    elif name in ("cosine_decay", "warmup_cosine_decay"):
        decay = max(float(cfg.decay_epochs), 1e-12)
        t = np.clip(main, 0.0, decay)
        out = cfg.min_lr + (base - cfg.min_lr) * 0.5 * (1.0 + np.cos(math.pi * t / decay))
    elif name == "step_decay":
        period = max(int(cfg.decay_epochs), 1)
        out = base * cfg.decay_rate ** np.floor(np.floor(main) / period)
    elif name == "multi_step_decay":
        passed = np.zeros(total)
        for milestone in cfg.multi_step_decay_milestones:
            passed += np.floor(main) >= milestone
        out = base * cfg.decay_rate**passed
    elif name == "exponential_decay":
        out = base * cfg.decay_rate**main
    elif name == "staged_decay":
        drops = np.zeros(total)
        for point in cfg.staged_decay_points:
            drops += u >= point * total
        out = base * 0.1**drops
    elif name == "polynomial_decay":
        if cfg.lr_power is None:  # MindCV: power decay_rate over the epochs after warmup, down to 0
            span = max(float(epochs - cfg.warmup_epochs), 1e-12)
            out = base * (1.0 - np.clip(main, 0.0, span) / span) ** cfg.decay_rate
        else:  # model_zoo VGG16 CIFAR-10: per update, down to min_lr
            span = max(total - warmup, 1)
            p = np.clip((u - warmup) / span, 0.0, 1.0)
            out = cfg.min_lr + (base - cfg.min_lr) * (1.0 - p) ** cfg.lr_power
    else:  # the config schema refuses other names
        raise ValueError(f"unknown scheduler {name!r}")
    if warmup > 0:
        f = float(cfg.warmup_factor)
        # MindCV: per update (linear_refined_lr), or per epoch with lr_epoch_stair (linear_lr)
        progress = (
            np.floor(u[:warmup] / updates_per_epoch) * updates_per_epoch if cfg.lr_epoch_stair else u[:warmup]
        ) / warmup
        ramp = base * (f + (1.0 - f) * progress)
        out = np.array(out, dtype=np.float64)
        out[:warmup] = ramp
    return np.asarray(out, dtype=np.float32)
