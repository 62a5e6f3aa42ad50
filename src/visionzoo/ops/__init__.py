"""Operators with CPU-specific fast paths. Every model builds its convolutions and pooling from here."""
from .conv import Conv2d
from .pooling import MaxPool2d
from .switch import set_fast_ops, standard_ops

__all__ = ["Conv2d", "MaxPool2d", "set_fast_ops", "standard_ops"]
