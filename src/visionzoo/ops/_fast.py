"""What visionzoo's fast CPU layers (:class:`~visionzoo.ops.Conv2d`, :class:`~visionzoo.ops.MaxPool2d`)
share: the fast-path state, AMP awareness, and MindSpore's ``same`` padding."""

from __future__ import annotations

from typing import Tuple


def same_pads(size: int, k: int, s: int) -> Tuple[int, int]:
    """MindSpore's ``same`` padding along one axis (dilation 1): (before, after); an odd total puts
    the extra cell after. The output length is ``ceil(size / s)``."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class FastPathLayer:
    """Mixin for a :class:`mindspore.nn.Cell` with float32-only fast kernels in ``self._forward``
    (``None`` when the layer was built without them); ``self.fast`` says whether ``construct`` takes
    them (see :func:`visionzoo.ops.set_fast_ops`).

    ``Cell.to_float`` (which AMP uses) sets ``fp16``/``bf16``/``fp32`` flags on every cell; under a
    low-precision cast PyNative casts each operator's inputs, so the kernels would receive float16.
    ``self._low_precision`` (a plain bool, a constant in graph mode) tells ``construct`` to take the
    standard op instead.
    """

    _low_precision = False

    @property
    def has_fast_path(self) -> bool:
        """Whether the layer was built with the fast kernels (and so can be switched to them)."""
        return self._forward is not None

    def add_flags(self, **flags):
        if flags.get("fp16") or flags.get("bf16"):
            self._low_precision = True
        elif flags.get("fp32"):
            self._low_precision = False
        return super().add_flags(**flags)
