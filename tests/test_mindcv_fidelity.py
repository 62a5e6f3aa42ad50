"""visionzoo against the installed mindcv package's own factories, stage by stage (issue #15).

Each test is one row of docs/mindcv.md: the same recipe and seed give the same initial weights, the
same first training batch (order, crops, colour jitter), the same eval tensors, the same LR at every
step, the same weight-decay groups, and the same loss and weights after optimizer steps.
"""

from __future__ import annotations

import os

import mindcv  # noqa: F401,E402  a dependency of visionzoo: its absence is a failure, not a skip
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import tiny_model  # noqa: F401  registers vz_tiny_test
from visionzoo import runtime
from visionzoo.config import Config, load_config
from visionzoo.engine.build import build_network
from visionzoo.engine.optim import build_optimizer
from visionzoo.engine.schedules import build_lr_schedule

MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def _folder(root, n_per_class=6, classes=4, size=32):
    """A small ImageFolder of random RGB PNGs (train and val alike)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = os.path.join(root, split, f"c{c}")
            os.makedirs(d, exist_ok=True)
            for i in range(n_per_class):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(d, f"{i}.png"))
    return str(root)


def _recipe(data_dir, **kw):
    values = dict(
        dataset="imagenet",
        data_dir=data_dir,
        num_parallel_workers=2,
        batch_size=8,
        image_resize=32,
        scale=(0.8, 1.0),
        ratio=(0.9, 1.1),
        hflip=0.0,
        crop_pct=1.0,
        model="googlenet",
        num_classes=4,
        epoch_size=2,
        lr=0.01,
        min_lr=0.0,
        warmup_epochs=0,
        decay_epochs=2,
        weight_decay=1e-4,
        device_target="CPU",
    )
    values.update(kw)
    return load_config(None, values)


def _mindcv_batches(cfg, split, epochs=1):
    from mindcv.data import create_dataset, create_loader, create_transforms
    from mindcv.utils import set_seed

    set_seed(cfg.seed)
    train = split == "train"
    d = create_dataset(
        name="imagenet",
        root=cfg.data_dir,
        split=split,
        shuffle=bool(cfg.shuffle) if train else False,
        num_parallel_workers=2,
    )
    if train:
        t = create_transforms(
            dataset_name="imagenet",
            is_training=True,
            image_resize=cfg.image_resize,
            scale=cfg.scale,
            ratio=cfg.ratio,
            hflip=cfg.hflip,
            vflip=cfg.vflip,
            color_jitter=cfg.color_jitter,
            interpolation=cfg.interpolation,
            mean=MEAN,
            std=STD,
            re_prob=cfg.re_prob,
            re_value=int(cfg.re_value) if cfg.re_value != "random" else "random",
        )
    else:
        t = create_transforms(
            dataset_name="imagenet",
            is_training=False,
            image_resize=cfg.image_resize,
            crop_pct=cfg.crop_pct,
            interpolation=cfg.interpolation,
            mean=MEAN,
            std=STD,
        )
    loader = create_loader(
        dataset=d,
        batch_size=cfg.batch_size,
        drop_remainder=train,
        is_training=train,
        num_classes=cfg.num_classes,
        transform=t,
        num_parallel_workers=2,
    )
    it = loader.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    return [[b for b in it] for _ in range(epochs)]


def _visionzoo_batches(cfg, split, epoch=0):
    from visionzoo.data import build_dataset

    bundle = build_dataset(cfg, split)
    if bundle.sampler is not None:
        bundle.set_epoch(epoch)
    return list(bundle.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))


def test_initial_weights_equal_mindcv_for_the_same_seed():
    """MindCV builds with MindSpore's defaults, then re-draws; visionzoo replays that sequence."""
    from mindcv.models import create_model
    from mindcv.utils import set_seed

    cfg = Config(model="googlenet", num_classes=10, seed=7)
    set_seed(7)
    ref = {p.name: p.asnumpy() for p in create_model("googlenet", num_classes=10).get_parameters()}
    ms.set_seed(123)  # whatever ran before: build_network reseeds with cfg.seed
    ours = {p.name: p.asnumpy() for p in build_network(cfg).get_parameters()}
    assert ours.keys() == ref.keys()
    for name in ref:
        np.testing.assert_array_equal(ours[name], ref[name], err_msg=name)


def test_first_training_batches_equal_mindcv_pipeline(tmp_path, monkeypatch):
    """With MindSpore's image ops (``VISIONZOO_FAST_DECODE=0``): same files, same order (MindSpore's
    RandomSampler), same crops and jitter: pixels within 1/255. (The fused kernels draw the same
    distributions from numpy generators: tests/test_jpeg_train.py.)"""
    monkeypatch.setenv(runtime.FAST_DECODE_ENV, "0")
    cfg = _recipe(_folder(tmp_path))
    ref = _mindcv_batches(cfg, "train")[0]
    ours = _visionzoo_batches(cfg, "train")
    assert len(ours) == len(ref) == 3
    tol = 1.0 / 255 / min(s / 255 for s in STD)  # one grey level, in normalised units
    for (x, y), (rx, ry) in zip(ours, ref):
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_allclose(x, rx, atol=tol, rtol=0)


