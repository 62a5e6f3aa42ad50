"""The convolution chooser's cost: the first training step with defaults vs with the choice switched off.

On a host with no saved choices, each convolution geometry and direction chooses its formulation in
its first call (a rule where the measurements give one, a short timing otherwise; ops/csrc/conv2d_cpu/
chooser.h), so the first training step carries that cost. This runs, side by side for each model:

  default     visionzoo's trainer with its defaults and ``VISIONZOO_CONV_TUNING=fresh`` (choose, but read
              no saved choice: what a new host sees, without rebuilding the kernels)
  tuning-off  the same with ``VISIONZOO_CONV_TUNING=0`` (always oneDNN's blocked formulation)
  torch       PyTorch eager on the identical architecture (benchmarks/bench_models.py)

Each repeat starts fresh worker processes (alternating which visionzoo one starts first), records the
first training step (graph compilation included, and without it), then times steady training steps in
interleaved rounds. Acceptance (issue 26): first step default <= 1.5x tuning-off, steady step default
<= 0.9x tuning-off, and training >= 1.3x PyTorch eager.

  PYTHONPATH=src flock /work/bench.lock python benchmarks/bench_first_step.py --json out.json
  ... --isa-class avx2    # the AVX2 host class on an AVX-512 machine (as bench_models.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_models  # noqa: E402  (its workers: the same trainer, model and PyTorch counterpart)

# model -> batch (issue 26's acceptance geometries, 32x32 inputs)
MODELS = {"googlenet_cifar": 64, "vgg16_bn_cifar": 128}
# contender -> (bench_models worker, VISIONZOO_CONV_TUNING or None)
CONTENDERS = {"default": ("visionzoo", "fresh"), "tuning-off": ("visionzoo", "0"), "torch": ("torch", None)}


def _start(contender: str, model: str, args) -> tuple:
    worker, tuning = CONTENDERS[contender]
    previous = os.environ.pop("VISIONZOO_CONV_TUNING", None)
    if tuning is not None:
        os.environ["VISIONZOO_CONV_TUNING"] = tuning  # passed on by bench_models' worker environment
    try:
        w = bench_models.Worker(worker, model, args)
    finally:
        os.environ.pop("VISIONZOO_CONV_TUNING", None)
        if previous is not None:
            os.environ["VISIONZOO_CONV_TUNING"] = previous
    ready = w.read()
    first = {k: ready.get(k) for k in ("first_train_s", "compile_s", "tuning_steps", "tuning_s", "fast_isa")}
    first["first_step_without_compile_s"] = ready["first_train_s"] - ready["compile_s"]
    print(
        f"  {model} {contender:10s} first step {ready['first_train_s']:.1f} s "
        f"({first['first_step_without_compile_s']:.1f} s without compilation)",
        flush=True,
    )
    return w, first


def bench(model: str, args) -> dict:
    """Repeats of (start the contenders, time their steady steps in interleaved rounds)."""
    out = {c: {"first": [], "train": []} for c in CONTENDERS}
    for repeat in range(args.repeats):
        order = ["default", "tuning-off"] if repeat % 2 == 0 else ["tuning-off", "default"]
        workers = {}
        for contender in [*order, "torch"]:  # one at a time: a first step is not disturbed by another's
            workers[contender], first = _start(contender, model, args)
            out[contender]["first"].append(first)
        for _ in range(args.rounds):
            for contender in order + ["torch"]:
                out[contender]["train"] += workers[contender].ask(f"train {args.steps}")["times"]
        for w in workers.values():
            w.ask("quit")
            w.proc.wait()
    return out


def summarize(res: dict) -> dict:
    def first(c, key="first_train_s"):
        return statistics.median(r[key] for r in res[c]["first"])

    steady = {c: statistics.median(res[c]["train"]) for c in res}
    mine = ("default", "tuning-off")
    return {
        "first_step_s": {c: first(c) for c in mine},
        "first_step_without_compile_s": {c: first(c, "first_step_without_compile_s") for c in mine},
        "steady_step_s": steady,
        "first_default_over_off": first("default") / first("tuning-off"),
        "steady_default_over_off": steady["default"] / steady["tuning-off"],
        "default_speedup_over_torch": steady["torch"] / steady["default"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ", ".join(MODELS))
    p.add_argument("--repeats", type=int, default=2, help="fresh worker processes per contender")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of steady steps per repeat")
    p.add_argument("--steps", type=int, default=2, help="timed training steps per contender per round")
    p.add_argument("--isa-class", choices=bench_models.ISA_CLASSES, default="native")
    p.add_argument("--json", help="write the results (with the host, date and versions) here")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    args = p.parse_args(argv)
    args.mode, args.batch = 0, 0  # what bench_models.Worker reads: graph mode, the batch set per model
    from importlib.metadata import version

    meta = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": bench_models._cpu_model(),
        "isa_flags": bench_models._isa_flags(),
        "isa_class": args.isa_class,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "mindspore": version("mindspore"),
        "torch": version("torch"),
        "commit": bench_models._git_commit(),
        "load_start": os.getloadavg(),
        "repeats": args.repeats,
        "rounds": args.rounds,
        "steps": args.steps,
    }
    print(f"{meta['cpu']}, {meta['cores']} cores, ISA class {args.isa_class}, load {meta['load_start'][0]:.1f}")
    results = {}
    for model in args.models.split(","):
        args.batch = MODELS[model]
        raw = bench(model, args)
        results[model] = {"batch": MODELS[model], "summary": summarize(raw), "raw": raw}
        print(f"{model} b{MODELS[model]}: {json.dumps(results[model]['summary'])}", flush=True)
    meta["load_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
