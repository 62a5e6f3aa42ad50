"""Dataset sink mode on the CPU (issue 24): the host stand-in for the device queue, the trainer's sink
path against its step loop, and the run-directory lock."""

import os
import signal
import subprocess
import time

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test / vz_tiny_plain
from script_utils import error_lines, script_env
from test_trainer import OVERFLOWING, read_metrics, tiny_cfg, tiny_cli
from visionzoo.data import build_dataset
from visionzoo.engine.sink import HostSink, open_sink
from visionzoo.engine.trainer import Trainer
from visionzoo.files import LOCK_NAME, DirectoryInUse, lock_directory


class Recorder:
    """A stand-in train step: notes the batches it is fed and returns how many it has seen."""

    def __init__(self):
        self.batches = []

    def __call__(self, images, labels):
        self.batches.append((images.asnumpy().copy(), labels.asnumpy().copy()))
        return len(self.batches)


def test_host_sink_runs_sink_size_steps_per_call_across_epoch_boundaries():
    # 10 rows, batches of 2: 5 batches per epoch; calls of 3 steps run on into the next epoch as the queue does
    data = ds.NumpySlicesDataset(
        (np.arange(10, dtype=np.float32), np.arange(10, dtype=np.int32)), column_names=["image", "label"], shuffle=False
    )
    step = Recorder()
    sink = HostSink(step, data.batch(2), sink_size=3)
    assert sink() == 3 and sink() == 6 and sink() == 9
    sink.close()
    firsts = [int(labels[0]) for _, labels in step.batches]
    assert firsts == [0, 2, 4, 6, 8, 0, 2, 4, 6]
    with pytest.raises(ValueError, match="sink_size must be positive"):
        HostSink(step, data.batch(2), sink_size=0)


DIGITS = dict(crop_padding=2, hflip=0.5, mixup=0.4, mixup_off_epoch=3, image_resize=16, num_samples=160)


def _loop_epoch(bundle, epoch):
    bundle.set_epoch(epoch)
    return [(x.asnumpy(), y.asnumpy()) for x, y in bundle.dataset.create_tuple_iterator(num_epochs=1)]


def test_an_epochs_sink_feeds_the_loops_data_and_a_continuous_stream_would_not(tmp_path):
    """open_sink gives epoch e the step loop's order, augmentation and mixing exactly, from any step; one
    stream for the run (what data_sink builds) repeats the order but not the augmentation (why the sink
    is opened per epoch, engine/sink.py)."""
    bundle = build_dataset(tiny_cfg(tmp_path, **DIGITS), "train")
    n = bundle.num_batches
    assert n == 5
    reference = [_loop_epoch(bundle, e) for e in range(3)]
    for epoch, start in ((0, 0), (1, 2), (2, 0)):
        step = Recorder()
        sink = open_sink(step, bundle, epoch, start, n - start, "CPU")
        sink()
        sink.close()
        assert len(step.batches) == n - start
        for (x, y), (rx, ry) in zip(step.batches, reference[epoch][start:]):
            np.testing.assert_array_equal(x, rx)
            np.testing.assert_array_equal(y, ry)
    soft = [any(not np.isin(y, (0.0, 1.0)).all() for _, y in epoch) for epoch in reference]
    assert soft == [True, True, False]  # mixed labels, then mixup_off_epoch 3 switches mixing off
    # one stream from epoch 0: its second epoch has the second epoch's order but other crops and flips
    bundle.set_epoch(0)
    step = Recorder()
    stream = HostSink(step, bundle.dataset, sink_size=2 * n)
    stream()
    stream.close()
    second = step.batches[n:]
    assert not any(np.array_equal(x, rx) for (x, _), (rx, _) in zip(second, reference[1]))


def _same_run(tmp_path, sink_size=None, **kw):
    """The tiny recipe trained through the loop and through the sink path: both metrics and final weights."""
    out = {}
    for mode in (False, True):
        cfg = tiny_cfg(tmp_path / f"sink_{mode}", dataset_sink_mode=mode, **kw)
        trainer = Trainer(cfg, sink_size=sink_size)
        trainer.fit()
        out[mode] = read_metrics(cfg.ckpt_save_dir), {p.name: p.asnumpy() for p in trainer.train_step.get_parameters()}
    return out[False], out[True]


