"""Images per second of the data pipeline alone (no model), on generated data.

Cases: CIFAR-style training at 32x32 (and upscaled to 224 as the model-zoo recipes do) from generated
CIFAR-10 binaries, and ImageNet-style training/eval from generated JPEG folders; each with 1 and 2 map
workers. The one-worker rule of :func:`visionzoo.data.loader.choose_workers` for in-memory sources
on small machines is switched off here (``IN_MEMORY_ONE_WORKER_CPUS = 0``) so both worker counts are
really measured.

Usage: ``PYTHONPATH=src python benchmarks/bench_pipeline.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import visionzoo  # noqa: F401  isort: skip  (CPU runtime defaults first)

import numpy as np

from visionzoo.config import Config
from visionzoo.data import build_dataset, loader

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import data_utils as du  # noqa: E402


def _write_jpeg_folder(root: str, classes: int, per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = os.path.join(root, "train", f"c{c:03d}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            # smooth random image, ImageNet-like size, so JPEG decode cost is realistic
            small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((500, 375), Image.BILINEAR).save(os.path.join(folder, f"{i}.jpg"), quality=90)
    os.symlink(os.path.join(root, "train"), os.path.join(root, "val"))


def _throughput(cfg: Config, split: str, epochs: int) -> float:
    bundle = build_dataset(cfg, split)
    it = bundle.dataset.create_tuple_iterator(output_numpy=True, num_epochs=epochs + 1)
    for _ in it:  # warm-up epoch: thread start-up, first allocations
        pass
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for image, _label in it:
            seen += image.shape[0]
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, one timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the median is reported")
    args = parser.parse_args(argv)
    loader.IN_MEMORY_ONE_WORKER_CPUS = 0  # measure every worker count as asked
    cifar_n = 2560 if args.quick else 10240
    epochs = 1 if args.quick else 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        per = cifar_n // 5
        du.write_cifar10(os.path.join(tmp, "cifar"), per_file=(per,) * 5, n_test=16)
        _write_jpeg_folder(os.path.join(tmp, "folder"), classes=4, per_class=64 if args.quick else 128)
        cases = [
            (
                "CIFAR train 32x32",
                dict(dataset="cifar10", data_dir=os.path.join(tmp, "cifar"), num_classes=10, image_resize=32),
                "train",
            ),
            (
                "CIFAR train 32->224",
                dict(
                    dataset="cifar10",
                    data_dir=os.path.join(tmp, "cifar"),
                    num_classes=10,
                    image_resize=224,
                    num_samples=cifar_n // 4,
                ),
                "train",
            ),
            (
                "folder train 500x375 JPEG->224",
                dict(dataset="imagenet", data_dir=os.path.join(tmp, "folder"), num_classes=4, image_resize=224),
                "train",
            ),
            (
                "folder eval 500x375 JPEG->224",
                dict(dataset="imagenet", data_dir=os.path.join(tmp, "folder"), num_classes=4, image_resize=224),
                "val",
            ),
        ]
        for name, kw, split in cases:
            for workers in (1, 2):
                cfg = Config(batch_size=128, eval_batch_size=128, num_parallel_workers=workers, seed=0, **kw)
                rates = sorted(_throughput(cfg, split, epochs) for _ in range(args.repeats))
                rows.append((name, workers, rates[len(rates) // 2], rates[0], rates[-1]))
                print(f"  {name:32s} workers={workers}: {rates}", file=sys.stderr, flush=True)
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"date {time.strftime('%Y-%m-%d', time.gmtime())}; batch 128; median of {args.repeats} runs"
    )
    print("| pipeline | workers | images/s (median) | min - max |")
    print("|---|---|---|---|")
    for name, workers, rate, low, high in rows:
        print(f"| {name} | {workers} | {rate:,.0f} | {low:,.0f} - {high:,.0f} |")


if __name__ == "__main__":
    main()
