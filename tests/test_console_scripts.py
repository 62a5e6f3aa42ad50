"""The console scripts a pip install provides (visionzoo-train/-validate/-export/-infer), used as a user
would: from another folder, with a packaged recipe name, and under msrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from script_utils import error_lines, script_env

BIN = os.path.dirname(sys.executable)
COMMANDS = ("visionzoo-train", "visionzoo-validate", "visionzoo-export", "visionzoo-infer")


def _run(args, cwd, timeout=300, env=None):
    return subprocess.run(args, cwd=cwd, env=script_env(env), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", COMMANDS)
def test_console_script_help(command, tmp_path):
    proc = _run([os.path.join(BIN, command), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {command} ") and "--lr" in proc.stdout


def test_train_dry_run_with_a_packaged_recipe_name(tmp_path):
    proc = _run(
        [
            os.path.join(BIN, "visionzoo-train"),
            "-c",
            "vgg11_bn_cifar_digits_cpu",
            "--dry_run",
            "--ckpt_save_dir",
            str(tmp_path / "ckpt"),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout.strip().splitlines()[-1])
    assert plan["model"] == "vgg11_bn_cifar" and plan["train_samples_per_device"] == 1438
    assert not (tmp_path / "ckpt").exists()  # a dry run writes nothing


def test_unknown_recipe_name_is_one_line_exit_2(tmp_path):
    proc = _run([os.path.join(BIN, "visionzoo-train"), "-c", "vgg11_bn_cifar_digit_cpu", "--dry_run"], tmp_path)
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(
        "error: no recipe file or packaged recipe named 'vgg11_bn_cifar_digit_cpu'; "
        "did you mean: vgg11_bn_cifar_digits_cpu"
    )


def test_msrun_runs_the_console_script(tmp_path):
    """The documented form: msrun runs ``python SCRIPT``, so it gets the console script's path."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "MS_NODE_TIMEOUT": "10"}
    cmd = [
        os.path.join(BIN, "msrun"),
        "--worker_num",
        "2",
        "--local_worker_num",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "--join",
        "True",
        "--log_dir",
        str(tmp_path / "logs"),
        "--cluster_time_out",
        "90",
        os.path.join(BIN, "visionzoo-train"),
        "-c",
        "vgg11_bn_cifar_digits_cpu",
        "--epoch_size",
        "1",
        "--num_samples",
        "32",
        "--batch_size",
        "8",
        "--val_while_train",
        "False",
        "--num_parallel_workers",
        "1",
        "--ckpt_save_dir",
        str(tmp_path / "ckpt"),
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=script_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / "ckpt" / "logs")) == ["rank_0.log", "rank_1.log"]
    assert (tmp_path / "ckpt" / "vgg11_bn_cifar-e0001.ckpt").is_file()
    with open(tmp_path / "ckpt" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert [r["epoch"] for r in records] == [1]  # rank 0 wrote the log once
    log = (tmp_path / "ckpt" / "logs" / "rank_0.log").read_text()
    assert "on CPU x2" in log and "global batch 16" in log  # both workers formed one data-parallel job
