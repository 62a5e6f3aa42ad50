"""MindCV 0.3.0 and visionzoo on one recipe, side by side: top-1 and training time (issue #15).

The recipe is MindCV's key set (below, :data:`RECIPE`): GoogLeNet at 32x32 on scikit-learn's digits
written as an ImageFolder of 32x32 PNGs (1,437 train / 360 val). Each run is a fresh process:

- ``mindcv``: the installed ``mindcv`` package's factories driven the way MindCV's own ``train.py``
  drives them (create_dataset -> create_transforms -> create_loader -> create_model -> create_loss
  -> create_scheduler -> create_optimizer -> ``mindspore.train.Model`` with a fixed loss scale 1,
  validation after every epoch as MindCV's StateMonitor does). Values the YAML leaves unset take
  MindCV 0.3.0's ``config.py`` defaults, written out in :data:`MINDCV_DEFAULTS`.
- ``visionzoo``: ``python train.py -c <recipe>``.

Systems (``--systems``), each with the oneDNN environment it names and nothing else set:

- ``mindcv``: MindCV as a user runs it (no ``ONEDNN_MAX_CPU_ISA``; on an AVX-512 host MindSpore's
  convolution then dispatches to oneDNN's reference kernel, docs/performance.md);
- ``mindcv_avx2``: MindCV with ``ONEDNN_MAX_CPU_ISA=AVX2``, its fastest setting on such a host;
- ``visionzoo``: visionzoo as a user runs it (its defaults: the fast kernels at the host's best ISA,
  conv tuning on and persisted);
- ``visionzoo_det``: visionzoo with ``VISIONZOO_CONV_TUNING=0`` (one formulation per layer: runs with
  the same seed must agree bit for bit, which the summary checks on the per-epoch losses).

Reported per run: the last epoch's validation top-1 and the wall time of the training loop (the
MindCV ``Model.train`` call / visionzoo's ``Trainer.fit``, both including per-epoch validation and
graph compilation), plus the process wall time. Output: one JSON line per run and a summary, also
written to ``--out`` (JSON) with the host class and machine load.

Usage: ``PYTHONPATH=src python benchmarks/bench_mindcv_fidelity.py [--runs 3] [--seeds 42,1,2]
[--systems mindcv,visionzoo] [--out benchmarks/results/mindcv_fidelity.json]``. With several seeds the
summary also gives each system's top-1 mean and spread over them (this 5-epoch recipe's final top-1
moves by many points with the random draws alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: The issue's recipe, in MindCV's keys (data_dir is added per run).
RECIPE = dict(
    mode=0,
    distribute=False,
    val_while_train=True,
    dataset="imagenet",
    num_parallel_workers=2,
    batch_size=32,
    drop_remainder=True,
    image_resize=32,
    scale=[0.8, 1.0],
    ratio=[0.9, 1.1],
    hflip=0.0,
    crop_pct=1.0,
    model="googlenet",
    num_classes=10,
    epoch_size=5,
    dataset_sink_mode=False,
    amp_level="O0",
    loss="CE",
    scheduler="cosine_decay",
    lr=0.01,
    min_lr=0.0,
    warmup_epochs=0,
    decay_epochs=5,
    opt="momentum",
    momentum=0.9,
    weight_decay=0.0001,
)

#: MindCV 0.3.0 config.py defaults of the keys its train.py reads and the recipe leaves unset.
MINDCV_DEFAULTS = dict(
    seed=42,
    train_split="train",
    val_split="val",
    shuffle=True,
    num_samples=None,
    vflip=0.0,
    color_jitter=0.4,
    interpolation="bilinear",
    auto_augment=None,
    re_prob=0.0,
    re_scale=(0.02, 0.33),
    re_ratio=(0.3, 3.3),
    re_value=0,
    re_max_attempts=10,
    mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
    std=[0.229 * 255, 0.224 * 255, 0.225 * 255],
    mixup=0.0,
    cutmix=0.0,
    cutmix_prob=1.0,
    aug_repeats=0,
    in_channels=3,
    drop_rate=None,
    drop_path_rate=None,
    label_smoothing=0.0,
    aux_factor=0.0,
    reduction="mean",
    warmup_factor=0.0,
    decay_rate=0.9,
    multi_step_decay_milestones=[30, 60, 90],
    num_cycles=1,
    cycle_decay=1.0,
    lr_epoch_stair=False,
    use_nesterov=False,
    weight_decay_filter="disable",
    layer_decay=None,
    eps=1e-10,
    loss_scale=1.0,
    loss_scale_type="fixed",
    drop_overflow_update=False,
)


def host_info() -> Dict[str, Any]:
    """CPU model, AVX-512 flags, core count and the load average when the benchmark started."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
        found = re.search(r"model name\s*:\s*(.+)", text)
        model = found.group(1).strip() if found else model
        flags = set(re.findall(r"avx512[a-z]*", text))
    except OSError:
        pass
    return {
        "cpu_model": model,
        "avx512": sorted(flags),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def run_mindcv(data_dir: str, workdir: str, seed: int) -> Dict[str, Any]:
    """One MindCV training run in this process, the way MindCV 0.3.0's train.py composes its factories."""
    import mindspore as ms
    from mindcv.data import create_dataset, create_loader, create_transforms
    from mindcv.loss import create_loss
    from mindcv.models import create_model
    from mindcv.optim import create_optimizer
    from mindcv.scheduler import create_scheduler
    from mindcv.utils import get_metrics, set_seed
    from mindspore.train import Callback, FixedLossScaleManager, Model

    a = dict(MINDCV_DEFAULTS, **RECIPE, data_dir=data_dir, seed=seed)
    ms.set_context(mode=a["mode"])
    set_seed(a["seed"])
    train = create_dataset(
        name=a["dataset"],
        root=data_dir,
        split=a["train_split"],
        shuffle=a["shuffle"],
        num_samples=a["num_samples"],
        num_parallel_workers=a["num_parallel_workers"],
        num_aug_repeats=a["aug_repeats"],
    )
    tfl = create_transforms(
        dataset_name=a["dataset"],
        is_training=True,
        image_resize=a["image_resize"],
        scale=a["scale"],
        ratio=a["ratio"],
        hflip=a["hflip"],
        vflip=a["vflip"],
        color_jitter=a["color_jitter"],
        interpolation=a["interpolation"],
        auto_augment=a["auto_augment"],
        mean=a["mean"],
        std=a["std"],
        re_prob=a["re_prob"],
        re_scale=a["re_scale"],
        re_ratio=a["re_ratio"],
        re_value=a["re_value"],
        re_max_attempts=a["re_max_attempts"],
    )
    loader = create_loader(
        dataset=train,
        batch_size=a["batch_size"],
        drop_remainder=a["drop_remainder"],
        is_training=True,
        mixup=a["mixup"],
        cutmix=a["cutmix"],
        cutmix_prob=a["cutmix_prob"],
        num_classes=a["num_classes"],
        transform=tfl,
        num_parallel_workers=a["num_parallel_workers"],
    )
    val = create_dataset(
        name=a["dataset"], root=data_dir, split=a["val_split"], num_parallel_workers=a["num_parallel_workers"]
    )
    vtfl = create_transforms(
        dataset_name=a["dataset"],
        is_training=False,
        image_resize=a["image_resize"],
        crop_pct=a["crop_pct"],
        interpolation=a["interpolation"],
        mean=a["mean"],
        std=a["std"],
    )
    val_loader = create_loader(
        dataset=val,
        batch_size=a["batch_size"],
        drop_remainder=False,
        is_training=False,
        transform=vtfl,
        num_parallel_workers=a["num_parallel_workers"],
    )
    network = create_model(
        model_name=a["model"],
        num_classes=a["num_classes"],
        in_channels=a["in_channels"],
        drop_rate=a["drop_rate"],
        drop_path_rate=a["drop_path_rate"],
        pretrained=False,
        checkpoint_path="",
    )
    loss = create_loss(
        name=a["loss"], reduction=a["reduction"], label_smoothing=a["label_smoothing"], aux_factor=a["aux_factor"]
    )
    lr = create_scheduler(
        loader.get_dataset_size(),
        scheduler=a["scheduler"],
        lr=a["lr"],
        min_lr=a["min_lr"],
        warmup_epochs=a["warmup_epochs"],
        warmup_factor=a["warmup_factor"],
        decay_epochs=a["decay_epochs"],
        decay_rate=a["decay_rate"],
        milestones=a["multi_step_decay_milestones"],
        num_epochs=a["epoch_size"],
        num_cycles=a["num_cycles"],
        cycle_decay=a["cycle_decay"],
        lr_epoch_stair=a["lr_epoch_stair"],
    )
    opt = create_optimizer(
        network,
        opt=a["opt"],
        lr=lr,
        weight_decay=a["weight_decay"],
        momentum=a["momentum"],
        nesterov=a["use_nesterov"],
        weight_decay_filter=a["weight_decay_filter"],
        layer_decay=a["layer_decay"],
        loss_scale=a["loss_scale"],
        checkpoint_path="",
        eps=a["eps"],
    )
    model = Model(
        network,
        loss_fn=loss,
        optimizer=opt,
        metrics=get_metrics(a["num_classes"]),
        amp_level=a["amp_level"],
        loss_scale_manager=FixedLossScaleManager(a["loss_scale"], drop_overflow_update=False),
    )
    epochs: List[Dict[str, Any]] = []

    class Validate(Callback):  # what MindCV's StateMonitor does at each epoch end (val_interval 1)
        def on_train_epoch_end(self, run_context):
            res = model.eval(val_loader, dataset_sink_mode=False)
            epochs.append({"epoch": len(epochs) + 1, "val_top1": float(res["Top_1_Accuracy"])})

    t0 = time.perf_counter()
    model.train(a["epoch_size"], loader, callbacks=[Validate()], dataset_sink_mode=a["dataset_sink_mode"])
    seconds = time.perf_counter() - t0
    return {"system": "mindcv", "val_top1": epochs[-1]["val_top1"], "train_seconds": seconds, "epochs": epochs}


def run_visionzoo(data_dir: str, workdir: str, env: Dict[str, str], seed: int) -> Dict[str, Any]:
    """One visionzoo run: ``train.py -c <recipe>`` in a fresh process; top-1 from its metrics log."""
    import yaml

    recipe = os.path.join(workdir, "recipe.yaml")
    with open(recipe, "w", encoding="utf-8") as f:
        yaml.safe_dump(dict(RECIPE, data_dir=data_dir, seed=seed), f)
    ckpt = os.path.join(workdir, "ckpt")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "-c", recipe, "--ckpt_save_dir", ckpt],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"visionzoo train.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
    with open(os.path.join(ckpt, "metrics.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    done = re.search(r"training done in ([0-9.]+) s", proc.stderr)
    return {
        "system": "visionzoo",
        "val_top1": records[-1]["val_top1"],
        "train_seconds": float(done.group(1)) if done else wall,
        "process_seconds": wall,
        "epochs": [
            {"epoch": r["epoch"], "val_top1": r.get("val_top1"), "train_loss": r.get("train_loss")} for r in records
        ],
    }


#: Environment of each system (on top of the caller's, with every variable below removed first).
SYSTEM_ENV = {
    "mindcv": {},
    "mindcv_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "visionzoo": {},
    "visionzoo_det": {"VISIONZOO_CONV_TUNING": "0"},
}
_CONTROLLED = (
    "ONEDNN_MAX_CPU_ISA",
    "VISIONZOO_CONV_TUNING",
    "VISIONZOO_FAST_CONV",
    "VISIONZOO_FAST_POOL",
    "VISIONZOO_NO_CPU_DEFAULTS",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="runs of each system per seed")
    p.add_argument(
        "--seeds",
        default=str(MINDCV_DEFAULTS["seed"]),
        help="comma list of seeds (the recipe's `seed`; default MindCV's 42): each seed is run --runs "
        "times by every system, and the summary gives each system's top-1 mean and spread over "
        "the seeds",
    )
    p.add_argument(
        "--systems",
        default="mindcv,mindcv_avx2,visionzoo,visionzoo_det",
        help="comma list of: " + ", ".join(SYSTEM_ENV),
    )
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "visionzoo_digits_folder32"))
    p.add_argument("--out", default=os.path.join(HERE, "results", "mindcv_fidelity.json"))
    p.add_argument("--child", default="", help=argparse.SUPPRESS)  # internal: one MindCV run in this process
    p.add_argument("--child_seed", type=int, default=MINDCV_DEFAULTS["seed"], help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        p.error(f"--seeds must be a comma list of integers, got {args.seeds!r}")
    if not seeds or args.runs < 1:
        p.error("need at least one seed and --runs >= 1")
    if args.child:
        result = run_mindcv(args.data_dir, args.child, args.child_seed)
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
        return
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from visionzoo.data.digits import write_digits_image_folder

    if not os.path.isdir(os.path.join(args.data_dir, "val")):
        write_digits_image_folder(args.data_dir, size=32)
    base = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    base["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    info = host_info()
    sys.stderr.write(f"host: {info}\n")
    results: List[Dict[str, Any]] = []
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEM_ENV]
    if unknown:
        p.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEM_ENV)}")
    for seed, i in [(seed, i) for seed in seeds for i in range(args.runs)]:
        for system in systems:  # interleaved, so a change in machine load hits every system
            env = dict(base, **SYSTEM_ENV[system])
            with tempfile.TemporaryDirectory() as work:
                t0 = time.perf_counter()
                if system.startswith("mindcv"):
                    proc = subprocess.run(
                        [
                            sys.executable,
                            os.path.abspath(__file__),
                            "--child",
                            work,
                            "--child_seed",
                            str(seed),
                            "--data_dir",
                            args.data_dir,
                        ],
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                    if proc.returncode != 0 or not line:
                        raise RuntimeError(f"mindcv run failed ({proc.returncode}): {proc.stderr[-2000:]}")
                    result = json.loads(line[-1][len("RESULT ") :])
                    result["process_seconds"] = time.perf_counter() - t0
                else:
                    result = run_visionzoo(args.data_dir, work, env, seed)
            result.update(system=system, seed=seed, run=i + 1, load_average=list(os.getloadavg()))
            results.append(result)
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
    summary: Dict[str, Any] = {}
    for system in systems:
        mine = [r for r in results if r["system"] == system]
        summary[system] = {
            "val_top1": [r["val_top1"] for r in mine],
            "train_seconds": [round(r["train_seconds"], 1) for r in mine],
        }
        if len(seeds) > 1:  # first run of each seed: the spread over seeds, the recipe's own variance
            firsts = [100 * r["val_top1"] for r in mine if r["run"] == 1]
            summary[system]["top1_over_seeds"] = {
                "seeds": seeds,
                "mean": round(statistics.mean(firsts), 2),
                "stdev": round(statistics.stdev(firsts), 2),
                "min": round(min(firsts), 2),
                "max": round(max(firsts), 2),
            }
    for mine in ("visionzoo", "visionzoo_det"):
        for theirs in ("mindcv", "mindcv_avx2"):
            if {mine, theirs} <= set(summary):
                m, v = summary[theirs], summary[mine]
                summary[f"top1_gap_points_{mine}_vs_{theirs}"] = [
                    round(100 * (b - a), 2) for a, b in zip(m["val_top1"], v["val_top1"])
                ]
                summary[f"time_ratio_{mine}_over_{theirs}"] = [
                    round(b / a, 3) for a, b in zip(m["train_seconds"], v["train_seconds"])
                ]
    for system in ("visionzoo", "visionzoo_det"):
        if system in systems and args.runs >= 2:  # bit for bit: every epoch's loss and top-1, per seed
            traces = [
                [
                    [(e["train_loss"], e["val_top1"]) for e in r["epochs"]]
                    for r in results
                    if r["system"] == system and r["seed"] == seed
                ]
                for seed in seeds
            ]
            summary[f"{system}_identical_runs"] = all(t == runs[0] for runs in traces for t in runs)
    info["load_average_end"] = list(os.getloadavg())
    out = {
        "recipe": RECIPE,
        "host": info,
        "runs": results,
        "summary": summary,
        "system_env": {s: SYSTEM_ENV[s] for s in systems},
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
