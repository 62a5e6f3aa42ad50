"""The models' dropout (``visionzoo.models.layers.Dropout``): nn.Dropout's semantics, masks that the
seed alone decides (not the machine's load), and a fresh mask at every call."""

import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

from script_utils import script_env
from visionzoo.errors import ModelError
from visionzoo.models.layers import Dropout, make_dropout

# 30 training-mode calls of one Dropout(0.2) in graph mode after mindspore.set_seed(7): the hash of
# all the masks, then the hashes of the first two.
MASKS = r"""
import hashlib, numpy as np, mindspore as ms
from mindspore import nn
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(7)
from visionzoo.models.layers import Dropout

class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.drop = Dropout(0.2)

    def construct(self, x):
        return self.drop(x)

net = Net()
net.set_train(True)
x = ms.Tensor(np.ones((64, 2048), np.float32))
every, each = hashlib.md5(), []
for i in range(30):
    mask = net(x).asnumpy()
    every.update(mask.tobytes())
    each.append(hashlib.md5(mask.tobytes()).hexdigest())
print(every.hexdigest(), each[0], each[1])
"""

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 120: pass\n"


def _masks(tmp_path) -> list:
    script = tmp_path / "masks.py"  # graph mode compiles from source: a file, not -c
    script.write_text(MASKS)
    proc = subprocess.run([sys.executable, str(script)], env=script_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_dropout_zeroes_with_probability_p_and_scales_the_rest():
    ms.set_seed(3)
    drop = Dropout(0.25)
    drop.set_train(True)
    x = np.random.RandomState(0).rand(200, 500).astype(np.float32) + 0.5
    out = drop(ms.Tensor(x)).asnumpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
    # 100,000 Bernoulli(0.25) draws: the dropped fraction is within 5 standard deviations of 0.25
    assert abs((~kept).mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / x.size)
    again = drop(ms.Tensor(x)).asnumpy() != 0
    assert (again != kept).mean() > 0.3  # a new mask at every call (two independent masks differ at 37.5%)
    drop.set_train(False)
    np.testing.assert_array_equal(drop(ms.Tensor(x)).asnumpy(), x)


def test_make_dropout_is_the_identity_at_zero_and_refuses_out_of_range_rates():
    assert type(make_dropout(0.0)).__name__ == "Identity"
    assert isinstance(make_dropout(0.5), Dropout)
    for bad in (-0.1, 1.0):
        with pytest.raises(ModelError, match=r"drop rate must be in \[0, 1\)"):
            make_dropout(bad)


def test_dropout_masks_depend_on_the_seed_not_on_the_machines_load(tmp_path):
    """MindSpore's nn.Dropout drew different masks under load in every run measured (docs/mindcv.md);
    these must be the same quiet and with two busy processes competing for the cores."""
    quiet = _masks(tmp_path)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(0.5)
        loaded = _masks(tmp_path)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert loaded == quiet
    assert quiet[1] != quiet[2]  # graph mode too draws a new mask at every call
