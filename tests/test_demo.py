"""End to end as a user runs it: the README's demo recipe (shortened) trains, then validate.py scores it."""

import json
import os

from script_utils import REPO, run_script

DEMO = os.path.join(REPO, "configs", "vgg", "vgg11_bn_cifar_digits_cpu.yaml")


def test_demo_trains_and_validates_well_above_chance(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    short = ["--epoch_size", "3", "--decay_epochs", "2", "--num_samples", "960", "--ckpt_save_dir", ckpt]
    train = run_script("train.py", ["-c", DEMO, *short], timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "visionzoo training vgg11_bn_cifar" in train.stderr  # the start banner
    metrics = [json.loads(line) for line in open(os.path.join(ckpt, "metrics.jsonl"))]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]

    val = run_script("validate.py", ["-c", DEMO, "--ckpt_save_dir", ckpt, "--ckpt_path", "auto"], timeout=600)
    assert val.returncode == 0, val.stderr[-3000:]
    result = json.loads(val.stdout.strip().splitlines()[-1])
    assert result["num_samples"] == 359  # every held-out digit, none dropped
    assert result["top1"] > 0.6  # chance is 0.1
    assert result["top5"] >= result["top1"]
    # validate.py scores the best checkpoint, whose top-1 training logged
    assert abs(result["top1"] - max(m["val_top1"] for m in metrics)) < 1e-6
