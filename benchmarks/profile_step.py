"""Where a training step's time goes: MindSpore's Profiler over visionzoo's compiled train step.

Builds the step ``bench_models.py`` times (visionzoo's Trainer: SGD momentum, constant lr, float32, graph
mode), warms it up until the convolutions have finished tuning, then profiles ``--steps`` steps and sums
the CPU operators' times per category: the fast kernels' Custom ops split into convolution and pooling,
forward and gradient (by their scope names), every other operator by its type. One process, so the
categories' sum is close to the wall time only where operators ran one after another.

  PYTHONPATH=src python benchmarks/profile_step.py --model googlenet [--steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import csv
import glob
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mindspore as ms  # noqa: E402

from bench_models import MODELS, _cpu_model, _visionzoo_trainer  # noqa: E402


def _category(row) -> str:
    name, grad = row["full_op_name"], row["full_op_name"].startswith("Gradients")
    kind = ("pool" if "MaxPool2d" in name else "conv") if row["op_type"] == "Custom" else row["op_type"]
    return f"{kind} {'gradient' if grad else 'forward'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="googlenet", choices=sorted(MODELS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--json", help="write the summary (with the machine, date and commit) here")
    args = p.parse_args()
    size, batch, classes, _ = MODELS[args.model]
    ms.set_context(mode=0)
    ms.set_seed(0)
    trainer = _visionzoo_trainer(args.model, batch, size, classes, 0)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, classes, batch).astype(np.int32))
    step = trainer.train_step
    step.set_train(True)

    from visionzoo.ops.conv import tuning_pending

    for warm in range(40):
        step(x, y)[0].asnumpy()
        if warm >= 2 and not tuning_pending():
            break
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        step(x, y)[0].asnumpy()
        times.append(time.perf_counter() - t0)
    out = tempfile.mkdtemp(prefix="vz_profile_")
    profiler = ms.Profiler(output_path=out)
    for _ in range(args.steps):
        step(x, y)[0].asnumpy()
    profiler.analyse()
    detail = glob.glob(os.path.join(out, "**", "cpu_op_detail_info_*.csv"), recursive=True)
    if not detail:
        raise SystemExit(f"no CPU operator detail file under {out}")
    per_step, count = collections.defaultdict(float), collections.Counter()
    with open(detail[0], newline="") as f:
        for row in csv.DictReader(f):
            key = _category(row)
            per_step[key] += float(row["op_total_time(ms)"]) / args.steps
            count[key] += 1
    ranked = sorted(per_step.items(), key=lambda kv: -kv[1])
    print(
        f"machine: {_cpu_model()}; {args.model} batch {batch}; median step {statistics.median(times):.3f} s "
        f"unprofiled; operator time per profiled step (ms):"
    )
    for key, ms_ in ranked:
        print(f"{ms_:9.1f}  {count[key]:4d} operators  {key}")
    print(f"{sum(per_step.values()):9.1f}  total")
    if args.json:
        import subprocess

        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "cpu": _cpu_model(),
                    "visionzoo_commit": commit,
                    "model": args.model,
                    "batch": batch,
                    "median_step_s": statistics.median(times),
                    "ms_per_step": {k: round(v, 2) for k, v in ranked},
                    "operators": dict(count),
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
