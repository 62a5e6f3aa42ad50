"""Convolution alone: mindspore.nn.Conv2d vs visionzoo.ops.Conv2d (fast CPU path), forward and
forward+backward (input and weight gradients), on convolution shapes of GoogLeNet (224, batch 16) and
the CIFAR VGG16-BN (batch 128).

  PYTHONPATH=src python benchmarks/bench_conv.py [--reps 5] [--mode 0]

The two are timed in turns (A B A B); "max rel diff" is the largest difference of outputs and
gradients relative to the largest magnitude (float32 rounding: ~1e-6).
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
from visionzoo.ops import Conv2d

# name, input shape (N, C, H, W), nn.Conv2d kwargs
CASES = [
    ("googlenet conv1 7x7/2", (16, 3, 224, 224), dict(in_channels=3, out_channels=64, kernel_size=7, stride=2)),
    ("googlenet conv3 3x3", (16, 64, 56, 56), dict(in_channels=64, out_channels=192, kernel_size=3)),
    ("inception 3a 1x1", (16, 192, 28, 28), dict(in_channels=192, out_channels=64, kernel_size=1)),
    ("inception 3b 3x3", (16, 128, 28, 28), dict(in_channels=128, out_channels=192, kernel_size=3)),
    ("inception 4a 5x5", (16, 16, 14, 14), dict(in_channels=16, out_channels=48, kernel_size=5)),
    (
        "vgg16 cifar conv1_2",
        (128, 64, 32, 32),
        dict(in_channels=64, out_channels=64, kernel_size=3, pad_mode="pad", padding=1),
    ),
    (
        "vgg16 cifar conv3_2",
        (128, 256, 8, 8),
        dict(in_channels=256, out_channels=256, kernel_size=3, pad_mode="pad", padding=1),
    ),
    (
        "vgg16 cifar conv5_2",
        (128, 512, 2, 2),
        dict(in_channels=512, out_channels=512, kernel_size=3, pad_mode="pad", padding=1),
    ),
]


class _WeightedSum(nn.Cell):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.set_train(True)

    def construct(self, x, upstream):
        return (self.conv(x) * upstream).sum()


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--mode", type=int, default=0)
    args = p.parse_args()
    ms.set_context(mode=args.mode)
    print(
        "| layer | input | nn fwd ms | fast fwd ms | fwd speed-up | nn fwd+bwd ms | fast fwd+bwd ms "
        "| fwd+bwd speed-up | max rel diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, shape, kwargs in CASES:
        rng = np.random.default_rng(0)
        x = Tensor(rng.standard_normal(shape).astype(np.float32))
        runtime.use_fast_conv(True)
        fast = Conv2d(**kwargs)
        runtime.use_fast_conv(None)
        convs = {"nn": nn.Conv2d(**kwargs), "fast": fast}
        fast.weight.set_data(convs["nn"].weight.data.copy())
        for conv in convs.values():
            conv.set_train(True)
        up = Tensor(rng.standard_normal(convs["nn"](x).shape).astype(np.float32))
        grads = {}
        for k, conv in convs.items():
            g = ms.grad(_WeightedSum(conv), grad_position=0, weights=conv.trainable_params())
            grads[k] = ms.jit(g) if args.mode == 0 else g
        results = {}
        for k in convs:  # compile + check
            dx, (dw,) = grads[k](x, up)
            results[k] = (convs[k](x).asnumpy(), dx.asnumpy(), dw.asnumpy())
        times = {(k, kind): [] for k in convs for kind in ("fwd", "bwd")}
        for _ in range(args.reps):
            for k in convs:
                t0 = time.perf_counter()
                convs[k](x).asnumpy()
                times[(k, "fwd")].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                dx, (dw,) = grads[k](x, up)
                dx.asnumpy(), dw.asnumpy()
                times[(k, "bwd")].append(time.perf_counter() - t0)
        med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
        diff = max(_rel(a, b) for a, b in zip(results["fast"], results["nn"]))
        print(
            f"| {name} | {'x'.join(map(str, shape))} | {med[('nn', 'fwd')]:.1f} | {med[('fast', 'fwd')]:.1f} | "
            f"{med[('nn', 'fwd')] / med[('fast', 'fwd')]:.2f}x | {med[('nn', 'bwd')]:.1f} | "
            f"{med[('fast', 'bwd')]:.1f} | {med[('nn', 'bwd')] / med[('fast', 'bwd')]:.2f}x | {diff:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
