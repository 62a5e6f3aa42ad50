"""The generic trainer on the embedded digits data with a tiny registered model (seconds per run)."""

import json
import os
import signal
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test / vz_tiny_plain
from script_utils import REPO, error_lines, script_env
from visionzoo.config import load_config
from visionzoo.engine.trainer import Trainer
from visionzoo.errors import ConfigError, TrainingDiverged

TINY = {
    "model": "vz_tiny_test",
    "dataset": "digits",
    "num_classes": "10",
    "image_resize": "16",
    "batch_size": "32",
    "num_parallel_workers": "1",
    "scheduler": "cosine_decay",
    "lr": "0.2",
    "min_lr": "0.0",
    "warmup_epochs": "1",
    "decay_epochs": "3",
    "epoch_size": "4",
    "weight_decay": "1e-4",
    "weight_decay_filter": "norm_and_bias",
    "num_samples": "320",
    "device_target": "CPU",
    "seed": "7",
    "log_interval": "1000",
    "dataset_sink_mode": "False",  # the step loop; tests/test_sink.py runs the sink path against it
}


def tiny_cfg(tmp_path, **kw):
    values = dict(TINY, ckpt_save_dir=str(tmp_path / "ckpt"))
    values.update({k: str(v) for k, v in kw.items()})
    return load_config(None, values)


def read_metrics(directory):
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def tiny_cli(tmp_path, **kw):
    values = dict(TINY, ckpt_save_dir=str(tmp_path / "ckpt"))
    values.update({k: str(v) for k, v in kw.items()})
    args = []
    for k, v in values.items():
        args += [f"--{k}", v]
    return [sys.executable, os.path.join(REPO, "tests", "tiny_run.py"), os.path.join(REPO, "train.py"), *args]


