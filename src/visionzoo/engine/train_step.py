"""One training step as a MindSpore cell: forward, backward, loss scaling, all-reduce, clipping, update.

Everything a step does happens inside the one compiled cell, so a sink call (``sink_size`` steps
fed from the device queue, no Python between them) does all of it: gradient accumulation adds each
micro-batch's gradients to buffers and counts micro-batches in a parameter; the ``accum_steps``-th
applies the optimizer to the averaged buffers, zeroes them and updates the EMA weights (MindCV's
``ema``), so the optimizer's ``global_step`` (hence the LR schedule) advances once per update.

Overflow detection (``mindspore.amp.all_finite``) runs on Ascend, GPU and CPU alike, so dynamic and
fixed loss scales, with or without dropping overflowed updates, behave the same on every device.
:class:`AccountedStep` wraps a step and adds its loss, overflow and non-finite flags to on-device
counters (:class:`StepCounters`): the trainer reads them after a sink call (many steps) or after
any number of steps of the Python loop, so both loops share one accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.context import ParallelMode

from ..checkpoint import records

__all__ = ["TrainStep", "LossScaleState", "StepCounters", "AccountedStep", "ChunkTotals", "MICRO_STEP"]

#: The train step's count of micro-batches accumulated since the last update (gradient accumulation).
MICRO_STEP = records.ACCUM_PREFIX + ".micro_step"

_grad_scale = ops.MultitypeFuncGraph("grad_scale")
_accumulate = ops.MultitypeFuncGraph("accumulate")
_zero = ops.MultitypeFuncGraph("zero")


@_grad_scale.register("Tensor", "Tensor")
def _scale_grad(scale, grad):
    return grad * ops.cast(scale, grad.dtype)


@_accumulate.register("Tensor", "Tensor", "Tensor")
def _accumulate_grad(factor, buffer, grad):
    return ops.assign_add(buffer, ops.cast(grad, buffer.dtype) * factor)


@_zero.register("Tensor")
def _zero_buffer(buffer):
    return ops.assign(buffer, ops.zeros_like(buffer))


class LossScaleState(nn.Cell):
    """Loss-scale value and dynamic-scaling counters, as parameters so checkpoints carry them."""

    def __init__(self, init_scale: float, dynamic: bool, scale_factor: float = 2.0, scale_window: int = 2000) -> None:
        super().__init__(auto_prefix=False)
        self.dynamic = dynamic
        self.scale_factor = scale_factor
        self.scale_window = scale_window
        self.scale = Parameter(Tensor(init_scale, ms.float32), name=records.LOSS_SCALE, requires_grad=False)
        self.good_steps = Parameter(Tensor(0, ms.int32), name=records.GOOD_STEPS, requires_grad=False)

    def update(self, finite):
        """Dynamic scaling: halve on overflow (not below 1), double after ``scale_window`` good steps."""
        one = ops.ones_like(self.good_steps)
        good = ops.select(finite, self.good_steps + one, ops.zeros_like(self.good_steps))
        grow = good >= self.scale_window
        halved = ops.maximum(self.scale / self.scale_factor, ops.ones_like(self.scale))
        new_scale = ops.select(finite, ops.select(grow, self.scale * self.scale_factor, self.scale), halved)
        good = ops.select(grow, ops.zeros_like(good), good)
        ops.assign(self.good_steps, good)
        return ops.assign(self.scale, new_scale)


class TrainStep(nn.Cell):
    """Forward + backward + optimizer update for ``net_with_loss`` (returns the loss and finiteness).

    Args:
        net_with_loss: cell mapping (images, labels) to a scalar loss.
        optimizer: MindSpore optimizer over the trainable parameters.
        scale_state: loss-scale state shared by the step cells of one run.
        drop_overflow: check the gradients' finiteness and skip the optimizer update when they are not
            (``drop_overflow_update``); a dynamic ``scale_state`` always does (it must see overflows).
        clip_value: clip by global norm when given.
        accum_buffers: gradient buffers (a ParameterTuple) for gradient accumulation, or None.
        accum_steps: micro-batches per update.
        ema: an :class:`~visionzoo.engine.ema.EMA` of the network, updated after every update, or None.
    """

    def __init__(
        self,
        net_with_loss: nn.Cell,
        optimizer: nn.Optimizer,
        scale_state: LossScaleState,
        drop_overflow: bool = False,
        clip_value: Optional[float] = None,
        accum_buffers=None,
        accum_steps: int = 1,
        ema: Optional[nn.Cell] = None,
    ) -> None:
        super().__init__(auto_prefix=False)
        self.network = net_with_loss
        self.network.set_grad()
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.scale_state = scale_state
        self.scaled = scale_state.dynamic or float(scale_state.scale.asnumpy()) != 1.0
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()
        self.dynamic = scale_state.dynamic
        self.drop_overflow = drop_overflow or self.dynamic
        self.clip = clip_value is not None
        self.clip_value = float(clip_value or 0.0)
        self.accum = accum_buffers is not None
        self.accum_buffers = accum_buffers
        self.accum_factor = Tensor(1.0 / accum_steps, ms.float32)
        self.accum_steps = Tensor(int(accum_steps), ms.int32)
        # micro-batches added to the buffers since the last update (0 at every update, epoch end and stop)
        self.micro_step = Parameter(Tensor(0, ms.int32), name=MICRO_STEP, requires_grad=False) if self.accum else None
        self.use_ema = ema is not None
        self.ema = ema
        parallel_mode = ms.get_auto_parallel_context("parallel_mode")
        self.reduce = parallel_mode in (ParallelMode.DATA_PARALLEL, ParallelMode.HYBRID_PARALLEL)
        if self.reduce:
            from mindspore.communication import get_group_size

            self.reducer = nn.DistributedGradReducer(self.weights, mean=True, degree=get_group_size())

    def construct(self, images, labels):
        loss = self.network(images, labels)
        sens = ops.fill(loss.dtype, loss.shape, 1.0)
        if self.scaled:
            scale = self.scale_state.scale
            grads = self.grad(self.network, self.weights)(images, labels, sens * ops.cast(scale, loss.dtype))
            grads = self.hyper_map(ops.partial(_grad_scale, ops.reciprocal(scale)), grads)
        else:  # no loss scale: skip two passes over every gradient
            grads = self.grad(self.network, self.weights)(images, labels, sens)
        if not self.accum:
            finite = self._update(grads)
            return ops.depend(loss, finite), finite
        # assign_add returns the updated buffers: the averaged gradients of all micro-batches so far
        grads = self.hyper_map(ops.partial(_accumulate, self.accum_factor), self.accum_buffers, grads)
        count = self.micro_step + 1
        last = count >= self.accum_steps
        finite = ops.ones((), ms.bool_)  # a micro-batch that only accumulates never overflows an update
        if last:
            finite = self._update(grads)
            finite = ops.depend(finite, self.hyper_map(_zero, self.accum_buffers))
            count = ops.zeros_like(count)
        finite = ops.depend(finite, ops.assign(self.micro_step, count))
        return ops.depend(loss, finite), finite

    def _update(self, grads):
        """All-reduce, overflow check and loss-scale update, clipping, the optimizer, the EMA; returns finiteness."""
        if self.reduce:
            grads = self.reducer(grads)
        finite = ops.ones((), ms.bool_)
        if self.drop_overflow:
            finite = ms.amp.all_finite(grads)
            if self.dynamic:
                finite = ops.depend(finite, self.scale_state.update(finite))
        if self.clip:
            grads = ops.clip_by_global_norm(grads, self.clip_value)
        if self.drop_overflow:
            if finite:
                finite = ops.depend(finite, self.optimizer(grads))
        else:
            finite = ops.depend(finite, self.optimizer(grads))
        if self.use_ema:  # after every update, applied or dropped, as the step loop always did
            finite = ops.depend(finite, self.ema())
        return finite


@dataclass(frozen=True)
class ChunkTotals:
    """What a run of steps (one sink call, or steps of the Python loop) added to the counters."""

    steps: int  # steps run (micro-batches under accumulation)
    loss_sum: float  # sum of the finite losses
    overflows: int  # steps whose gradients were not finite (their update was dropped when dropping)
    nonfinite_losses: int  # steps whose loss itself was NaN or infinite
    last_loss: float  # the last step's loss

    @property
    def finite_steps(self) -> int:
        return self.steps - self.nonfinite_losses


class StepCounters(nn.Cell):
    """On-device sums over the steps since the last :meth:`read` (shared by the step cells of a run)."""

    def __init__(self) -> None:
        super().__init__(auto_prefix=False)
        self.loss_sum = Parameter(Tensor(0.0, ms.float32), name="_counter_loss_sum", requires_grad=False)
        self.steps = Parameter(Tensor(0, ms.int32), name="_counter_steps", requires_grad=False)
        self.overflows = Parameter(Tensor(0, ms.int32), name="_counter_overflows", requires_grad=False)
        self.nonfinite = Parameter(Tensor(0, ms.int32), name="_counter_nonfinite", requires_grad=False)
        self.last_loss = Parameter(Tensor(0.0, ms.float32), name="_counter_last_loss", requires_grad=False)

    def add(self, loss, finite):
        loss = ops.cast(loss, ms.float32)
        loss_ok = ops.isfinite(loss)
        one = ops.ones((), ms.int32)
        zero = ops.zeros((), ms.int32)
        out = ops.assign_add(self.loss_sum, ops.select(loss_ok, loss, ops.zeros_like(loss)))
        out = ops.depend(out, ops.assign_add(self.steps, one))
        out = ops.depend(out, ops.assign_add(self.overflows, ops.select(finite, zero, one)))
        out = ops.depend(out, ops.assign_add(self.nonfinite, ops.select(loss_ok, zero, one)))
        return ops.depend(out, ops.assign(self.last_loss, loss))

    def read(self, reset: bool = True) -> ChunkTotals:
        """The sums since the last reset (then zeroed, unless ``reset=False``)."""
        totals = ChunkTotals(
            steps=int(self.steps.asnumpy()),
            loss_sum=float(self.loss_sum.asnumpy()),
            overflows=int(self.overflows.asnumpy()),
            nonfinite_losses=int(self.nonfinite.asnumpy()),
            last_loss=float(self.last_loss.asnumpy()),
        )
        if reset:
            for p in (self.loss_sum, self.last_loss):
                p.set_data(Tensor(0.0, ms.float32))
            for p in (self.steps, self.overflows, self.nonfinite):
                p.set_data(Tensor(0, ms.int32))
        return totals


class AccountedStep(nn.Cell):
    """``step`` (a :class:`TrainStep`) whose every call adds to ``counters``; returns what the step returns."""

    def __init__(self, step: TrainStep, counters: StepCounters) -> None:
        super().__init__(auto_prefix=False)
        self.step = step
        self.counters = counters

    def construct(self, images, labels):
        loss, finite = self.step(images, labels)
        loss = ops.depend(loss, self.counters.add(loss, finite))
        return loss, finite
