"""Operators with CPU-specific fast paths. Every model builds its convolutions and pooling from here."""

from .conv import Conv2d
from .fusion import FusedSequential, fusion_plan, set_eval_fusion
from .pooling import MaxPool2d
from .switch import set_fast_ops, standard_ops

__all__ = ["Conv2d", "MaxPool2d", "FusedSequential", "fusion_plan", "set_eval_fusion", "set_fast_ops", "standard_ops"]
