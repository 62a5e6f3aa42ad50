"""Exponential moving average of the weights (MindCV's ``ema`` / ``ema_decay``).

After every optimizer update ``k`` (1, 2, ...), every parameter of the network (trainable weights
and BatchNorm statistics alike, as MindCV) moves its average::

    d_k = ema_decay * (1 - exp(-k / 2000))      # MindCV's warm-up of the decay
    ema = d_k * ema + (1 - d_k) * weight

starting from the initial weights. The averages are parameters named ``ema.<name>`` plus the
counter ``ema.updates``, so a training checkpoint holds both the online and the averaged weights,
and a resumed run continues the average exactly. Validation during training and ``validate.py``
with ``ema: True`` score the averaged weights (:func:`ema_weights_of`).
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..checkpoint.records import EMA_PREFIX, EMA_UPDATES, ema_entries

__all__ = ["EMA", "EMA_PREFIX", "ema_weights_of", "EMA_WARMUP_UPDATES"]

#: MindCV's decay warm-up constant: the effective decay is ema_decay * (1 - exp(-updates / this)).
EMA_WARMUP_UPDATES = 2000.0

_ema_op = ops.MultitypeFuncGraph("ema_op")


@_ema_op.register("Tensor", "Tensor", "Tensor")
def _ema_update(decay, average, weight):
    return ops.assign(average, average * ops.cast(decay, average.dtype) + weight * ops.cast(1 - decay, weight.dtype))


class EMA(nn.Cell):
    """Averages of every parameter of ``network``; calling the cell applies one update."""

    def __init__(self, network: nn.Cell, decay: float) -> None:
        super().__init__(auto_prefix=False)
        self.weights = ParameterTuple(list(network.get_parameters()))
        self.averages = self.weights.clone(prefix=EMA_PREFIX.rstrip("."), init="same")
        self.updates = Parameter(Tensor(0.0, ms.float32), name=EMA_UPDATES, requires_grad=False)
        self.decay = Tensor(float(decay), ms.float32)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        updates = self.updates + 1.0
        decay = self.decay * (1.0 - ops.exp(-updates / EMA_WARMUP_UPDATES))
        ops.assign(self.updates, updates)
        return self.hyper_map(ops.partial(_ema_op, decay), self.averages, self.weights)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """Within the block the network holds the averaged weights (and the averages the online ones)."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self) -> None:
        for weight, average in zip(self.weights, self.averages):
            online = weight.asnumpy().copy()
            weight.set_data(Tensor(average.asnumpy()))
            average.set_data(Tensor(online))


def ema_weights_of(params: Dict[str, object]) -> Dict[str, object]:
    """From a checkpoint's parameter dict, the averaged weights under the network's own names ({} if none)."""
    out = {}
    for plain, value in ema_entries(params).items():
        data = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
        out[plain] = Parameter(Tensor(data), name=plain)
    return out
