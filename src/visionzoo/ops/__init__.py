"""Operators with CPU-specific fast paths. Every model builds its pooling from here."""
from .pooling import MaxPool2d, set_fast_pool, standard_pooling

__all__ = ["MaxPool2d", "set_fast_pool", "standard_pooling"]
