"""End to end as a user runs it: the README's command 1 (its demo recipe unchanged) trains, then validate.py
scores the best checkpoint, reaching the README's claim (>= 95% top-1 on the 359 held-out digits)."""

import json
import os

from script_utils import REPO, run_script

DEMO = os.path.join(REPO, "configs", "vgg", "vgg11_bn_cifar_digits_cpu.yaml")
# The recipe's own ckpt_save_dir, relative to the folder the commands run in.
CKPT = os.path.join("ckpt", "vgg11_bn_cifar_digits_cpu")
#: The README's claim (tests/test_readme.py checks that it says these): top-1 over every held-out digit.
CLAIMED_TOP1, HELD_OUT = 0.95, 359


def test_readme_command_1_reaches_95_percent(tmp_path):
    train = run_script("train.py", ["-c", DEMO], cwd=str(tmp_path), timeout=1800)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "visionzoo training vgg11_bn_cifar" in train.stderr  # the start banner
    metrics = [json.loads(line) for line in open(tmp_path / CKPT / "metrics.jsonl")]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5, 6]  # the recipe's epoch_size

    val = run_script("validate.py", ["-c", DEMO, "--ckpt_path", "auto"], cwd=str(tmp_path), timeout=600)
    assert val.returncode == 0, val.stderr[-3000:]
    result = json.loads(val.stdout.strip().splitlines()[-1])
    assert result["num_samples"] == HELD_OUT  # every held-out digit, none dropped
    assert result["top1"] >= CLAIMED_TOP1
    assert result["top5"] >= result["top1"]
    # validate.py scores the best checkpoint, whose top-1 training logged
    assert abs(result["top1"] - max(m["val_top1"] for m in metrics)) < 1e-6
