"""Switching a built network between visionzoo's fast CPU ops and MindSpore's standard ones."""

from __future__ import annotations

import contextlib
from typing import Iterator

from mindspore import nn

from .conv import Conv2d
from .pooling import MaxPool2d

_FAST_CELLS = (Conv2d, MaxPool2d)


def set_fast_ops(network: nn.Cell, enabled: bool) -> int:
    """Switch every :class:`~visionzoo.ops.Conv2d` and :class:`~visionzoo.ops.MaxPool2d` of ``network``
    to its fast CPU path (where it was built with one) or to the standard op; returns how many layers
    run a fast path afterwards. Switch before the network's graph is compiled (or for a new
    compilation, such as an export)."""
    count = 0
    for _, cell in network.cells_and_names():
        if isinstance(cell, _FAST_CELLS):
            cell.fast = bool(enabled) and cell.has_fast_path
            count += cell.fast
    return count


@contextlib.contextmanager
def standard_ops(network: nn.Cell) -> Iterator[nn.Cell]:
    """Run the block with every fast layer of ``network`` on MindSpore's standard op.

    For exports: the fast paths are ``aot`` Custom ops bound to a library compiled on this machine,
    which ONNX cannot express and a MINDIR file would reference by a local path.
    :func:`visionzoo.tasks.export.export_network` uses this; with ``mindspore.export`` directly, write
    ``with standard_ops(net): mindspore.export(net, ...)``. The previous choice is restored afterwards.
    """
    previous = [(cell, cell.fast) for _, cell in network.cells_and_names() if isinstance(cell, _FAST_CELLS)]
    set_fast_ops(network, False)
    try:
        yield network
    finally:
        for cell, fast in previous:
            cell.fast = fast
