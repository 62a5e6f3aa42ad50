"""What the fast CPU layers need to know about AMP."""
from __future__ import annotations


class TracksLowPrecision:
    """Mixin for a :class:`mindspore.nn.Cell` with float32-only fast kernels.

    ``Cell.to_float`` (which AMP uses) sets ``fp16``/``bf16``/``fp32`` flags on every cell; under a
    low-precision cast PyNative casts each operator's inputs, so the kernels would receive float16.
    ``self._low_precision`` (a plain bool, a constant in graph mode) tells ``construct`` to take the
    standard op instead.
    """

    _low_precision = False

    def add_flags(self, **flags):
        if flags.get("fp16") or flags.get("bf16"):
            self._low_precision = True
        elif flags.get("fp32"):
            self._low_precision = False
        return super().add_flags(**flags)
