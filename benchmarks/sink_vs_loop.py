"""Issue 24's acceptance on this CPU: the digits demo recipe trained with dataset sink mode on and off.

Runs ``train.py -c configs/vgg/vgg11_bn_cifar_digits_cpu.yaml --epoch_size 3`` twice, with
``--dataset_sink_mode True`` (the sink path: the host stand-in for the device queue) and ``False``
(the Python step loop), same seed, one after the other, and compares ``metrics.jsonl``: every epoch's
``train_loss`` (relative difference) and the final ``val_top1``. The dry-run plan's
``dataset_sink_mode`` is recorded too. The JSON holds the host class, versions, the load average at
start and end, both runs' records and the verdict (relative tolerance 1e-5).

Usage: ``flock /work/bench.lock python benchmarks/sink_vs_loop.py [--epochs 3] [--out PATH]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msrun_stress import REPO, host_class  # noqa: E402

RECIPE = os.path.join(REPO, "configs", "vgg", "vgg11_bn_cifar_digits_cpu.yaml")
TOLERANCE = 1e-5


def _train(sink: bool, epochs: int, work: str) -> dict:
    directory = os.path.join(work, f"sink_{sink}")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "-c", RECIPE, "--epoch_size", str(epochs)]
    cmd += ["--dataset_sink_mode", str(sink), "--ckpt_save_dir", directory]
    plan = subprocess.run(cmd + ["--dry_run"], capture_output=True, text=True, check=True)
    planned = json.loads(plan.stdout.strip().splitlines()[-1])["dataset_sink_mode"]
    t0 = time.time()
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {"plan_dataset_sink_mode": planned, "seconds": round(time.time() - t0, 1), "records": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    default = os.path.join(REPO, "benchmarks", "results", f"{stamp:%Y-%m-%dT%H%M}_sink_vs_loop_digits.json")
    parser.add_argument("--out", default=default)
    args = parser.parse_args()
    doc = {
        "benchmark": "sink_vs_loop",
        "started_utc": stamp.isoformat(timespec="seconds"),
        "host": host_class(),
        "recipe": os.path.relpath(RECIPE, REPO),
        "epochs": args.epochs,
        "loadavg_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="vz_sink_vs_loop_") as work:
        runs = {mode: _train(mode == "sink", args.epochs, work) for mode in ("sink", "loop")}
    doc["loadavg_end"] = os.getloadavg()
    doc["runs"] = runs
    sink, loop = runs["sink"]["records"], runs["loop"]["records"]
    rel = [abs(s["train_loss"] - o["train_loss"]) / abs(o["train_loss"]) for s, o in zip(sink, loop)]
    doc["train_loss_rel_diff"] = rel
    doc["val_top1"] = {"sink": sink[-1]["val_top1"], "loop": loop[-1]["val_top1"]}
    doc["equal"] = (
        len(sink) == len(loop) == args.epochs
        and max(rel) <= TOLERANCE
        and sink[-1]["val_top1"] == loop[-1]["val_top1"]
        and runs["sink"]["plan_dataset_sink_mode"] is True
    )
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps({k: doc[k] for k in ("train_loss_rel_diff", "val_top1", "equal")}))
    return 0 if doc["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
