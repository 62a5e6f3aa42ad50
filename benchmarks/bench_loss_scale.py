"""O2 with a dynamic loss scale against O0: the same accuracy on the digits demo data.

Trains one small conv-BN net (defined here, ~7k parameters, 16x16 inputs) on scikit-learn's
handwritten digits twice with the same seed: ``amp_level O0`` (no loss scale) and ``amp_level O2``
with a dynamic loss scale starting at 2^20, which overflows float16 gradients in the first steps
and walks down. Prints one line per run (top-1 on the 359 held-out digits, skipped steps, final
loss scale) and the difference in points (the claim: within 2).

Usage: ``PYTHONPATH=src python benchmarks/bench_loss_scale.py [--epochs 8] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import visionzoo  # noqa: F401  isort: skip  (CPU runtime defaults first)

from mindspore import nn

from visionzoo import is_model, register_model
from visionzoo.config import load_config
from visionzoo.engine.trainer import Trainer


class SmallNet(nn.Cell):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, **_):
        super().__init__()
        layers = []
        for cin, cout in ((in_channels, 16), (16, 32)):
            layers += [
                nn.Conv2d(cin, cout, 3, pad_mode="same", has_bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.MaxPool2d(2, 2),
            ]
        self.features = nn.SequentialCell(*layers)
        self.classifier = nn.Dense(32, num_classes)

    def construct(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not is_model("bench_small_net"):
        register_model(lambda pretrained=False, **kw: SmallNet(**kw), name="bench_small_net")
    out = args.out or tempfile.mkdtemp(prefix="bench_loss_scale_")
    base = {
        "model": "bench_small_net",
        "dataset": "digits",
        "num_classes": "10",
        "image_resize": "16",
        "batch_size": "32",
        "num_parallel_workers": "1",
        "scheduler": "cosine_decay",
        "lr": "0.2",
        "min_lr": "0.0",
        "warmup_epochs": "1",
        "decay_epochs": str(args.epochs - 1),
        "epoch_size": str(args.epochs),
        "weight_decay": "1e-4",
        "device_target": "CPU",
        "seed": "7",
        "log_interval": "100000",
        "val_while_train": "True",
        "val_interval": str(args.epochs),
    }
    runs = {
        "O0": {"amp_level": "O0", "loss_scale_type": "none"},
        "O2 dynamic 2^20": {"amp_level": "O2", "loss_scale_type": "dynamic", "loss_scale": str(2.0**20)},
    }
    top1 = {}
    for name, extra in runs.items():
        cfg = load_config(None, dict(base, ckpt_save_dir=os.path.join(out, name.split()[0]), **extra))
        Trainer(cfg).fit()
        with open(os.path.join(cfg.ckpt_save_dir, "metrics.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        top1[name] = records[-1]["val_top1"]
        print(
            f"{name}: top-1 {100 * top1[name]:.2f}%, skipped steps per epoch {[r['skipped_steps'] for r in records]}, "
            f"final loss scale {records[-1]['loss_scale']:g}, final train loss {records[-1]['train_loss']:.4f}",
            flush=True,
        )
    diff = 100 * (top1["O2 dynamic 2^20"] - top1["O0"])
    print(f"O2 - O0: {diff:+.2f} points ({'within' if abs(diff) <= 2 else 'NOT within'} 2)")


if __name__ == "__main__":
    main()