def test_training_lowers_loss_and_writes_everything(tmp_path):
    cfg = tiny_cfg(tmp_path, val_while_train=True, keep_checkpoint_max=2, num_samples=1438)  # all training digits
    result = Trainer(cfg).fit()
    d = cfg.ckpt_save_dir
    records = read_metrics(d)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    for r in records:
        for key in (
            "train_loss",
            "lr",
            "epoch_seconds",
            "images_per_second",
            "val_top1",
            "val_top5",
            "val_loss",
            "rss_mb",
            "peak_rss_mb",
        ):
            assert key in r, key
        assert 50 < r["rss_mb"] <= r["peak_rss_mb"]  # MindSpore alone holds hundreds of MiB
    peaks = [r["peak_rss_mb"] for r in records]
    assert peaks == sorted(peaks)  # a high-water mark never goes down
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert records[-1]["val_top1"] > 0.5  # 10 classes: chance is 0.1
    files = sorted(os.listdir(d))
    assert files.count("vz_tiny_test-best.ckpt") == 1
    assert [f for f in files if "-e0" in f] == ["vz_tiny_test-e0003.ckpt", "vz_tiny_test-e0004.ckpt"]  # keep 2
    assert not [f for f in files if f.startswith(".")]  # no temporary files left
    with open(os.path.join(d, "metrics.png"), "rb") as f:  # the curves, plotted at the end
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert load_config(os.path.join(d, "config.yaml")) == cfg
    assert json.load(open(os.path.join(d, "classes.json"))) == [str(i) for i in range(10)]
    assert result["checkpoint"].endswith("vz_tiny_test-e0004.ckpt")
    # the checkpoint holds what resume needs
    params = ms.load_checkpoint(result["checkpoint"])
    assert int(params["_vz_epoch"].asnumpy()) == 4
    assert int(params["global_step"].asnumpy().reshape(-1)[0]) == 4 * (1438 // 32)
    assert any(k.startswith("moments.") for k in params)
    assert "_vz_loss_scale" in params and params["_vz_model"] == "vz_tiny_test"


def test_same_seed_same_losses(tmp_path):
    a = Trainer(tiny_cfg(tmp_path / "a", epoch_size=2, decay_epochs=1)).fit()
    b = Trainer(tiny_cfg(tmp_path / "b", epoch_size=2, decay_epochs=1)).fit()
    c = Trainer(tiny_cfg(tmp_path / "c", epoch_size=2, decay_epochs=1, seed=8)).fit()
    assert a["train_loss"] == b["train_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_schedule_advances_per_update_under_accumulation(tmp_path):
    trainer = Trainer(tiny_cfg(tmp_path, gradient_accumulation_steps=2, epoch_size=2, decay_epochs=1))
    trainer.fit()
    # 10 batches per epoch, 5 optimizer updates per epoch
    assert trainer.updates_per_epoch == 5 and len(trainer.lr) == 10
    assert int(trainer.optimizer.global_step.asnumpy().reshape(-1)[0]) == 10


def _weights(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


def test_accumulation_equals_a_bigger_batch(tmp_path):
    common = dict(
        model="vz_tiny_plain",
        shuffle=False,
        scheduler="constant",
        warmup_epochs=0,
        epoch_size=1,
        weight_decay=0,
        lr=0.05,
        opt="sgd",
        momentum=0.9,
        hflip=0,
    )
    big = Trainer(tiny_cfg(tmp_path / "big", batch_size=32, **common))
    big.fit()
    acc = Trainer(tiny_cfg(tmp_path / "acc", batch_size=16, gradient_accumulation_steps=2, **common))
    acc.fit()
    wb, wa = _weights(big.network), _weights(acc.network)
    for name in wb:
        np.testing.assert_allclose(wa[name], wb[name], rtol=1e-4, atol=1e-6, err_msg=name)


def _first_update_norm(directory, **kw):
    cfg = tiny_cfg(
        directory,
        opt="sgd",
        momentum=0.0,
        weight_decay=0,
        scheduler="constant",
        warmup_epochs=0,
        lr=1.0,
        epoch_size=1,
        num_samples=32,
        **kw,
    )
    trainer = Trainer(cfg).setup()
    before = _weights(trainer.network)
    trainer.fit()
    after = _weights(trainer.network)
    return np.sqrt(sum(float(((after[k] - before[k]) ** 2).sum()) for k in before))


def test_gradient_clipping_engages_and_bounds_the_first_update(tmp_path):
    free = _first_update_norm(tmp_path / "free")
    clipped = _first_update_norm(tmp_path / "clip", clip_grad=True, clip_value=0.01)
    assert free > 0.1  # unclipped, the gradient's global norm is far above the clip value...
    # ...so the clip engaged: SGD with lr 1 moves the weights by exactly the clipped norm
    assert clipped == pytest.approx(0.01, rel=1e-3)


def test_amp_o2_on_cpu_trains_and_saves_float32(tmp_path):
    cfg = tiny_cfg(tmp_path, amp_level="O2", loss_scale_type="fixed", loss_scale=128, epoch_size=3, decay_epochs=2)
    result = Trainer(cfg).fit()
    records = read_metrics(cfg.ckpt_save_dir)
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    params = ms.load_checkpoint(result["checkpoint"])
    for name, p in params.items():
        if name.startswith(("features.", "classifier.")):
            assert p.dtype == ms.float32, name


def test_warm_start_from_ckpt_path(tmp_path):
    first = Trainer(tiny_cfg(tmp_path / "a", epoch_size=1, warmup_epochs=0, decay_epochs=1)).fit()
    trainer = Trainer(
        tiny_cfg(tmp_path / "b", ckpt_path=first["checkpoint"], epoch_size=1, warmup_epochs=0, decay_epochs=1)
    )
    trainer.setup()
    saved = ms.load_checkpoint(first["checkpoint"])
    for p in trainer.network.trainable_params():
        np.testing.assert_array_equal(p.asnumpy(), saved[p.name].asnumpy())
    # optimizer state is not taken from a warm start
    assert int(trainer.optimizer.global_step.asnumpy().reshape(-1)[0]) == 0


def test_accumulation_longer_than_an_epoch_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="fewer than gradient_accumulation_steps"):
        Trainer(tiny_cfg(tmp_path, gradient_accumulation_steps=64)).setup()


@pytest.mark.parametrize("sink", [False, True], ids=["loop", "sink"])
def test_kill_and_resume_continues_exactly(tmp_path, sink):
    """SIGKILL a real training process after its second checkpoint; resume auto gives the same run."""
    run = dict(epoch_size=6, decay_epochs=5, dataset_sink_mode=sink)
    env = script_env()
    ref = subprocess.run(tiny_cli(tmp_path / "ref", **run), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    reference = read_metrics(tmp_path / "ref" / "ckpt")

    d = tmp_path / "killed" / "ckpt"
    proc = subprocess.Popen(
        tiny_cli(tmp_path / "killed", **run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (d / "vz_tiny_test-e0002.ckpt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (d / "vz_tiny_test-e0002.ckpt").exists()
    done_before = len(read_metrics(d))
    assert done_before < 6
    resumed = subprocess.run(
        tiny_cli(tmp_path / "killed", resume="auto", **run), env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr
    records = read_metrics(d)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]  # continued, no duplicates
    for got, want in zip(records, reference):
        assert got["lr"] == pytest.approx(want["lr"], rel=1e-6)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)


def test_resume_with_a_lower_backbone_lr_continues_exactly(tmp_path):
    """backbone_lr_scale gives the optimizer one group per (backbone/head, decay) with its own LR table;
    a run resumed from its epoch-1 checkpoint ends with the weights of the uninterrupted run."""
    run = dict(epoch_size=3, decay_epochs=2, backbone_lr_scale=0.25)
    ref = Trainer(tiny_cfg(tmp_path / "ref", **run)).fit()
    first = tmp_path / "ref" / "ckpt" / "vz_tiny_test-e0001.ckpt"
    assert first.exists()
    resumed = Trainer(tiny_cfg(tmp_path / "resumed", resume=str(first), **run)).fit()
    want, got = ms.load_checkpoint(ref["checkpoint"]), ms.load_checkpoint(resumed["checkpoint"])
    names = [k for k in want if k.startswith(("features.", "classifier."))]
    assert "classifier.weight" in names and "features.0.weight" in names
    for name in names:
        np.testing.assert_allclose(got[name].asnumpy(), want[name].asnumpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    # and the scale did something: the same run at scale 1 ends elsewhere
    plain = ms.load_checkpoint(Trainer(tiny_cfg(tmp_path / "plain", epoch_size=3, decay_epochs=2)).fit()["checkpoint"])
    assert not np.allclose(plain["features.0.weight"].asnumpy(), want["features.0.weight"].asnumpy(), atol=1e-4)


def test_diverging_loss_stops_with_one_line(tmp_path):
    proc = subprocess.run(
        tiny_cli(tmp_path, lr=1e30, warmup_epochs=0, scheduler="constant", epoch_size=2),
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert lines[-1].startswith("error: loss became") and "training stopped" in lines[-1]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--device_target", "Ascend"], "device_target Ascend is not available here"),
        (
            ["--resume", "/nonexistent/x.ckpt"],
            "resume checkpoint not found: '/nonexistent/x.ckpt'; pass an existing .ckpt file or --resume auto",
        ),
        (["--ckpt_path", "/nonexistent/w.ckpt"], "/nonexistent/w.ckpt"),
    ],
)
def test_bad_run_inputs_are_one_line(tmp_path, args, fragment):
    cmd = tiny_cli(tmp_path, epoch_size=1, warmup_epochs=0) + args
    proc = subprocess.run(cmd, env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and fragment in lines[0], proc.stderr[-2000:]


# Under O2 the first steps' scaled float16 gradients overflow at 2^24; the dynamic scale walks down.
HUGE_SCALE = 2.0**24
OVERFLOWING = dict(amp_level="O2", loss_scale_type="dynamic", loss_scale=HUGE_SCALE, epoch_size=2, decay_epochs=1)


def test_dynamic_loss_scale_on_cpu_skips_overflows_and_records_them(tmp_path):
    cfg = tiny_cfg(tmp_path, **OVERFLOWING)
    trainer = Trainer(cfg)
    result = trainer.fit()
    records = read_metrics(cfg.ckpt_save_dir)
    skipped = [r["skipped_steps"] for r in records]
    assert skipped[0] >= 1  # overflows happened and were dropped, not fatal
    # no growth within 2000 clean steps: every skip halved the scale once
    assert records[-1]["loss_scale"] == HUGE_SCALE / 2 ** sum(skipped)
    assert records[0]["loss_scale"] == HUGE_SCALE / 2 ** skipped[0]
    # the LR schedule advanced only for applied updates
    assert int(trainer.optimizer.global_step.asnumpy().reshape(-1)[0]) == 2 * 10 - sum(skipped)
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    params = ms.load_checkpoint(result["checkpoint"])
    assert int(params["_vz_skipped_steps"].asnumpy()) == sum(skipped)
    assert float(params["_vz_loss_scale"].asnumpy()) == records[-1]["loss_scale"]
    # resume restores the scale, its counter and the skipped total
    first = os.path.join(cfg.ckpt_save_dir, "vz_tiny_test-e0001.ckpt")
    resumed = Trainer(tiny_cfg(tmp_path, resume=first, **OVERFLOWING)).setup()
    assert resumed._restore(first) == 1
    assert resumed.current_loss_scale() == records[0]["loss_scale"]
    assert resumed.skipped_total == skipped[0]


def test_step_loop_read_like_a_sink_call_gives_the_same_epoch(tmp_path):
    """The sink path's accounting (totals read once per sink_size steps) driven on the CPU: reading
    every 4 steps (10 steps per epoch: chunks of 4, 4, 2) gives the numbers of reading every step."""
    Trainer(tiny_cfg(tmp_path / "every", **OVERFLOWING)).fit()
    Trainer(tiny_cfg(tmp_path / "chunked", **OVERFLOWING), read_every=4).fit()
    every, chunked = read_metrics(tmp_path / "every" / "ckpt"), read_metrics(tmp_path / "chunked" / "ckpt")
    for a, b in zip(every, chunked):
        assert a["skipped_steps"] == b["skipped_steps"] and a["loss_scale"] == b["loss_scale"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    assert every[0]["skipped_steps"] >= 1


def test_diverging_inside_a_sink_sized_chunk_names_the_steps(tmp_path):
    cfg = tiny_cfg(tmp_path, lr=1e30, warmup_epochs=0, scheduler="constant", epoch_size=1)
    with pytest.raises(TrainingDiverged) as err:
        Trainer(cfg, read_every=5).fit()
    assert err.value.what.startswith("loss became non-finite at epoch 1 steps ")
    assert "no checkpoint was written yet" in err.value.what


@pytest.mark.cpu_only("checks that visionzoo's fast CPU ops are on in this process")
def test_conv_tuning_off_gives_bit_identical_weights_with_visionzoo_ops(tmp_path):
    """Two training processes, same seed, VISIONZOO_CONV_TUNING=0, on a model whose convolutions and
    pools are visionzoo's fast ops, with the models' dropout: the saved weights agree bit for bit."""
    from visionzoo import create_model
    from visionzoo.ops import Conv2d, MaxPool2d

    net = create_model("vz_tiny_ops", num_classes=10)
    fast = [c for _, c in net.cells_and_names() if isinstance(c, (Conv2d, MaxPool2d))]
    assert len(fast) == 4 and all(c.fast for c in fast)  # the CPU fast paths are on for this model
    run = dict(model="vz_tiny_ops", epoch_size=1, warmup_epochs=0, decay_epochs=1, drop_rate=0.5)
    env = script_env({"VISIONZOO_CONV_TUNING": "0"})
    saved = []
    for name in ("a", "b"):
        proc = subprocess.run(tiny_cli(tmp_path / name, **run), env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        saved.append(ms.load_checkpoint(str(tmp_path / name / "ckpt" / "vz_tiny_ops-e0001.ckpt")))
    a, b = saved
    weights = [k for k in a if k.startswith(("features.", "classifier."))]
    assert len(weights) >= 8
    for k in weights:
        np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy(), err_msg=k)
