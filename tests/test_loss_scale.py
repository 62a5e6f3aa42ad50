"""Loss scaling and overflow handling on the CPU, through the real train step (graph and PyNative).

A one-parameter-vector "network" makes the gradient exactly the input: ``loss = sum(w * x)``, so
``dloss/dw = x``. Feeding ``x = 1e37`` keeps the loss finite (4e36) while the scaled gradient
``x * scale`` overflows float32 once the scale exceeds ~34; ``x = 1`` is a clean step.
"""

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from visionzoo.engine.accounting import MAX_NONFINITE_LOSSES, EpochAccount
from visionzoo.engine.train_step import AccountedStep, ChunkTotals, LossScaleState, StepCounters, TrainStep

CLEAN = np.ones((2, 4), np.float32)
OVERFLOW = np.full((2, 4), 1e37, np.float32)


class Linear(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.full((4,), 0.1, np.float32)), name="w")

    def construct(self, images, labels):
        return (self.w * images).sum() / 2.0


def make_step(init_scale, dynamic, drop, window=2):
    net = Linear()
    opt = nn.SGD(net.trainable_params(), learning_rate=0.1)
    state = LossScaleState(init_scale, dynamic, scale_window=window)
    step = TrainStep(net, opt, state, drop_overflow=drop)  # a dynamic scale checks and drops whatever drop says
    counters = StepCounters()
    accounted = AccountedStep(step, counters)
    accounted.set_train(True)
    return net, opt, state, accounted, counters


def run(accounted, x):
    loss, finite = accounted(Tensor(x), Tensor(np.zeros(2, np.int32)))
    return float(loss.asnumpy()), bool(finite.asnumpy())


def test_all_finite_detects_inf_on_this_device():
    assert not bool(ms.amp.all_finite((Tensor([1.0, np.inf]), Tensor([2.0]))).asnumpy())
    assert bool(ms.amp.all_finite((Tensor([1.0, 3.0]), Tensor([2.0]))).asnumpy())


def test_dynamic_scale_halves_skips_and_grows(mode):
    # drop_overflow False: a dynamic scale must see overflows, so it checks and drops anyway (one argument)
    net, opt, state, step, counters = make_step(1024.0, dynamic=True, drop=False, window=2)
    w0 = net.w.asnumpy().copy()
    loss, finite = run(step, OVERFLOW)
    assert np.isfinite(loss) and not finite
    assert float(state.scale.asnumpy()) == 512.0  # halved
    np.testing.assert_array_equal(net.w.asnumpy(), w0)  # the optimizer was skipped
    assert int(opt.global_step.asnumpy().reshape(-1)[0]) == 0  # so the LR position did not move
    assert int(state.good_steps.asnumpy()) == 0

    loss, finite = run(step, CLEAN)
    assert finite
    np.testing.assert_allclose(net.w.asnumpy(), w0 - 0.1 * 1.0, rtol=1e-6)  # gradient x = 1, unscaled
    assert (float(state.scale.asnumpy()), int(state.good_steps.asnumpy())) == (512.0, 1)
    run(step, CLEAN)  # scale_window (2) clean steps: the scale doubles and the count restarts
    assert (float(state.scale.asnumpy()), int(state.good_steps.asnumpy())) == (1024.0, 0)

    run(step, CLEAN)
    run(step, OVERFLOW)  # an overflow resets the clean-step count
    assert (float(state.scale.asnumpy()), int(state.good_steps.asnumpy())) == (512.0, 0)
    totals = counters.read()
    assert (totals.steps, totals.overflows, totals.nonfinite_losses) == (5, 2, 0)
    assert counters.read().steps == 0  # read resets


def test_dynamic_scale_never_goes_below_one(mode):
    net, _, state, step, _ = make_step(2.0, dynamic=True, drop=False)
    for _ in range(3):
        run(step, np.full((2, 4), np.inf, np.float32))
    assert float(state.scale.asnumpy()) == 1.0


def test_fixed_scale_with_drop_skips_the_update_and_keeps_the_scale(mode):
    net, opt, state, step, counters = make_step(1024.0, dynamic=False, drop=True)
    w0 = net.w.asnumpy().copy()
    _, finite = run(step, OVERFLOW)
    assert not finite
    np.testing.assert_array_equal(net.w.asnumpy(), w0)
    assert float(state.scale.asnumpy()) == 1024.0
    _, finite = run(step, CLEAN)
    assert finite
    np.testing.assert_allclose(net.w.asnumpy(), w0 - 0.1, rtol=1e-6)  # scaled by 1024 and unscaled exactly
    assert counters.read().overflows == 1


def test_fixed_scale_without_drop_applies_the_overflowed_update():
    # no overflow check: the update goes through and poisons the weights (the trainer then stops on the loss)
    net, _, _, step, _ = make_step(1024.0, dynamic=False, drop=False)
    _, finite = run(step, OVERFLOW)
    assert finite  # not checked
    assert not np.isfinite(net.w.asnumpy()).all()


def test_counters_sum_losses_and_flag_nonfinite_ones(mode):
    counters = StepCounters()

    class Add(nn.Cell):
        def __init__(self):
            super().__init__()
            self.counters = counters

        def construct(self, loss, finite):
            return self.counters.add(loss, finite)

    add = Add()
    for value, finite in ((1.5, True), (np.nan, False), (2.5, True), (np.inf, True)):
        add(Tensor(value, ms.float32), Tensor(finite))
    t = counters.read()
    assert (t.steps, t.overflows, t.nonfinite_losses, t.finite_steps) == (4, 1, 2, 2)
    assert t.loss_sum == 4.0 and t.last_loss == np.inf


def chunk(losses, overflow=()):
    finite = [x for x in losses if np.isfinite(x)]
    return ChunkTotals(
        steps=len(losses),
        loss_sum=float(sum(finite)),
        overflows=len(overflow),
        nonfinite_losses=len(losses) - len(finite),
        last_loss=float(losses[-1]),
    )


def test_epoch_account_is_the_mean_over_steps_whatever_the_chunking():
    losses = [2.0, 1.5, 1.25, 1.0, 0.5, 0.25]
    one = EpochAccount(drop_overflow=False)
    for x in losses:
        assert one.add(chunk([x])) is None
    sink = EpochAccount(drop_overflow=False)
    assert sink.add(chunk(losses[:4])) is None and sink.add(chunk(losses[4:])) is None
    assert one.train_loss == sink.train_loss == pytest.approx(np.mean(losses))
    assert one.finish() is None and sink.finish() is None


def test_epoch_account_stops_on_a_nonfinite_loss_unless_dropping():
    assert "loss became nan" in EpochAccount(drop_overflow=False).add(chunk([np.nan]))
    assert "non-finite" in EpochAccount(drop_overflow=False).add(chunk([1.0, np.nan, 1.0]))  # inside a sink call
    dropping = EpochAccount(drop_overflow=True)
    assert dropping.add(chunk([1.0, np.nan, 2.0], overflow=[1])) is None
    assert dropping.skipped == 1 and dropping.train_loss == 1.5
    why = None
    for _ in range(MAX_NONFINITE_LOSSES):
        why = dropping.add(chunk([np.nan], overflow=[0]))
    assert why == f"{MAX_NONFINITE_LOSSES + 1} non-finite losses in this epoch"


def test_epoch_account_refuses_an_epoch_that_only_overflowed():
    account = EpochAccount(drop_overflow=True)
    assert account.add(chunk([1.0, 1.0], overflow=[0, 1])) is None
    assert account.finish() == "all 2 steps of the epoch overflowed"