CASES = {
    "plain": dict(val_while_train=True),
    "accumulation": dict(gradient_accumulation_steps=3),  # 10 batches: 3 updates, the last batch unused
    "ema": dict(ema=True, ema_decay=0.5, val_while_train=True),
    "dynamic_scale": dict(OVERFLOWING),
    "o3": dict(amp_level="O2", keep_batchnorm_fp32=False, loss_scale_type="dynamic", loss_scale=1024),  # all float16
    "mixup_off_epoch": dict(mixup=0.4, cutmix=1.0, mixup_off_epoch=2, crop_padding=2, hflip=0.5),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sink_path_equals_the_step_loop(tmp_path, case):
    kw = dict(dict(epoch_size=2, decay_epochs=1), **CASES[case])
    (loop, loop_w), (sink, sink_w) = _same_run(tmp_path, sink_size=4, **kw)  # 10 steps: 2 sink calls of 5
    assert [r["epoch"] for r in sink] == [r["epoch"] for r in loop] == [1, 2]
    for a, b in zip(sink, loop):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert (a["lr"], a["skipped_steps"], a["loss_scale"]) == (b["lr"], b["skipped_steps"], b["loss_scale"])
        assert a.get("val_top1") == b.get("val_top1")
    assert sorted(sink_w) == sorted(loop_w)
    for name in loop_w:
        np.testing.assert_allclose(sink_w[name], loop_w[name], rtol=1e-5, atol=1e-6, err_msg=name)
    if case == "ema":  # the averages moved inside the compiled step, in both paths
        assert float(sink_w["ema.updates"]) == 2 * 10
    if case == "accumulation":
        assert int(sink_w["global_step"].reshape(-1)[0]) == 2 * 3 and int(sink_w["_vz_accum.micro_step"]) == 0
    if case == "dynamic_scale":
        assert sink[0]["skipped_steps"] >= 1


def test_sink_plan_and_progress_lines_match_the_loop(tmp_path, caplog):
    lines = {}
    for mode in (False, True):
        cfg = tiny_cfg(tmp_path / str(mode), dataset_sink_mode=mode, log_interval=4, epoch_size=1, decay_epochs=1)
        trainer = Trainer(cfg)
        assert trainer.plan()["dataset_sink_mode"] is mode
        caplog.clear()
        with caplog.at_level("INFO", logger="visionzoo.engine.trainer"):
            trainer.fit()
        lines[mode] = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    # sink calls of 2 steps (the largest divisor of 10 up to log_interval 4): a line as each multiple of 4 passes
    assert [line.split(" loss")[0] for line in lines[True]] == ["epoch 1 step 4/10", "epoch 1 step 8/10"]
    assert lines[True] == lines[False]


def test_sink_mid_epoch_stop_resumes_at_the_exact_position(tmp_path, monkeypatch):
    """SIGTERM between two sink calls: a mid-epoch checkpoint; resumed in sink mode it ends like the
    uninterrupted sink run (the epoch's sink reopens at the step it stopped at)."""
    from visionzoo.engine.trainer import TrainingStopped

    run = dict(dataset_sink_mode=True, epoch_size=2, decay_epochs=1, crop_padding=2, hflip=0.5)
    ref = Trainer(tiny_cfg(tmp_path / "ref", **run), sink_size=2)
    ref.fit()
    trainer = Trainer(tiny_cfg(tmp_path / "run", **run), sink_size=2)
    run_chunk, calls = trainer._run_chunk, []

    def run_and_signal(run_steps):
        totals = run_chunk(run_steps)
        calls.append(1)
        if len(calls) == 7:  # epoch 2, after its second call: step 4
            os.kill(os.getpid(), signal.SIGTERM)
        return totals

    monkeypatch.setattr(trainer, "_run_chunk", run_and_signal)
    with pytest.raises(TrainingStopped) as stop:
        trainer.fit()
    assert (stop.value.epoch, stop.value.step) == (2, 4)
    resumed = Trainer(tiny_cfg(tmp_path / "run", resume="auto", **run), sink_size=2)
    resumed.fit()
    got, want = read_metrics(tmp_path / "run" / "ckpt"), read_metrics(tmp_path / "ref" / "ckpt")
    assert [r["epoch"] for r in got] == [1, 2]
    assert got[-1]["train_loss"] == pytest.approx(want[-1]["train_loss"], rel=1e-5)
    for p in ref.network.trainable_params():
        np.testing.assert_allclose(
            resumed.network.parameters_dict()[p.name].asnumpy(), p.asnumpy(), rtol=1e-5, atol=1e-6
        )


def test_lock_directory_is_exclusive_and_freed_by_release(tmp_path):
    lock = lock_directory(tmp_path / "run")
    with pytest.raises(DirectoryInUse) as busy:  # a second open file description: refused like a second process
        lock_directory(tmp_path / "run", fix="use another folder")
    assert busy.value.holder["pid"] == os.getpid()
    assert str(busy.value).startswith(f"{tmp_path / 'run'}: in use by another training run (pid {os.getpid()} on ")
    assert str(busy.value).endswith("; use another folder")
    lock.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    lock_directory(tmp_path / "run").release()  # free again


def _wait_for(predicate, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline and not predicate() and proc.poll() is None:
        time.sleep(0.05)
    assert predicate(), "the first run ended before the test could act"


def test_a_second_run_on_a_live_directory_is_refused_and_kill_then_resume_works(tmp_path):
    run = dict(dataset_sink_mode=True, epoch_size=100, decay_epochs=3, num_samples=96)  # runs until killed
    env = script_env()
    d = tmp_path / "ckpt"
    first = subprocess.Popen(tiny_cli(tmp_path, **run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (d / "vz_tiny_test-e0001.ckpt").exists(), first)
        t0 = time.time()
        second = subprocess.run(
            tiny_cli(tmp_path, resume="auto", **run), env=env, capture_output=True, text=True, timeout=120
        )
        seconds = time.time() - t0
        assert second.returncode == 2, second.stderr[-2000:]
        lines = error_lines(second)
        assert len(lines) == 1 and "Traceback" not in second.stderr
        assert lines[0].startswith(f"error: {d}: in use by another training run (pid {first.pid} on "), lines
        assert "started 20" in lines[0] and "give this run another ckpt_save_dir" in lines[0]
        assert seconds < 60  # refused before building data and model (the interpreter and MindSpore start)
        done = len(read_metrics(d))
        _wait_for(lambda: len(read_metrics(d)) >= done + 2, first)  # the first run goes on undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    last = read_metrics(d)[-1]["epoch"]
    assert [r["epoch"] for r in read_metrics(d)] == list(range(1, last + 1))  # each epoch once
    assert (d / LOCK_NAME).exists()  # left by the killed holder, but no longer locked:
    resumed = subprocess.run(
        tiny_cli(tmp_path, resume="auto", **dict(run, epoch_size=last + 1)),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr
    assert [r["epoch"] for r in read_metrics(d)] == list(range(1, last + 2))
    assert not (d / LOCK_NAME).exists()


@pytest.mark.parametrize("sink", [False, True], ids=["loop", "sink"])
def test_stuck_at_chance_guard_in_both_paths(tmp_path, monkeypatch, sink):
    """A head of zeros predicts uniformly (loss ln 10 at every step) and lr ~0 keeps it there: the guard
    stops the run after epoch 1, through the sink calls as through the loop."""
    import visionzoo.engine.trainer as trainer_module
    from visionzoo.errors import TrainingDiverged

    monkeypatch.setattr(trainer_module, "STUCK_MIN_STEPS", 5)  # the tiny epoch has 10 steps
    cfg = tiny_cfg(
        tmp_path, dataset_sink_mode=sink, lr=1e-12, scheduler="constant", warmup_epochs=0, epoch_size=2, log_interval=4
    )
    trainer = Trainer(cfg).setup()
    for p in trainer.network.classifier.get_parameters():
        p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    with pytest.raises(TrainingDiverged, match=r"stayed at ln\(num_classes\) = 2.3026 .* for all of epoch 1"):
        trainer.fit()


@pytest.mark.parametrize("sink", [False, True], ids=["loop", "sink"])
def test_checkpoint_interval_in_both_paths(tmp_path, sink):
    cfg = tiny_cfg(tmp_path, dataset_sink_mode=sink, epoch_size=3, decay_epochs=2, num_samples=96, ckpt_save_interval=2)
    Trainer(cfg).fit()
    assert sorted(f for f in os.listdir(cfg.ckpt_save_dir) if f.endswith(".ckpt")) == [
        "vz_tiny_test-e0002.ckpt",
        "vz_tiny_test-e0003.ckpt",  # every 2 epochs, and the last
    ]
