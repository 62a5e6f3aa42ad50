"""Dataset sink mode on every device: the device queue on Ascend/GPU, a host stand-in on the CPU.

MindSpore 2.10's ``mindspore.data_sink(step, dataset, sink_size)`` (``train/data_sink.py``) builds a
device queue when it is called: the pipeline is copied (the sampler with it) and starts sending at
once with ``num_epochs=-1``, without an end-of-sequence at epoch boundaries, so the queue is one
continuous stream that runs on from one epoch into the next. Each call of the returned function
then runs ``sink_size`` steps, each taking the next batch from that stream (with ``jit_config=None``
the loop over the steps is Python's, each step the compiled cell).

:class:`HostSink` consumes a dataset the same way on the CPU, where MindSpore refuses ``data_sink``
("Data sinking supports ascend or gpu device target"): one iterator created when the sink is
opened, ``num_epochs=-1``, ``sink_size`` steps per call, crossing an epoch boundary as the queue
does. Only :class:`DeviceSink` differs, in the one call into MindSpore.

:func:`open_sink` opens one sink per epoch, not one for the run. A continuous stream keeps the
sampler's per-epoch order, but MindSpore's random augmentations (``RandomCrop``, flips, ...) draw
from generators seeded when the pipeline is built and simply continue across the boundary
(measured: the digits pipeline's second epoch differs from the one ``set_epoch(1)`` builds), so
neither the step loop's per-epoch augmentation seeds nor a resume at an exact position could hold.
Opening the epoch's sink after :meth:`~visionzoo.data.loader.DatasetBundle.set_epoch` gives it the
same order, augmentation seeds and mixup switch as the step loop; ``start`` skips the steps a
mid-epoch checkpoint already ran (the skipped batches still pass through the random ops, so the
rest of the epoch is the same data). MindSpore sinks a dataset object once, so each epoch sinks a
copy of the pipeline (creating an iterator copies it anyway).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable

import mindspore as ms

__all__ = ["HostSink", "DeviceSink", "open_sink"]

_logger = logging.getLogger(__name__)


class HostSink:
    """The CPU stand-in for ``mindspore.data_sink``: ``sink_size`` calls of ``step`` per call, fed from one
    iterator over ``dataset`` created now with ``num_epochs=-1`` (as the device queue is)."""

    def __init__(self, step: Callable[..., Any], dataset: Any, sink_size: int) -> None:
        if sink_size <= 0:
            raise ValueError(f"sink_size must be positive, got {sink_size}")
        self.step = step
        self.sink_size = int(sink_size)
        self._iterator = dataset.create_tuple_iterator(num_epochs=-1)

    def _next_batch(self):
        try:
            return next(self._iterator)
        except StopIteration:  # an epoch boundary: the device queue carries on into the next epoch
            return next(self._iterator)

    def __call__(self) -> Any:
        out = None
        for _ in range(self.sink_size):
            out = self.step(*self._next_batch())
        return out

    def close(self) -> None:
        self._iterator.stop()


class DeviceSink:
    """``mindspore.data_sink`` itself (Ascend/GPU): the device queue and its ``sink_size`` steps per call."""

    def __init__(self, step: Callable[..., Any], dataset: Any, sink_size: int) -> None:
        self._dataset = dataset
        self._call = ms.data_sink(step, dataset, sink_size=sink_size)

    def __call__(self) -> Any:
        return self._call()

    def close(self) -> None:
        self._dataset.__transfer_dataset__.release()  # ends the queue's sending thread (MindSpore's own API)


def open_sink(step: Callable[..., Any], bundle: Any, epoch: int, start: int, sink_size: int, device_target: str):
    """The sink of ``epoch`` (0-based) of ``bundle`` (a DatasetBundle) from its step ``start``: a
    :class:`DeviceSink` on Ascend/GPU, a :class:`HostSink` on the CPU. Close it after the epoch."""
    bundle.set_epoch(epoch)  # order, augmentation seeds, mixup switch: read when the pipeline is copied
    dataset = copy.deepcopy(bundle.dataset)  # MindSpore sinks a dataset object only once
    if start:
        dataset = dataset.skip(start)
    kind = HostSink if device_target == "CPU" else DeviceSink
    _logger.debug("%s for epoch %d from step %d, %d steps per call", kind.__name__, epoch + 1, start, sink_size)
    return kind(step, dataset, sink_size)
