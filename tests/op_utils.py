"""Shared by the fast-op tests: a cell whose gradients are a layer's backward pass."""
from mindspore import nn


class WeightedSum(nn.Cell):
    """sum(layer(x) * upstream): its gradients (w.r.t. x and the layer's parameters) are the layer's
    backward pass applied to ``upstream``. Trains or evaluates as the layer does."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.set_train(layer.training)

    def construct(self, x, upstream):
        return (self.layer(x) * upstream).sum()
