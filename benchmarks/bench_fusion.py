"""Eval-mode BatchNorm folding (``visionzoo.ops.Conv2d.fused``) on and off, per execution mode.

For each (mode, model, batch, size): one fresh process per measurement pair builds the model with the
fast path, times ``--calls`` eval forward passes with the fusion on and off, alternating (after
warm-up until the convolution kernels have finished tuning), and prints the medians. JSON lines to
stdout and to ``--out``, with the host's CPU, ISA flags and load.

Usage: ``PYTHONPATH=src python benchmarks/bench_fusion.py [--out benchmarks/results/fusion.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

CASES = [
    ("pynative", "googlenet_bn", 8, 32),
    ("graph", "googlenet_bn", 8, 32),
    ("pynative", "vgg16_bn_cifar", 128, 32),
    ("graph", "vgg16_bn_cifar", 128, 32),
]


def child(mode: str, name: str, batch: int, size: int, calls: int, alternations: int) -> dict:
    import mindspore as ms
    import numpy as np

    import visionzoo
    from visionzoo.ops import set_eval_fusion
    from visionzoo.ops.conv import tuning_pending

    ms.set_context(mode=ms.PYNATIVE_MODE if mode == "pynative" else ms.GRAPH_MODE)
    x = ms.Tensor(np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32))
    nets = {}
    for fuse in (True, False):  # graph mode compiles once per network: one network per setting
        net = visionzoo.create_model(name, num_classes=10)
        net.set_train(False)
        set_eval_fusion(net, fuse)
        for _ in range(200):  # warm up until every geometry has chosen its formulation
            net(x).asnumpy()
            if tuning_pending() == 0:
                break
        nets[fuse] = net
    times = {True: [], False: []}
    for _ in range(alternations):
        for fuse in (True, False):
            for _ in range(calls):
                t0 = time.perf_counter()
                nets[fuse](x).asnumpy()
                times[fuse].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "mode": mode,
        "model": name,
        "batch": batch,
        "size": size,
        "fused_s": med[True],
        "unfused_s": med[False],
        "speedup": med[False] / med[True],
        "calls_each": len(times[True]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--alternations", type=int, default=3)
    p.add_argument("--out", default="")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        mode, name, batch, size = args.child
        print("RESULT " + json.dumps(child(mode, name, int(batch), int(size), args.calls, args.alternations)))
        return
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        text = f.read()
    host = {
        "cpu": re.search(r"model name\s*:\s*(.+)", text).group(1).strip(),
        "avx512": sorted(set(re.findall(r"avx512[a-z]*", text))),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_before": os.getloadavg()[0],
    }
    print(json.dumps(host), flush=True)
    rows = []
    for case in CASES:
        proc = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--calls",
                str(args.calls),
                "--alternations",
                str(args.alternations),
                "--child",
                *map(str, case),
            ],
            capture_output=True,
            text=True,
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            raise SystemExit(f"{case} failed ({proc.returncode}): {proc.stderr[-1500:]}")
        row = dict(json.loads(line[-1][7:]), load=os.getloadavg()[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"host": host, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
