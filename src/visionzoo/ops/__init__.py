"""Operators with CPU-specific fast paths. Every model builds its pooling from here."""
from .pooling import MaxPool2d

__all__ = ["MaxPool2d"]
