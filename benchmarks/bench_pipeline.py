"""Images per second of the input pipeline alone (no model): visionzoo's ``build_dataset`` against MindCV
0.3.0's ``create_dataset`` + ``create_transforms`` + ``create_loader``, side by side in one run.

Data (made here, no download): a folder of real photos (``tests/data_utils.write_photo_folder``:
500x375 JPEG quality-90 crops of scikit-learn's sample photos) and CIFAR-10 binaries (10,000 records
per file, as MindCV's reader insists on). Cases follow the recipes' augmentation:

* folder train: ``configs/googlenet/googlenet_imagenet_ascend.yaml`` (random resized crop 224, flip,
  colour jitter 0.4, normalise, CHW, batch 32) and ``configs/vgg/vgg16_bn_imagenet_ascend.yaml`` (the
  same without jitter); folder eval: the googlenet recipe's (resize 256, centre crop 224);
* CIFAR train 32x32 (``vgg16_bn_cifar_cifar10_cpu``: crop with padding 4, flip, batch 128), 32->224
  (``googlenet_bn_cifar10_ascend``), CIFAR eval 32x32.

Each case runs at 1 and 2 workers; within a repeat the contenders alternate, so both see the same
load. Reported per contender: images/s (wall clock) and images per CPU-second of the whole process
(``time.process_time``: every thread), the median over ``--repeats``. The one-worker rule of
:func:`visionzoo.data.loader.choose_workers` for in-memory sources is switched off, so both worker
counts are really measured.

Usage: ``flock /work/bench.lock env PYTHONPATH=src python benchmarks/bench_pipeline.py --json OUT.json``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List

import visionzoo  # noqa: F401  isort: skip  (CPU runtime defaults first)

import mindspore.dataset as ds

from visionzoo.config import load_config
from visionzoo.data import build_dataset, loader

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
import data_utils as du  # noqa: E402

CONFIGS = os.path.join(REPO, "configs")
FOLDER_CLASSES = 4


def _host() -> Dict[str, Any]:
    flags: List[str] = []
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = sorted(set(line.split(":", 1)[1].split()))
                    break
    except OSError:
        pass
    isa = [f for f in flags if f.startswith(("avx", "sse4", "fma", "amx"))]
    isa_class = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return {"cpu": model, "isa_class": isa_class, "isa_flags": isa, "cpus": os.cpu_count()}


def _versions() -> Dict[str, str]:
    import mindcv
    import mindspore
    import numpy
    import PIL

    try:
        commit = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "python": platform.python_version(),
        "mindspore": mindspore.__version__,
        "mindcv": mindcv.__version__,
        "pillow": PIL.__version__,
        "numpy": numpy.__version__,
        "visionzoo_commit": commit,
    }


def _batches(dataset: Any) -> Iterator[Any]:
    """Batches of ``dataset`` over as many epochs as asked for."""
    it = dataset.create_tuple_iterator(output_numpy=True, num_epochs=-1)
    while True:
        yield from it


def _measure(dataset: Any, warmup: int, images: int) -> Dict[str, float]:
    """(wall images/s, images per CPU-second) over ``images`` after ``warmup`` images."""
    batches = _batches(dataset)
    seen = 0
    while seen < warmup:  # thread start-up, first allocations, file cache
        seen += next(batches)[0].shape[0]
    seen, wall, cpu = 0, time.perf_counter(), time.process_time()
    while seen < images:
        seen += next(batches)[0].shape[0]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": seen / wall, "cpu": seen / cpu}


def _visionzoo(recipe: str, split: str, workers: int, **overrides: Any) -> Callable[[], Any]:
    def make() -> Any:
        cfg = load_config(os.path.join(CONFIGS, recipe), {"num_parallel_workers": workers, **overrides})
        return build_dataset(cfg, split).dataset

    return make


def _mindcv(recipe: str, split: str, workers: int, root: str, **overrides: Any) -> Callable[[], Any]:
    """MindCV 0.3.0's three calls with the recipe's keys, as its train.py/validate.py make them."""

    def make() -> Any:
        from mindcv.data import create_dataset, create_loader, create_transforms

        cfg = load_config(os.path.join(CONFIGS, recipe), {"num_parallel_workers": workers, **overrides})
        train = split == "train"
        ds.config.set_seed(int(cfg.seed))
        name = "cifar10" if cfg.dataset == "cifar10" else "imagenet"
        data = create_dataset(
            name=name,
            root=root,
            split=("train" if train else ("test" if name == "cifar10" else "val")),
            shuffle=train,
            num_parallel_workers=workers,
        )
        if name == "cifar10":
            transform = create_transforms("cifar10", image_resize=int(cfg.image_resize), is_training=train)
        elif train:
            transform = create_transforms(
                "imagenet",
                image_resize=int(cfg.image_resize),
                is_training=True,
                scale=tuple(cfg.scale),
                ratio=tuple(cfg.ratio),
                hflip=float(cfg.hflip),
                vflip=float(cfg.vflip),
                color_jitter=float(cfg.color_jitter) if cfg.color_jitter else None,
                interpolation=str(cfg.interpolation),
            )
        else:
            transform = create_transforms(
                "imagenet",
                image_resize=int(cfg.image_resize),
                is_training=False,
                crop_pct=float(cfg.crop_pct),
                interpolation=str(cfg.interpolation),
            )
        return create_loader(
            data,
            batch_size=int(cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size)),
            drop_remainder=bool(cfg.drop_remainder) if train else False,
            is_training=train,
            transform=transform,
            num_parallel_workers=workers,
            num_classes=int(cfg.num_classes),
        )

    return make


def _cases(tmp: str, quick: bool) -> List[Dict[str, Any]]:
    photos = os.path.join(tmp, "photos")
    du.write_photo_folder(photos, "train", classes=FOLDER_CLASSES, per_class=64 if quick else 128)
    os.symlink(os.path.join(photos, "train"), os.path.join(photos, "val"))
    cifar = os.path.join(tmp, "cifar")
    du.write_cifar10(cifar, per_file=(10000,) * 5, n_test=10000)
    cifar_bin = os.path.join(cifar, du.CIFAR10_FOLDER)
    folder = dict(data_dir=photos, num_classes=FOLDER_CLASSES, distribute=False, device_target="CPU")
    cifar_kw = dict(data_dir=cifar, distribute=False, device_target="CPU")
    n_folder = 256 if quick else 1024
    return [
        dict(name="folder train, googlenet ImageNet recipe", recipe="googlenet/googlenet_imagenet_ascend.yaml",
             split="train", root=photos, kw=folder, images=n_folder),
        dict(name="folder train, vgg16_bn ImageNet recipe", recipe="vgg/vgg16_bn_imagenet_ascend.yaml",
             split="train", root=photos, kw=folder, images=n_folder),
        dict(name="folder eval, googlenet ImageNet recipe", recipe="googlenet/googlenet_imagenet_ascend.yaml",
             split="val", root=photos, kw=folder, images=n_folder),
        dict(name="CIFAR-10 train 32x32, vgg16_bn_cifar CPU recipe", recipe="vgg/vgg16_bn_cifar_cifar10_cpu.yaml",
             split="train", root=cifar_bin, kw=cifar_kw, images=6400 if quick else 25600),
        dict(name="CIFAR-10 train 32->224, googlenet_bn CIFAR-10 recipe",
             recipe="googlenet/googlenet_bn_cifar10_ascend.yaml", split="train", root=cifar_bin, kw=cifar_kw,
             images=640 if quick else 2560),
        dict(name="CIFAR-10 eval 32x32, vgg16_bn_cifar CPU recipe", recipe="vgg/vgg16_bn_cifar_cifar10_cpu.yaml",
             split="val", root=cifar_bin, kw=cifar_kw, images=6400 if quick else 25600),
    ]  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs per case; medians are reported")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (comma-separated)")
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    loader.IN_MEMORY_ONE_WORKER_CPUS = 0  # measure every worker count as asked
    meta: Dict[str, Any] = {**_host(), **_versions(), "argv": sys.argv[1:] if argv is None else list(argv)}
    meta["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["load_start"] = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in _cases(tmp, args.quick):
            if args.only not in case["name"]:
                continue
            for workers in [int(w) for w in args.workers.split(",")]:
                contenders = {
                    "visionzoo": _visionzoo(case["recipe"], case["split"], workers, **case["kw"]),
                    "mindcv": _mindcv(case["recipe"], case["split"], workers, case["root"], **case["kw"]),
                }
                runs: Dict[str, List[Dict[str, float]]] = {k: [] for k in contenders}
                for _ in range(args.repeats):
                    for name, make in contenders.items():
                        runs[name].append(_measure(make(), warmup=case["images"] // 4, images=case["images"]))
                row = {"case": case["name"], "recipe": case["recipe"], "split": case["split"], "workers": workers}
                for name, rs in runs.items():
                    row[name] = {
                        "img_s": statistics.median(r["wall"] for r in rs),
                        "img_per_cpu_s": statistics.median(r["cpu"] for r in rs),
                        "runs_img_s": [round(r["wall"], 1) for r in rs],
                        "runs_img_per_cpu_s": [round(r["cpu"], 1) for r in rs],
                    }
                row["ratio_img_s"] = row["visionzoo"]["img_s"] / row["mindcv"]["img_s"]
                row["ratio_img_per_cpu_s"] = row["visionzoo"]["img_per_cpu_s"] / row["mindcv"]["img_per_cpu_s"]
                rows.append(row)
                print(
                    f"  {case['name']} w={workers}: visionzoo {row['visionzoo']['runs_img_s']} "
                    f"mindcv {row['mindcv']['runs_img_s']}",
                    file=sys.stderr,
                    flush=True,
                )
    meta["load_end"] = os.getloadavg()[0]
    _print_table(meta, rows, args.repeats)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=1)


def _print_table(meta: Dict[str, Any], rows: List[Dict[str, Any]], repeats: int) -> None:
    """The docs' tables of this run (summarize_results.py renders the committed files the same way)."""
    from summarize_results import KINDS, Result, source_line

    run = [Result("this run", {"meta": meta, "results": rows})]
    print(f"\nmedian of {repeats} alternating runs")
    for name in ("pipeline", "cores-per-card"):
        print("\n".join(KINDS[name](run) + ["", source_line(run), ""]))


if __name__ == "__main__":
    main()
