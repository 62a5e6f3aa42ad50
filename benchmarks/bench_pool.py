"""Max pooling alone: mindspore.nn.MaxPool2d vs visionzoo.ops.MaxPool2d (fast CPU path), forward and
forward+backward, on the pooling shapes of GoogLeNet (224, batch 16) and the CIFAR VGG16-BN (batch 128).

  PYTHONPATH=src python benchmarks/bench_pool.py [--reps 5] [--mode 0]

The two are timed in turns (A B A B) and their outputs and input gradients are compared for equality.
"""

from __future__ import annotations

import argparse
import statistics
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

import visionzoo  # noqa: F401  (CPU environment defaults before MindSpore's first op)
from visionzoo import runtime
from visionzoo.ops import MaxPool2d

# name, input shape (N, C, H, W), nn.MaxPool2d kwargs
CASES = [
    ("googlenet maxpool1", (16, 64, 112, 112), dict(kernel_size=3, stride=2, pad_mode="same")),
    ("googlenet maxpool2", (16, 192, 56, 56), dict(kernel_size=3, stride=2, pad_mode="same")),
    ("inception 3b branch", (16, 256, 28, 28), dict(kernel_size=3, stride=1, pad_mode="same")),
    ("inception 4b branch", (16, 512, 14, 14), dict(kernel_size=3, stride=1, pad_mode="same")),
    ("googlenet maxpool4", (16, 832, 14, 14), dict(kernel_size=2, stride=2, pad_mode="same")),
    ("vgg16 cifar pool1", (128, 64, 32, 32), dict(kernel_size=2, stride=2)),
    ("vgg16 cifar pool2", (128, 128, 16, 16), dict(kernel_size=2, stride=2)),
]


class _WeightedSum(nn.Cell):
    def __init__(self, pool):
        super().__init__()
        self.pool = pool
        self.set_train(pool.training)

    def construct(self, x, upstream):
        return (self.pool(x) * upstream).sum()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--mode", type=int, default=0)
    args = p.parse_args()
    ms.set_context(mode=args.mode)
    print(
        "| layer | input | nn fwd ms | fast fwd ms | nn fwd+bwd ms | fast fwd+bwd ms | fwd+bwd speed-up | identical |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, shape, kwargs in CASES:
        rng = np.random.default_rng(0)
        x = Tensor(rng.standard_normal(shape).astype(np.float32))
        runtime.use_fast_pool(True)
        fast = MaxPool2d(**kwargs)
        runtime.use_fast_pool(None)
        fast.set_train(True)
        pools = {"nn": nn.MaxPool2d(**kwargs), "fast": fast}
        pools["nn"].set_train(True)
        up = Tensor(rng.standard_normal(pools["nn"](x).shape).astype(np.float32))
        grads = {
            k: ms.jit(ms.grad(_WeightedSum(v), grad_position=0))
            if args.mode == 0
            else ms.grad(_WeightedSum(v), grad_position=0)
            for k, v in pools.items()
        }
        times = {(k, kind): [] for k in pools for kind in ("fwd", "bwd")}
        results = {k: (pools[k](x).asnumpy(), grads[k](x, up).asnumpy()) for k in pools}  # compile + check
        for _ in range(args.reps):
            for k in pools:
                t0 = time.perf_counter()
                pools[k](x).asnumpy()
                times[(k, "fwd")].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                grads[k](x, up).asnumpy()
                times[(k, "bwd")].append(time.perf_counter() - t0)
        med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
        same = all(np.array_equal(a, b) for a, b in zip(results["nn"], results["fast"]))
        print(
            f"| {name} | {'x'.join(map(str, shape))} | {med[('nn', 'fwd')]:.1f} | {med[('fast', 'fwd')]:.1f} | "
            f"{med[('nn', 'bwd')]:.1f} | {med[('fast', 'bwd')]:.1f} | {med[('nn', 'bwd')] / med[('fast', 'bwd')]:.1f}x "
            f"| {same} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
