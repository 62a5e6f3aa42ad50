"""Max pooling.

Same constructor as :class:`mindspore.nn.MaxPool2d`; models use this class so that a faster CPU
formulation can be chosen in one place (see docs/performance.md).
"""
from __future__ import annotations

from mindspore import nn


class MaxPool2d(nn.MaxPool2d):
    """Drop-in for :class:`mindspore.nn.MaxPool2d` (NCHW)."""
