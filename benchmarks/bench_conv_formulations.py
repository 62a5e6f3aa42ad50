"""Each formulation of the fast convolution kernel, forced, on the 3x3 layers of the CIFAR VGG16-BN.

Calls the kernel's entry points directly (ctypes, no framework in between) on NCHW float32 arrays:
inference (``Conv2dInference``), backward data (``Conv2dBackwardData``) and backward weights
(``Conv2dBackwardWeights``), for each distinct layer of ``vgg16_bn_cifar`` at the given batch, and sums
them over the network's 13 convolutions. Each (layer, formulation, direction) is timed ``--reps``
times after one untimed call; the best time is kept (the kernel alone, on a quiet machine).

  PYTHONPATH=src python benchmarks/bench_conv_formulations.py [--batch 128] [--candidates 0,5] [--json out]
  ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=src python benchmarks/bench_conv_formulations.py ...   # the AVX2 class

Formulations (``VzConvForceCandidate``): 0 oneDNN's blocked layouts (its direct kernels, what PyTorch
runs), 1 plain NCHW (im2col + GEMM, what MindSpore's Conv2D runs), 2/3 the same with the batch split
between threads, 4 oneDNN's forward_inference choice (eval) / the batch GEMM (weight gradient),
5 Winograd (3x3 stride 1 only). A formulation a direction lacks falls back as the kernel's
``VzConvForceCandidate`` says (e.g. 4 in backward data: the blocked one).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time

import numpy as np

import visionzoo  # noqa: F401  (CPU environment defaults before MindSpore's first op)
from visionzoo import runtime
from visionzoo.ops.conv import build_conv_kernels, effective_isa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import _cpu_model  # noqa: E402  (one reader of the CPU's name for every benchmark)

# (input channels, output channels, map size, how many such layers in vgg16_bn_cifar)
LAYERS = [
    (3, 64, 32, 1),
    (64, 64, 32, 1),
    (64, 128, 16, 1),
    (128, 128, 16, 1),
    (128, 256, 8, 1),
    (256, 256, 8, 2),
    (256, 512, 4, 1),
    (512, 512, 4, 2),
    (512, 512, 2, 3),
]
NAMES = {0: "blocked", 1: "plain", 2: "blocked-split", 3: "plain-split", 4: "fifth", 5: "winograd"}


def _call(fn, arrays, ndims, dtypes) -> float:
    n = len(arrays)
    params = (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays])
    shapes = [np.array(a.shape, np.int64) for a in arrays]
    shape_ptrs = (ctypes.POINTER(ctypes.c_int64) * n)(
        *[s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) for s in shapes]
    )
    t0 = time.perf_counter()
    status = fn(n, params, (ctypes.c_int * n)(*ndims), shape_ptrs, (ctypes.c_char_p * n)(*dtypes), None, None)
    elapsed = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"kernel call failed with status {status}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--candidates", default="0,2,4,5", help="comma list of formulations (0-5)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="write the results (with the machine and date) here")
    args = p.parse_args()
    lib = ctypes.CDLL(build_conv_kernels())
    candidates = [int(c) for c in args.candidates.split(",")]
    isa = effective_isa(lib)
    flags = sorted(f for f in runtime.cpu_flags() if f.startswith(("avx512", "amx", "avx2", "fma")))
    print(
        f"machine: {_cpu_model()}, {os.cpu_count()} CPUs; flags: {' '.join(flags)}; "
        f"kernel ISA {isa}, {lib.VzConvThreads()} threads; batch {args.batch}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    rng = np.random.default_rng(0)
    directions = ("inference", "backward_data", "backward_weights")
    rows, totals = [], {c: {d: 0.0 for d in directions} for c in candidates}
    f32, i32 = b"float32", b"int32"
    previous = lib.VzConvForceCandidate(-1)
    try:
        for cin, cout, size, count in LAYERS:
            x = rng.standard_normal((args.batch, cin, size, size)).astype(np.float32)
            w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
            pads = np.array([1, 1, 1, 1, 1, 1], np.int32)
            y = np.zeros((args.batch, cout, size, size), np.float32)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            dx, dw = np.zeros_like(x), np.zeros_like(w)
            row = {"layer": f"{cin}->{cout} at {size}x{size}", "count": count}
            for c in candidates:
                lib.VzConvForceCandidate(c)
                times = {d: [] for d in directions}
                for rep in range(args.reps + 1):
                    elapsed = (
                        _call(lib.Conv2dInference, [x, w, pads, y], [4, 4, 1, 4], [f32, f32, i32, f32]),
                        _call(lib.Conv2dBackwardData, [dy, w, x, pads, dx], [4, 4, 4, 1, 4], [f32, f32, f32, i32, f32]),
                        _call(
                            lib.Conv2dBackwardWeights, [x, dy, w, pads, dw], [4, 4, 4, 1, 4], [f32, f32, f32, i32, f32]
                        ),
                    )
                    if rep:  # the first call builds the primitives
                        for d, t in zip(directions, elapsed):
                            times[d].append(t)
                for direction, values in times.items():
                    row[f"{NAMES[c]}_{direction}_ms"] = round(min(values) * 1e3, 2)
                    totals[c][direction] += min(values) * count
            rows.append(row)
            print(
                " | ".join(
                    [f"{row['layer']:>18} x{count}"]
                    + [
                        f"{NAMES[c]}: inf {row[f'{NAMES[c]}_inference_ms']:6.1f} "
                        f"data {row[f'{NAMES[c]}_backward_data_ms']:6.1f} "
                        f"weights {row[f'{NAMES[c]}_backward_weights_ms']:6.1f} ms"
                        for c in candidates
                    ]
                ),
                flush=True,
            )
    finally:
        lib.VzConvForceCandidate(previous)
    for c in candidates:
        print(
            f"{NAMES[c]}: the network's 13 convolutions, inference {totals[c]['inference'] * 1e3:.0f} ms, "
            f"backward data {totals[c]['backward_data'] * 1e3:.0f} ms, "
            f"backward weights {totals[c]['backward_weights'] * 1e3:.0f} ms"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "cpu": _cpu_model(),
                    "cpu_flags": flags,
                    "kernel_isa": isa,
                    "threads": lib.VzConvThreads(),
                    "batch": args.batch,
                    "layers": rows,
                    "network_ms": {NAMES[c]: {k: round(v * 1e3, 1) for k, v in t.items()} for c, t in totals.items()},
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
