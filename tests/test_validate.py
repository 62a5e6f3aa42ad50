"""validate.py: scores equal a hand computation over every sample; AMP O2 on CPU; mismatched and MindCV checkpoints."""

import json

import mindspore as ms
import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test / vz_tiny_plain
from ckpt_utils import train_tiny, write_recipe
from data_utils import write_image_folder
from script_utils import error_lines, run_script
from visionzoo import create_model
from visionzoo.data import build_dataset
from visionzoo.data.digits import load_digits_split

DIGITS_VAL = 359  # digits validation images (data/digits.py)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    cfg, ckpt = train_tiny(str(root / "ckpt"))
    return {"root": root, "cfg": cfg, "ckpt": ckpt, "recipe": write_recipe(str(root / "recipe.yaml"), cfg)}


def _load_weights(net, ckpt):
    """Weights only, with MindSpore's own loader (independent of visionzoo's checkpoint code)."""
    names = {p.name for p in net.get_parameters()}
    ms.load_param_into_net(net, {k: v for k, v in ms.load_checkpoint(ckpt).items() if k in names})
    net.set_train(False)
    return net


def _hand_scores(net, dataset, k=5):
    """top-1, top-k, mean cross-entropy and count, computed in float64 numpy from the logits."""
    hit1 = hitk = 0
    loss = 0.0
    n = 0
    for images, labels in dataset.create_tuple_iterator(num_epochs=1):
        logits = net(images)
        logits = (logits[0] if isinstance(logits, tuple) else logits).asnumpy().astype(np.float64)
        y = labels.asnumpy()
        top = np.argsort(-logits, axis=1, kind="stable")
        hit1 += int((top[:, 0] == y).sum())
        hitk += int((top[:, :k] == y[:, None]).any(axis=1).sum())
        m = logits.max(axis=1, keepdims=True)
        logsumexp = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        loss += float((logsumexp - logits[np.arange(y.size), y]).sum())
        n += y.size
    return {"top1": hit1 / n, "topk": hitk / n, "loss": loss / n, "num_samples": n}


def _last_json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scores_equal_a_hand_computation_over_every_sample(trained):
    # 359 samples in batches of 50: the last batch holds 9, and it is scored
    proc = run_script(
        "tests/tiny_run.py",
        ["validate.py", "-c", trained["recipe"], "--ckpt_path", trained["ckpt"], "--eval_batch_size", "50"],
    )
    got = _last_json(proc)
    assert set(got) == {"top1", "top5", "loss", "num_samples"}
    assert "top-1:" in proc.stdout and "samples: 359" in proc.stdout
    cfg = trained["cfg"].replace(eval_batch_size=50)
    val = build_dataset(cfg, "val")
    assert val.num_batches == 8 and len(load_digits_split("val")[1]) == DIGITS_VAL
    ref = _hand_scores(_load_weights(create_model("vz_tiny_test", num_classes=10), trained["ckpt"]), val.dataset)
    assert got["num_samples"] == ref["num_samples"] == DIGITS_VAL
    assert got["top1"] == pytest.approx(ref["top1"], abs=1e-12)
    assert got["top5"] == pytest.approx(ref["topk"], abs=1e-12)
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert 0.1 < got["top1"] <= got["top5"] <= 1.0  # trained: better than chance


def test_amp_o2_on_cpu(trained):
    """validate honours --amp_level typed on its command line as val_amp_level; O2 runs on CPU."""
    from visionzoo.tasks.validate import run_validation

    o0 = run_validation(trained["cfg"].replace(ckpt_path=trained["ckpt"]))
    proc = run_script(
        "tests/tiny_run.py",
        ["validate.py", "-c", trained["recipe"], "--ckpt_path", trained["ckpt"], "--amp_level", "O2"],
    )
    o2 = _last_json(proc)
    assert o2["num_samples"] == o0["num_samples"] == DIGITS_VAL
    assert abs(o2["top1"] - o0["top1"]) <= 3 / DIGITS_VAL
    assert o2["loss"] == pytest.approx(o0["loss"], abs=2e-2)
    assert o2["loss"] != o0["loss"]  # float16 arithmetic really ran
    # the recipe's own amp_level (a training setting) does not change validation precision
    cfg_o2_training = trained["cfg"].replace(amp_level="O2", ckpt_path=trained["ckpt"])
    assert run_validation(cfg_o2_training)["loss"] == o0["loss"]


@pytest.mark.parametrize(
    "other, args, fragment",
    [
        # another number of classes; for a real model too (its head is not silently re-initialised)
        ({"model": "vz_tiny_test", "num_classes": 7}, [], "classifier.weight (model [10, 32], checkpoint [7, 32])"),
        (
            {"model": "googlenet_cifar", "num_classes": 7},
            ["--model", "googlenet_cifar", "--image_resize", "32"],
            "classifier.weight (model [10, 1024], checkpoint [7, 1024])",
        ),
        ({"model": "vz_tiny_plain", "num_classes": 10}, [], "features.1.moving_mean"),  # another model (no BatchNorm)
    ],
)
def test_a_checkpoint_that_does_not_fit_is_one_line_exit_2(trained, tmp_path, other, args, fragment):
    ckpt = str(tmp_path / "other.ckpt")
    ms.save_checkpoint(create_model(other["model"], num_classes=other["num_classes"]), ckpt)
    proc = run_script("tests/tiny_run.py", ["validate.py", "-c", trained["recipe"], "--ckpt_path", ckpt, *args])
    assert proc.returncode == 2, proc.stderr
    errors = error_lines(proc)  # WARNING logs count: no "re-initialised" warning before the error
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: ") and fragment in errors[0] and ckpt in errors[0]
    assert "num_classes 10" in errors[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_ckpt_path_auto_and_missing(trained, tmp_path):
    from visionzoo.tasks.validate import run_validation

    result = run_validation(trained["cfg"].replace(ckpt_path="auto"))
    assert result["checkpoint"] == trained["ckpt"]  # the latest epoch (no best without val_while_train)
    proc = run_script(
        "tests/tiny_run.py", ["validate.py", "-c", trained["recipe"], "--ckpt_path", str(tmp_path / "missing.ckpt")]
    )
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "not found" in proc.stderr, proc.stderr


def test_scores_a_mindcv_googlenet_checkpoint(tmp_path):
    """A checkpoint written by MindCV for googlenet loads strictly and scores like MindCV's own network."""
    import mindcv

    ms.set_seed(0)
    theirs = mindcv.create_model("googlenet", num_classes=4)
    ckpt = str(tmp_path / "mindcv_googlenet.ckpt")
    ms.save_checkpoint(theirs, ckpt)
    data = str(tmp_path / "data")
    write_image_folder(data, "val", ["a", "b", "c", "d"], per_class=2, size=(40, 30))
    args = {
        "model": "googlenet",
        "dataset": "imagenet",
        "data_dir": data,
        "num_classes": "4",
        "image_resize": "224",
        "batch_size": "3",
        "num_parallel_workers": "1",
        "device_target": "CPU",
    }
    argv = ["validate.py", "--ckpt_path", ckpt]
    for k, v in args.items():
        argv += [f"--{k}", v]
    got = _last_json(run_script(argv[0], argv[1:]))
    from visionzoo.config import load_config

    val = build_dataset(load_config(None, args), "val")  # 8 images in batches of 3: 3, 3, 2
    ref = _hand_scores(theirs.set_train(False), val.dataset, k=4)
    assert got["num_samples"] == ref["num_samples"] == 8
    assert got["top5"] is None  # fewer than 5 classes
    assert got["top1"] == pytest.approx(ref["top1"], abs=1e-12)
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5)
