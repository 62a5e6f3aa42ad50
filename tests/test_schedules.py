"""Learning-rate schedules against their formulas, computed independently per update."""

import math

import numpy as np
import pytest

from visionzoo.config import load_config
from visionzoo.engine.schedules import build_lr_schedule


def cfg(**kw):
    return load_config(None, {k: str(v) for k, v in kw.items()})


def test_constant_with_warmup():
    c = cfg(scheduler="constant", lr=0.2, warmup_epochs=1, warmup_factor=0.0, epoch_size=3)
    lr = build_lr_schedule(c, updates_per_epoch=4)
    assert lr.dtype == np.float32 and lr.shape == (12,)
    np.testing.assert_allclose(lr[:4], [0.0, 0.05, 0.1, 0.15], rtol=1e-6)
    np.testing.assert_allclose(lr[4:], 0.2, rtol=1e-6)


def test_cosine_matches_mindcv_formula():
    c = cfg(
        scheduler="cosine_decay",
        lr=0.1,
        min_lr=0.001,
        warmup_epochs=2,
        decay_epochs=8,
        epoch_size=10,
        warmup_factor=0.01,
    )
    upe = 5
    lr = build_lr_schedule(c, updates_per_epoch=upe)
    for u in range(50):
        if u < 10:
            want = 0.1 * (0.01 + 0.99 * u / 10)
        else:
            t = u / upe - 2
            want = 0.001 + (0.1 - 0.001) * 0.5 * (1 + math.cos(math.pi * t / 8))
        assert lr[u] == pytest.approx(want, rel=1e-5), u


def test_cosine_epoch_stair_holds_lr_within_an_epoch():
    c = cfg(
        scheduler="cosine_decay", lr=1.0, min_lr=0.0, warmup_epochs=0, decay_epochs=4, epoch_size=4, lr_epoch_stair=True
    )
    lr = build_lr_schedule(c, updates_per_epoch=3)
    for e in range(4):
        assert len(set(lr[3 * e : 3 * e + 3].tolist())) == 1
        assert lr[3 * e] == pytest.approx(0.5 * (1 + math.cos(math.pi * e / 4)), rel=1e-6)


def test_step_and_multistep():
    c = cfg(scheduler="step_decay", lr=1.0, decay_rate=0.5, decay_epochs=2, warmup_epochs=0, epoch_size=6)
    lr = build_lr_schedule(c, updates_per_epoch=2)
    np.testing.assert_allclose(lr, [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25])
    c = cfg(
        scheduler="multi_step_decay",
        lr=1.0,
        decay_rate=0.1,
        multi_step_decay_milestones="1,3",
        warmup_epochs=0,
        epoch_size=4,
    )
    lr = build_lr_schedule(c, updates_per_epoch=1)
    np.testing.assert_allclose(lr, [1, 0.1, 0.1, 0.01], rtol=1e-6)


def test_staged_decay_is_the_model_zoo_googlenet_schedule():
    # lr 0.1 until 30% of training, x0.1 until 60%, x0.01 until 80%, x0.001 after (T = total steps)
    c = cfg(scheduler="staged_decay", lr=0.1, warmup_epochs=0, epoch_size=10)
    lr = build_lr_schedule(c, updates_per_epoch=10)
    T = 100
    for i in range(T):
        want = 0.1 if i < 0.3 * T else 0.01 if i < 0.6 * T else 0.001 if i < 0.8 * T else 0.0001
        assert lr[i] == pytest.approx(want, rel=1e-5), i


def test_polynomial_is_the_model_zoo_vgg16_schedule():
    # linear 0.01 -> 0.1 over 5 epochs, then 0.1 * (1 - progress)^2
    c = cfg(
        scheduler="polynomial_decay", lr=0.1, min_lr=0.0, lr_power=2, warmup_epochs=5, warmup_factor=0.1, epoch_size=70
    )
    upe = 3
    lr = build_lr_schedule(c, updates_per_epoch=upe)
    W, T = 5 * upe, 70 * upe
    for i in range(T):
        want = 0.01 + (0.1 - 0.01) * i / W if i < W else 0.1 * (1 - (i - W) / (T - W)) ** 2
        assert lr[i] == pytest.approx(want, rel=1e-5, abs=1e-9), i
    assert lr[W] == pytest.approx(0.1)


def test_override_base_lr_scales_everything():
    c = cfg(scheduler="cosine_decay", lr=0.1, min_lr=0.0, warmup_epochs=0, decay_epochs=2, epoch_size=2)
    a = build_lr_schedule(c, 4)
    b = build_lr_schedule(c, 4, lr=0.8)
    np.testing.assert_allclose(b, a * 8, rtol=1e-6)
