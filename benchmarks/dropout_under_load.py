"""Are dropout masks decided by the seed alone? MindSpore's ``nn.Dropout`` against visionzoo's models'
``Dropout`` (``visionzoo.models.layers``), in graph mode after ``mindspore.set_seed(7)``: each run is a
fresh process hashing 30 training-mode masks of a 64x2048 input; runs are made on a quiet machine and
beside two busy processes. Same hash = same masks (docs/mindcv.md, dropout row).

Usage: ``PYTHONPATH=src python benchmarks/dropout_under_load.py [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import hashlib, sys, numpy as np, mindspore as ms
from mindspore import nn
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)
from visionzoo.models.layers import Dropout

class Net(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        self.drop = Dropout(0.2) if ours else nn.Dropout(p=0.2)

    def construct(self, x):
        return self.drop(x)

net = Net(sys.argv[1] == "visionzoo")
net.set_train(True)
x = ms.Tensor(np.ones((64, 2048), np.float32))
h = hashlib.md5()
for _ in range(30):
    h.update(net(x).asnumpy().tobytes())
print(h.hexdigest())
"""

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 300: pass\n"


def masks_hash(script: str, which: str) -> str:
    env = dict(os.environ, GLOG_v="3")
    env["PYTHONPATH"] = os.path.join(os.path.dirname(HERE), "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, script, which], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout.split()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        script = os.path.join(work, "masks.py")  # graph mode compiles from source: a file
        with open(script, "w", encoding="utf-8") as f:
            f.write(CHILD)
        print(
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        for which in ("nn.Dropout", "visionzoo"):
            for state in ("quiet", "loaded"):
                busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)] if state == "loaded" else []
                try:
                    time.sleep(0.5 if busy else 0)
                    hashes = [masks_hash(script, which) for _ in range(args.runs)]
                finally:
                    for b in busy:
                        b.kill()
                        b.wait()
                distinct = len(set(hashes))
                print(f"{which:10s} {state:6s}: {' '.join(h[:12] for h in hashes)}  ({distinct} distinct)")


if __name__ == "__main__":
    main()
