"""Trainer overhead and data-pipeline cost per training step, side by side in one process.

Four ways to run the same training steps of one model (graph mode, float32, Momentum), interleaved
A B C D A B C D over several rounds; medians of the per-step wall time:

- ``bare``: ``nn.TrainOneStepCell(nn.WithLossCell(net, CE), Momentum)`` on one pre-made batch
  (what a hand-written MindSpore loop does);
- ``bare+visionzoo-optimizer``: the same bare loop with visionzoo's optimizer (decay groups by
  role, per-update LR table), to attribute any difference;
- ``visionzoo-step``: visionzoo's train step cell (the one the trainer compiles: loss scale
  state, per-update LR table, role-based weight decay groups) on the same pre-made batch;
- ``trainer+pipeline``: ``Trainer._train_epoch`` over the recipe's real data pipeline
  (in-memory CIFAR-style source: random crop with padding, flip, normalise, HWC->CHW, batch)
  on generated 32x32 data, so it includes the pipeline, the Python step loop, the loss read-back
  and the per-step checks.

``visionzoo-step / bare`` is the trainer's own overhead (target < 5%); ``trainer+pipeline /
visionzoo-step`` is what the data pipeline and the loop add (target < 10% for the CIFAR recipes).

Usage: ``PYTHONPATH=src python benchmarks/bench_trainer.py [--model vgg16_bn_cifar] [--batch 128]
[--steps 6] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import visionzoo  # noqa: F401  isort: skip  (CPU runtime defaults first)

import mindspore as ms
import numpy as np
from mindspore import nn

from visionzoo.config import load_config
from visionzoo.engine.trainer import Trainer


def _cfg(args):
    return load_config(
        None,
        {
            "model": args.model,
            "dataset": "synthetic",
            "num_samples": str(args.batch * args.steps),
            "num_classes": "10",
            "image_resize": "32",
            "batch_size": str(args.batch),
            "epoch_size": "1000",
            "scheduler": "constant",
            "warmup_epochs": "0",
            "lr": "0.01",
            "weight_decay": "5e-4",
            "weight_decay_filter": "norm_and_bias",
            "num_parallel_workers": "1",
            "device_target": "CPU",
            "loss_scale_type": "none",
            "crop_padding": "4",
            "hflip": "0.5",
            "log_interval": "100000",
            "ckpt_save_dir": "/tmp/vz_bench_trainer",
        },
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg16_bn_cifar")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant per round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    cfg = _cfg(args)
    trainer = Trainer(cfg).setup()
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((args.batch, 3, 32, 32), dtype=np.float32))
    labels = ms.Tensor(rng.integers(0, 10, args.batch).astype(np.int32))

    bare_net = visionzoo.create_model(args.model, num_classes=10)
    bare = nn.TrainOneStepCell(
        nn.WithLossCell(bare_net, nn.CrossEntropyLoss()),
        nn.Momentum(bare_net.trainable_params(), 0.01, 0.9, weight_decay=5e-4),
    )
    bare.set_train(True)
    # the same bare loop with visionzoo's optimizer (role-based decay groups, per-update LR table)
    from visionzoo.engine.optim import build_optimizer

    grp_net = visionzoo.create_model(args.model, num_classes=10)
    bare_groups = nn.TrainOneStepCell(
        nn.WithLossCell(grp_net, nn.CrossEntropyLoss()), build_optimizer(cfg, grp_net, trainer.lr)
    )
    bare_groups.set_train(True)

    def run_bare():
        for _ in range(args.steps):
            float(bare(images, labels).asnumpy())

    def run_bare_groups():
        for _ in range(args.steps):
            float(bare_groups(images, labels).asnumpy())

    def run_step():
        for _ in range(args.steps):
            loss, _ = trainer.train_step(images, labels)
            float(loss.asnumpy())

    epoch = [0]

    def run_trainer():
        epoch[0] += 1
        trainer._train_epoch(epoch[0])  # steps per epoch = num_samples / batch = args.steps

    variants = {
        "bare": run_bare,
        "bare+visionzoo-optimizer": run_bare_groups,
        "visionzoo-step": run_step,
        "trainer+pipeline": run_trainer,
    }
    for fn in variants.values():  # compile and warm up
        fn()
    times = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"# {args.model} batch {args.batch}, {args.steps} steps x {args.rounds} rounds, graph mode, "
        f"MindSpore {ms.__version__}, {platform.processor() or platform.machine()}"
    )
    print("| variant | s/step (median) | img/s | vs previous row |")
    print("|---|---|---|---|")
    prev = None
    for name in variants:
        ratio = f"{med[name] / med[prev]:.3f}x" if prev else "-"
        print(f"| {name} | {med[name]:.4f} | {args.batch / med[name]:.1f} | {ratio} |")
        prev = name
    print(f"trainer overhead (visionzoo-step / bare - 1): {100 * (med['visionzoo-step'] / med['bare'] - 1):+.1f}%")
    print(
        f"pipeline + loop (trainer+pipeline / visionzoo-step - 1): "
        f"{100 * (med['trainer+pipeline'] / med['visionzoo-step'] - 1):+.1f}%"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
