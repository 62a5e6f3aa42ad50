"""Memory of a training run across epochs: peak, and whether the resident set grows.

Runs visionzoo's real trainer (``Trainer.fit``: data pipeline, train step, validation every epoch,
checkpoint every epoch with rotation, metrics log) on generated CIFAR-style 32x32 data in a temporary
folder, then prints what the trainer recorded per epoch in ``metrics.jsonl``: ``rss_mb`` (resident
MiB at the end of the epoch) and ``peak_rss_mb`` (the process's high-water mark).

Epoch 1 includes graph compilation and the first allocations of every buffer; growth is measured from
the end of epoch 2 to the end of the last epoch, and over the second half of the run alone (a leak of a
fixed amount per step or epoch keeps a steady slope there; caches and allocator arenas filling up in the
first epochs do not).

Usage: ``PYTHONPATH=src python benchmarks/bench_memory.py [--model vgg11_bn_cifar] [--epochs 8]
[--batch 64] [--samples 512]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile

import visionzoo  # noqa: F401  isort: skip  (CPU runtime defaults first)

import mindspore as ms

from visionzoo.config import load_config
from visionzoo.engine.trainer import Trainer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg11_bn_cifar")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--samples", type=int, default=512, help="training images per epoch (validation: half)")
    p.add_argument("--mode", type=int, default=0, help="MindSpore mode: 0 graph (default), 1 PyNative")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vz_bench_memory_") as tmp:
        cfg = load_config(
            None,
            {
                "model": args.model,
                "dataset": "synthetic",
                "num_samples": str(args.samples),
                "num_classes": "10",
                "image_resize": "32",
                "batch_size": str(args.batch),
                "epoch_size": str(args.epochs),
                "scheduler": "cosine_decay",
                "warmup_epochs": "1",
                "lr": "0.01",
                "weight_decay": "5e-4",
                "num_parallel_workers": "1",
                "device_target": "CPU",
                "mode": str(args.mode),
                "val_while_train": "True",
                "val_interval": "1",
                "keep_checkpoint_max": "2",
                "crop_padding": "4",
                "hflip": "0.5",
                "log_interval": "100000",
                "ckpt_save_dir": os.path.join(tmp, "run"),
            },
        )
        Trainer(cfg).fit()
        with open(os.path.join(cfg.ckpt_save_dir, "metrics.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]

    print(
        f"# {args.model}, batch {args.batch}, {args.samples} training images per epoch, validation every epoch,"
        f" checkpoint every epoch; MindSpore {ms.__version__}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print("| epoch | rss_mb | peak_rss_mb | train_loss | epoch s |")
    print("|---|---|---|---|---|")
    for r in records:
        print(
            f"| {r['epoch']} | {r['rss_mb']:.1f} | {r['peak_rss_mb']:.1f} | {r['train_loss']:.4f} | "
            f"{r['epoch_seconds']:.1f} |"
        )
    if len(records) >= 3:
        first, last = records[1], records[-1]
        growth = last["rss_mb"] - first["rss_mb"]
        per_epoch = growth / (last["epoch"] - first["epoch"])
        print(
            f"\nresident growth from the end of epoch {first['epoch']} to epoch {last['epoch']}: {growth:+.1f} MiB "
            f"({per_epoch:+.2f} MiB/epoch); peak {max(r['peak_rss_mb'] for r in records):.1f} MiB"
        )
        # the first epochs fill caches and allocator arenas; a leak keeps its slope in the second half too
        half = records[len(records) // 2]
        if last["epoch"] > half["epoch"]:
            late = last["rss_mb"] - half["rss_mb"]
            print(
                f"second half, epoch {half['epoch']} to {last['epoch']}: {late:+.1f} MiB "
                f"({late / (last['epoch'] - half['epoch']):+.3f} MiB/epoch)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