def test_epoch_order_equals_mindcv_in_later_epochs(tmp_path):
    """Epoch 2's sample order is MindCV's epoch 2 order (labels, read without augmentation effects)."""
    cfg = _recipe(_folder(tmp_path), color_jitter=0.0)
    ref = _mindcv_batches(cfg, "train", epochs=2)[1]
    ours = _visionzoo_batches(cfg, "train", epoch=1)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ours]), np.concatenate([b[1] for b in ref]))


def test_eval_tensors_equal_mindcv(tmp_path):
    cfg = _recipe(_folder(tmp_path, size=40), crop_pct=0.875)
    ref = _mindcv_batches(cfg, "val")[0]
    ours = _visionzoo_batches(cfg, "val")
    for (x, y), (rx, ry) in zip(ours, ref):
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_allclose(x, rx, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "scheduler",
    [
        "constant",
        "cosine_decay",
        "warmup_cosine_decay",
        "step_decay",
        "multi_step_decay",
        "exponential_decay",
        "polynomial_decay",
    ],
)
@pytest.mark.parametrize("warmup,stair,factor", [(0, False, 0.0), (2, False, 0.0), (2, True, 0.1)])
def test_lr_table_equals_mindcv(scheduler, warmup, stair, factor):
    from mindcv.scheduler import create_scheduler

    spe = 7
    cfg = Config(
        scheduler=scheduler,
        lr=0.1,
        min_lr=1e-4,
        warmup_epochs=warmup,
        warmup_factor=factor,
        decay_epochs=3,
        decay_rate=0.5,
        multi_step_decay_milestones=(2, 4),
        epoch_size=8,
        lr_epoch_stair=stair,
    )
    ref = create_scheduler(
        spe,
        scheduler=scheduler,
        lr=0.1,
        min_lr=1e-4,
        warmup_epochs=warmup,
        warmup_factor=factor,
        decay_epochs=3,
        decay_rate=0.5,
        milestones=[2, 4],
        num_epochs=8,
        lr_epoch_stair=stair,
    )
    np.testing.assert_allclose(build_lr_schedule(cfg, spe), np.asarray(ref, np.float32), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("flt", ["disable", "auto", "norm_and_bias"])
def test_weight_decay_groups_equal_mindcv(flt):
    from mindcv.optim import create_optimizer

    ms.set_seed(0)
    net = build_network(Config(model="vz_tiny_test", num_classes=10))  # conv, BatchNorm, dense with bias
    cfg = Config(opt="momentum", weight_decay=1e-4, weight_decay_filter=flt)
    ours = build_optimizer(cfg, net, np.full(3, 0.1, np.float32))
    ref = create_optimizer(net, opt="momentum", lr=[0.1] * 3, weight_decay=1e-4, momentum=0.9, weight_decay_filter=flt)

    def decays(opt):
        if opt.is_group:
            return {p.name: float(w.asnumpy()) for p, w in zip(opt.parameters, opt.weight_decay)}
        wd = float(opt.weight_decay.asnumpy())  # one value; MindSpore's default filter gives the flags
        return {p.name: wd if flag else 0.0 for p, flag in zip(opt.parameters, opt.decay_flags)}

    ours, ref = decays(ours), decays(ref)
    assert ours == pytest.approx(ref)
    exempt = {n for n, w in ours.items() if w == 0.0}
    assert any(n.endswith("bias") for n in exempt) == (flt == "norm_and_bias")
    assert any(n.endswith("gamma") for n in exempt) == (flt != "disable")


def test_loss_and_optimizer_steps_equal_mindcv():
    """Same weights, same batch: MindCV's loss + optimizer + TrainOneStepCell vs visionzoo's step."""
    from mindcv.loss import create_loss
    from mindcv.optim import create_optimizer

    from visionzoo.engine.loss import NetWithLoss, build_loss
    from visionzoo.engine.train_step import LossScaleState, TrainStep

    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = Config(
        model="vz_tiny_test", num_classes=10, weight_decay=1e-4, label_smoothing=0.1, weight_decay_filter="auto"
    )
    lr = np.asarray([0.01, 0.005, 0.002], np.float32)
    ours = build_network(cfg)
    ref = build_network(cfg)  # the same network class: what differs is loss, optimizer and step
    ms.load_param_into_net(ref, {p.name: ms.Parameter(p.asnumpy().copy(), name=p.name) for p in ours.get_parameters()})
    ref_step = nn.TrainOneStepCell(
        nn.WithLossCell(ref, create_loss(name="CE", label_smoothing=0.1)),
        create_optimizer(ref, opt="momentum", lr=list(lr), weight_decay=1e-4, momentum=0.9, weight_decay_filter="auto"),
    )
    step = TrainStep(NetWithLoss(ours, build_loss(cfg)), build_optimizer(cfg, ours, lr), LossScaleState(1.0, False))
    ref_step.set_train(True)
    step.set_train(True)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = ms.Tensor(rng.standard_normal((4, 3, 16, 16)).astype(np.float32))
        y = ms.Tensor(rng.integers(0, 10, 4).astype(np.int32))
        ref_loss = float(ref_step(x, y).asnumpy())
        loss, _ = step(x, y)
        assert float(loss.asnumpy()) == pytest.approx(ref_loss, rel=1e-5)
    ref_w = {p.name: p.asnumpy() for p in ref.trainable_params()}
    for p in ours.trainable_params():
        np.testing.assert_allclose(p.asnumpy(), ref_w[p.name], rtol=1e-4, atol=1e-6, err_msg=p.name)
