"""Graceful stop: SIGTERM/SIGINT finish the step, write a mid-epoch checkpoint, exit 143/130, and
``--resume auto`` continues so that the run reads like an uninterrupted one, step by step."""

import json
import os
import signal
import subprocess
import time

import pytest

from script_utils import error_lines, script_env
from test_trainer import read_metrics, tiny_cli
from visionzoo.checkpoint import read_training_state, records

# visionzoo's own operators, with the fast convolution's formulation fixed: runs are bit-reproducible
RUN = dict(model="vz_tiny_ops", epoch_size=3, decay_epochs=2, step_log=True)
ENV = {"VISIONZOO_CONV_TUNING": "0"}


def read_steps(directory):
    path = os.path.join(directory, "steps.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def start_and_signal(tmp_path, signals, after_steps, run=RUN):
    """Start a training process, send ``signals`` once ``after_steps`` steps are logged; (proc, stderr)."""
    d = tmp_path / "ckpt"
    proc = subprocess.Popen(
        tiny_cli(tmp_path, **run), env=script_env(ENV), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(read_steps(d)) < after_steps and proc.poll() is None:
        time.sleep(0.02)
    for sig in signals:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc, err


# sink mode: calls of 2 steps (log_interval 2), so a stop can land inside an epoch; steps.jsonl logs each call
@pytest.mark.parametrize("chunk", [1, 2], ids=["loop", "sink"])
def test_sigterm_mid_epoch_then_resume_auto_equals_an_uninterrupted_run(tmp_path, chunk):
    run = dict(RUN, **(dict(dataset_sink_mode=True, log_interval=2) if chunk > 1 else {}))
    ref = subprocess.run(
        tiny_cli(tmp_path / "ref", **run), env=script_env(ENV), capture_output=True, text=True, timeout=600
    )
    assert ref.returncode == 0, ref.stderr[-2000:]
    reference = read_steps(tmp_path / "ref" / "ckpt")
    assert len(reference) == 30 // chunk  # 3 epochs x 10 steps
    assert [r["step"] for r in reference[: 10 // chunk]] == list(range(chunk, 11, chunk))

    proc, err = start_and_signal(tmp_path / "run", [signal.SIGTERM], after_steps=14 // chunk, run=run)  # in epoch 2
    assert proc.returncode == 143, err[-2000:]
    d = tmp_path / "run" / "ckpt"
    done = read_steps(d)
    epoch, step = done[-1]["epoch"], done[-1]["step"]
    assert epoch == 2 and 0 < step < 10  # stopped inside the epoch, after a whole step
    ckpt = d / f"vz_tiny_ops-e0002-s{step:04d}.ckpt"
    lines = [
        line for line in error_lines(subprocess.CompletedProcess([], 143, "", err)) if "SIGTERM received" not in line
    ]
    assert lines == [
        f"stopped by SIGTERM at epoch 2 step {step}/10; checkpoint {ckpt}; to continue, run the same "
        "command with --resume auto"
    ], err[-2000:]
    state = read_training_state(str(ckpt))  # intact, checksum verified
    assert json.loads(state[records.PROGRESS])["step"] == step

    resumed = subprocess.run(
        tiny_cli(tmp_path / "run", resume="auto", **run),
        env=script_env(ENV),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {ckpt} at epoch 2 step {step}" in resumed.stderr
    assert read_steps(d) == reference  # every step's loss and LR, bit for bit
    got, want = read_metrics(d), read_metrics(tmp_path / "ref" / "ckpt")
    assert [r["epoch"] for r in got] == [1, 2, 3]
    for a, b in zip(got, want):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["lr"] == b["lr"]
    assert not ckpt.exists()  # superseded by epoch 2's checkpoint


def test_sigint_between_steps_stops_with_status_130(tmp_path, monkeypatch):
    """In process: SIGINT delivered between two steps, once the trainer has re-armed its handlers.
    (MindSpore 2.10 installs its own SIGINT handler whenever it runs a step, and that one raises
    SIGTERM: a SIGINT that lands inside a step stops the run as SIGTERM, status 143; docs/training.md.)"""
    from test_trainer import tiny_cfg
    from visionzoo.engine.trainer import Trainer, TrainingStopped

    trainer = Trainer(tiny_cfg(tmp_path, **RUN))
    stop_requested = trainer._stop_requested
    calls = []

    def interrupt_then_check():
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return stop_requested()

    monkeypatch.setattr(trainer, "_stop_requested", interrupt_then_check)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingStopped) as stop:
        trainer.fit()
    assert stop.value.exit_status == 130 and (stop.value.epoch, stop.value.step) == (1, 3)
    assert stop.value.path == str(tmp_path / "ckpt" / "vz_tiny_ops-e0001-s0003.ckpt")
    assert json.loads(read_training_state(stop.value.path)[records.PROGRESS])["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_a_second_signal_during_the_save_changes_nothing(tmp_path, monkeypatch, caplog):
    import visionzoo.engine.trainer as trainer_module
    from test_trainer import tiny_cfg
    from visionzoo.engine.trainer import Trainer, TrainingStopped

    real_save = trainer_module.save_checkpoint

    def save_while_signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # handled inside this save, between its Python lines
        return real_save(*args, **kwargs)

    trainer = Trainer(tiny_cfg(tmp_path, **RUN))
    run_chunk = trainer._run_chunk
    calls = []

    def run_and_signal(batches):
        totals = run_chunk(batches)
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return totals

    monkeypatch.setattr(trainer, "_run_chunk", run_and_signal)
    monkeypatch.setattr(trainer_module, "save_checkpoint", save_while_signalled)
    with caplog.at_level("WARNING"), pytest.raises(TrainingStopped) as stop:
        trainer.fit()
    assert "SIGTERM received again: already stopping" in caplog.text
    assert stop.value.exit_status == 143 and stop.value.step == 2
    read_training_state(stop.value.path)  # complete and verified
    assert not [f for f in os.listdir(tmp_path / "ckpt") if f.startswith(".")]  # no temporary file left
