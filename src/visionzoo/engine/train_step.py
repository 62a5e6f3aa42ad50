"""One training step as a MindSpore cell: forward, backward, loss scaling, all-reduce, clipping, update.

Gradient accumulation uses two compiled cells that share gradient buffers: :class:`TrainStep` with
``accumulate_only=True`` adds the micro-batch gradients to the buffers, and the update step adds
the last micro-batch, applies the optimizer to the averaged buffers and zeroes them. The Python
loop chooses which to call, so no data-dependent control flow is compiled and the optimizer's
``global_step`` (hence the LR schedule) advances once per update.
"""
from __future__ import annotations

from typing import Optional

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.context import ParallelMode

from ..checkpoint import records

__all__ = ["TrainStep", "LossScaleState"]

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
        check_overflow: compute gradient finiteness (dynamic scaling or ``drop_overflow_update``);
            not available on CPU, where the config refuses it.
        drop_overflow: skip the optimizer update when gradients are not finite.
        clip_value: clip by global norm when given.
        accum_buffers: gradient buffers (a ParameterTuple) for gradient accumulation, or None.
        accum_steps: micro-batches per update.
        accumulate_only: this cell only adds gradients to the buffers (no update).
    """

    def __init__(self, net_with_loss: nn.Cell, optimizer: nn.Optimizer, scale_state: LossScaleState,
                 check_overflow: bool = False, drop_overflow: bool = False, clip_value: Optional[float] = None,
                 accum_buffers=None, accum_steps: int = 1, accumulate_only: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self.network = net_with_loss
        self.network.set_grad()
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.scale_state = scale_state
        self.scaled = scale_state.dynamic or float(scale_state.scale.asnumpy()) != 1.0
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()
        self.check_overflow = check_overflow
        self.dynamic = scale_state.dynamic
        self.drop_overflow = drop_overflow
        self.clip = clip_value is not None
        self.clip_value = float(clip_value or 0.0)
        self.accum = accum_buffers is not None
        self.accum_buffers = accum_buffers
        self.accum_factor = Tensor(1.0 / accum_steps, ms.float32)
        self.accumulate_only = accumulate_only
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
        if self.accum:
            # assign_add returns the updated buffers: the averaged gradients of all micro-batches so far
            grads = self.hyper_map(ops.partial(_accumulate, self.accum_factor), self.accum_buffers, grads)
            if self.accumulate_only:
                return ops.depend(loss, grads), ops.ones((), ms.bool_)
        if self.reduce:
            grads = self.reducer(grads)
        finite = ops.ones((), ms.bool_)
        if self.check_overflow:
            finite = ms.amp.all_finite(grads)
            if self.dynamic:
                loss = ops.depend(loss, self.scale_state.update(finite))
        if self.clip:
            grads = ops.clip_by_global_norm(grads, self.clip_value)
        if self.drop_overflow:
            if finite:
                loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, self.optimizer(grads))
        if self.accum:
            loss = ops.depend(loss, self.hyper_map(_zero, self.accum_buffers))
        return loss, finite
