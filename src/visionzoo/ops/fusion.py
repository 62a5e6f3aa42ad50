"""Eval-mode fusion of Conv2d -> BatchNorm2d -> ReLU into one fast kernel call (see
:meth:`visionzoo.ops.Conv2d.fused` and docs/performance.md, "BatchNorm folding")."""

from __future__ import annotations

from typing import Sequence, Tuple

from mindspore import nn

from .conv import Conv2d

#: A unit of a fusion plan: ``(i,)`` runs layer i alone; ``(i, bn, relu)`` runs the Conv2d at i with the
#: BatchNorm2d at index ``bn`` and the ReLU at index ``relu`` after it (-1: absent) as one call.
Unit = Tuple[int, ...]


def fusion_plan(layers: Sequence[nn.Cell]) -> Tuple[Unit, ...]:
    """How to run a flat list of layers with every ``Conv2d [-> BatchNorm2d] [-> ReLU]`` run fused.
    Computed from the layers as they are now, so replacing one (say a ReLU by a LeakyReLU) changes the
    plan instead of being skipped."""
    plan, i, n = [], 0, len(layers)
    while i < n:
        if isinstance(layers[i], Conv2d):
            j = i + 1
            bn = j if j < n and isinstance(layers[j], nn.BatchNorm2d) else -1
            j += bn >= 0
            relu = j if j < n and type(layers[j]) is nn.ReLU else -1  # noqa: E721 (a subclass may differ)
            if bn >= 0 or relu >= 0:
                plan.append((i, bn, relu))
                i = max(i, bn, relu) + 1
                continue
        plan.append((i,))
        i += 1
    return tuple(plan)


class FusedSequential(nn.SequentialCell):
    """:class:`mindspore.nn.SequentialCell` (same children, names and parameters) that in eval mode
    runs each ``Conv2d [-> BatchNorm2d] [-> ReLU]`` of its layers as one fast kernel call
    (:meth:`visionzoo.ops.Conv2d.fused`) where it can, and every other layer as usual. The plan
    (``fusion_units``, see :func:`fusion_plan`) follows every change of the layers (assignment, deletion,
    append, insert) and a slice plans its own layers, so a slice that ends at a convolution returns the
    convolution's output, not the fused result. Training mode runs the layers one by one."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name == "cell_list":  # every change of the layers assigns it
            object.__setattr__(self, "fusion_units", fusion_plan(value))

    def construct(self, x):
        if self.training:
            for cell in self.cell_list:
                x = cell(x)
            return x
        for unit in self.fusion_units:
            if len(unit) == 1:
                x = self.cell_list[unit[0]](x)
            else:
                conv = self.cell_list[unit[0]]
                bn = self.cell_list[unit[1]] if unit[1] >= 0 else None
                if conv.can_fuse(x, bn):
                    x = conv.fused(x, bn, unit[2] >= 0)
                else:
                    x = conv(x)
                    if unit[1] >= 0:
                        x = self.cell_list[unit[1]](x)
                    if unit[2] >= 0:
                        x = self.cell_list[unit[2]](x)
        return x


def set_eval_fusion(network: nn.Cell, enabled: bool) -> int:
    """Allow (default) or forbid the eval-mode fusion in every :class:`~visionzoo.ops.Conv2d` of
    ``network``; returns how many layers allow it afterwards. Switch before the graph is compiled."""
    count = 0
    for _, cell in network.cells_and_names():
        if isinstance(cell, Conv2d):
            cell.fuse_eval = bool(enabled)
            count += cell.fuse_eval
    return count
