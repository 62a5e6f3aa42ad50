"""Data-parallel training and evaluation under msrun, on this CPU, over loopback (127.0.0.1).

Every msrun job here runs ``tests/dist_run.py`` (the tiny models plus opt-in test hooks) on the
embedded digits data; a job costs about 25 s on 2 cores, mostly process start-up.

Sharding layout that makes the equivalence test exact: without shuffling, the training order is
the sample order and rank ``k`` of 2 reads positions ``k::2`` (see ``ShardSampler``), batched by
``b``. Step ``j`` on rank ``k`` therefore sees positions ``2*j*b + k, 2*j*b + k + 2, ...``, and the two
ranks' batches together are exactly positions ``2*j*b .. 2*j*b + 2*b - 1``: the batch of ``2*b`` a
single process reads at step ``j``. With gradient mean across ranks and a model without
BatchNorm (whose running statistics are per rank), both runs make the same updates.
"""

import json
import os
import socket
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test / vz_tiny_plain
from script_utils import REPO, script_env
from visionzoo.config import load_config
from visionzoo.distributed import RunContext, is_listening, rank_log_path
from visionzoo.engine.trainer import Trainer

MSRUN = os.path.join(os.path.dirname(sys.executable), "msrun")
JOB_TIMEOUT = 240  # seconds; a job that needs longer has hung

#: the data-parallel job the tests share: 2 workers x batch 8, no shuffle, model without BatchNorm
PLAIN = {
    "model": "vz_tiny_plain",
    "dataset": "digits",
    "num_classes": "10",
    "image_resize": "16",
    "batch_size": "8",
    "num_parallel_workers": "1",
    "scheduler": "constant",
    "lr": "0.05",
    "warmup_epochs": "0",
    "epoch_size": "1",
    "weight_decay": "1e-4",
    "num_samples": "64",
    "shuffle": "False",
    "device_target": "CPU",
    "seed": "7",
    "log_interval": "1000",
    "eval_batch_size": "32",
    "crop_padding": "0",  # no random augmentation
    "dataset_sink_mode": "False",  # the step loop (the sink path: its own tests below)
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_args(values):
    args = []
    for k, v in values.items():
        args += [f"--{k}", str(v)]
    return args


def msrun_cmd(log_dir, port, script, args, workers=2, local_workers=None, node_rank=None):
    cmd = [
        MSRUN,
        "--worker_num",
        str(workers),
        "--local_worker_num",
        str(local_workers or workers),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "--join",
        "True",
        "--log_dir",
        str(log_dir),
        "--cluster_time_out",
        "90",
    ]
    if node_rank is not None:
        cmd += ["--node_rank", str(node_rank)]
    return cmd + [os.path.join(REPO, "tests", "dist_run.py"), os.path.join(REPO, script), *args]


def msrun_env(extra=None):
    env = script_env(extra)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # msrun spawns `python`
    env["MS_NODE_TIMEOUT"] = "10"  # the scheduler gives up on a dead worker after 10 s, not MindSpore's default
    return env


def msrun(tmp, script, args, env=None, **kw):
    """Run one msrun job; returns (completed process with stdout+stderr in .stdout, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        msrun_cmd(tmp / f"msrun_logs_{time.monotonic_ns()}", free_port(), script, args, **kw),
        cwd=str(tmp),
        env=msrun_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=JOB_TIMEOUT,
    )
    return proc, time.perf_counter() - t0


def weights(path, trainable_only=False):
    params = ms.load_checkpoint(str(path))
    """Weights and optimizer state in a checkpoint (not the LR table, which depends on epoch_size)."""
    out = {
        k: v.asnumpy()
        for k, v in params.items()
        if isinstance(v, ms.Parameter) and not k.startswith("_vz") and k != "learning_rate"
    }
    if trainable_only:
        out = {k: v for k, v in out.items() if not k.startswith(("moments.", "global_step")) and "moving_" not in k}
    return out


def read_metrics(directory):
    with open(os.path.join(directory, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def plain_job(tmp_path_factory):
    """2 workers x batch 8 for one epoch; every rank dumps its final weights."""
    tmp = tmp_path_factory.mktemp("plain_job")
    values = dict(PLAIN, ckpt_save_dir=str(tmp / "ckpt"), val_while_train="True")
    proc, seconds = msrun(tmp, "train.py", cli_args(values), env={"VZ_TEST_DUMP_WEIGHTS": str(tmp / "dump")})
    return {"tmp": tmp, "values": values, "proc": proc, "seconds": seconds, "ckpt_dir": tmp / "ckpt"}


@pytest.fixture(scope="module")
def single_reference(tmp_path_factory):
    """The same recipe in one process with batch 16 (= 2 x 8), for two epochs, keeping every checkpoint."""
    tmp = tmp_path_factory.mktemp("single")
    cfg = load_config(None, dict(PLAIN, batch_size="16", epoch_size="2", ckpt_save_dir=str(tmp / "ckpt")))
    Trainer(cfg).fit()
    return tmp / "ckpt"


def test_two_workers_train_identically_and_only_rank0_writes(plain_job):
    proc, d = plain_job["proc"], plain_job["ckpt_dir"]
    assert proc.returncode == 0, proc.stdout[-3000:]
    # every rank ends with the same weights (and optimizer state): gradients are all-reduced
    w0, w1 = weights(plain_job["tmp"] / "dump" / "rank_0.ckpt"), weights(plain_job["tmp"] / "dump" / "rank_1.ckpt")
    assert sorted(w0) == sorted(w1) and len(w0) >= 6
    for name in w0:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)
    saved = weights(d / "vz_tiny_plain-e0001.ckpt")
    assert sorted(saved) == sorted(w1)
    for name, value in saved.items():
        np.testing.assert_array_equal(value, w1[name], err_msg=name)
    # only rank 0 wrote checkpoints, metrics and config: one record, one result line, no duplicates
    assert sorted(set(os.listdir(d)) - {"metrics.png"}) == [
        "classes.json",
        "config.yaml",
        "logs",
        "metrics.jsonl",
        "vz_tiny_plain-best.ckpt",
        "vz_tiny_plain-e0001.ckpt",
    ]
    assert [r["epoch"] for r in read_metrics(d)] == [1]
    assert len([r for r in json_lines(proc.stdout) if "checkpoint" in r]) == 1
    # each rank logs to its own file; only rank 0 reports epochs; the banner gives the global batch
    log0 = open(rank_log_path(str(d), 0)).read()
    log1 = open(rank_log_path(str(d), 1)).read()
    assert sorted(os.listdir(d / "logs")) == ["rank_0.log", "rank_1.log"]
    assert "global batch 16 (8 per device x 2 devices x 1 accumulation)" in log0
    assert "epoch 1/1: train_loss" in log0 and "epoch 1/1:" not in log1
    assert "digits train shard 1/2: 32 samples" in log1 and "digits val shard 1/2: 179 samples" in log1


def test_two_workers_equal_one_process_with_double_batch(plain_job, single_reference):
    assert plain_job["proc"].returncode == 0, plain_job["proc"].stdout[-3000:]
    dist = weights(plain_job["ckpt_dir"] / "vz_tiny_plain-e0001.ckpt")
    single = weights(single_reference / "vz_tiny_plain-e0001.ckpt")
    assert sorted(dist) == sorted(single)
    assert int(dist["global_step"].reshape(-1)[0]) == int(single["global_step"].reshape(-1)[0]) == 4
    for name in dist:
        np.testing.assert_allclose(dist[name], single[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # the weights moved: the comparison is not between two untouched initialisations
    init = Trainer(load_config(None, dict(PLAIN, ckpt_save_dir="unused"))).setup().network
    moved = {p.name: p.asnumpy() for p in init.trainable_params()}
    assert max(float(np.abs(dist[k] - v).max()) for k, v in moved.items()) > 1e-3
    # the validation inside training (2 shards, all-reduced) scored every sample once
    record = read_metrics(plain_job["ckpt_dir"])[0]
    assert record["val_top1"] is not None and 0 <= record["val_top1"] <= 1


def test_distributed_validation_equals_single_process(plain_job, tmp_path):
    assert plain_job["proc"].returncode == 0, plain_job["proc"].stdout[-3000:]
    from visionzoo.tasks.validate import run_validation

    ckpt = str(plain_job["ckpt_dir"] / "vz_tiny_plain-e0001.ckpt")
    values = dict(PLAIN, ckpt_save_dir=str(tmp_path / "unused"), ckpt_path=ckpt)
    proc, _ = msrun(tmp_path, "validate.py", cli_args(values))
    assert proc.returncode == 0, proc.stdout[-3000:]
    reported = [r for r in json_lines(proc.stdout) if "top1" in r]
    assert len(reported) == 1  # only rank 0 prints
    dist = reported[0]
    single = run_validation(load_config(None, values))
    assert dist["num_samples"] == single["num_samples"] == 359  # uneven: shards of 180 and 179
    assert dist["top1"] == single["top1"] and dist["top5"] == single["top5"]
    assert dist["loss"] == pytest.approx(single["loss"], rel=1e-6)  # batches differ, so float32 sums differ


def test_distributed_resume_continues_like_one_process(plain_job, single_reference):
    assert plain_job["proc"].returncode == 0, plain_job["proc"].stdout[-3000:]
    values = dict(plain_job["values"], epoch_size="2", resume="auto", val_while_train="False")
    tmp = plain_job["tmp"]
    proc, _ = msrun(tmp, "train.py", cli_args(values), env={"VZ_TEST_DUMP_WEIGHTS": str(tmp / "dump_resumed")})
    assert proc.returncode == 0, proc.stdout[-3000:]
    d = plain_job["ckpt_dir"]
    for rank in (0, 1):  # both ranks read rank 0's checkpoint
        assert "vz_tiny_plain-e0001.ckpt at epoch 1" in open(rank_log_path(str(d), rank)).read()
    assert [r["epoch"] for r in read_metrics(d)] == [1, 2]
    resumed = weights(d / "vz_tiny_plain-e0002.ckpt")
    w1 = weights(tmp / "dump_resumed" / "rank_1.ckpt")
    single = weights(single_reference / "vz_tiny_plain-e0002.ckpt")
    for name in resumed:
        np.testing.assert_array_equal(resumed[name], w1[name], err_msg=name)
        np.testing.assert_allclose(resumed[name], single[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_two_workers_in_sink_mode_train_like_the_step_loop(plain_job, tmp_path):
    """The sink path (its host stand-in for the device queue) under msrun: the same job with
    dataset_sink_mode True ends with the step loop's weights on every rank; only rank 0 writes."""
    assert plain_job["proc"].returncode == 0, plain_job["proc"].stdout[-3000:]
    values = dict(plain_job["values"], ckpt_save_dir=str(tmp_path / "ckpt"), dataset_sink_mode="True")
    proc, _ = msrun(tmp_path, "train.py", cli_args(values), env={"VZ_TEST_DUMP_WEIGHTS": str(tmp_path / "dump")})
    assert proc.returncode == 0, proc.stdout[-3000:]
    loop = weights(plain_job["ckpt_dir"] / "vz_tiny_plain-e0001.ckpt")
    w0, w1 = weights(tmp_path / "dump" / "rank_0.ckpt"), weights(tmp_path / "dump" / "rank_1.ckpt")
    for name in loop:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)
        np.testing.assert_allclose(w0[name], loop[name], rtol=1e-5, atol=1e-7, err_msg=name)
    sink, looped = read_metrics(tmp_path / "ckpt"), read_metrics(plain_job["ckpt_dir"])
    assert [r["epoch"] for r in sink] == [1] and sink[0]["val_top1"] == looped[0]["val_top1"]
    assert sink[0]["train_loss"] == pytest.approx(looped[0]["train_loss"], rel=1e-5)
    assert "logs" in os.listdir(tmp_path / "ckpt") and not os.path.exists(tmp_path / "ckpt" / ".lock")


def test_eight_workers_on_one_host_train_two_steps(tmp_path):
    """msrun --worker_num 8 --local_worker_num 8 on this CPU: 8 x batch 8 over 128 digits, 2 steps each,
    through the sink path; one record, rank 0's checkpoint only."""
    values = dict(PLAIN, ckpt_save_dir=str(tmp_path / "ckpt"), num_samples="128", dataset_sink_mode="True")
    proc, seconds = msrun(tmp_path, "train.py", cli_args(values), workers=8)
    assert proc.returncode == 0, proc.stdout[-3000:]
    d = tmp_path / "ckpt"
    assert [r["epoch"] for r in read_metrics(d)] == [1]
    assert sorted(os.listdir(d / "logs")) == [f"rank_{k}.log" for k in range(8)]
    log0 = open(rank_log_path(str(d), 0)).read()
    assert "global batch 64 (8 per device x 8 devices x 1 accumulation), 2 steps/epoch" in log0
    assert [f for f in os.listdir(d) if f.endswith(".ckpt")] == ["vz_tiny_plain-e0001.ckpt"]
    print(f"8-worker msrun job: {seconds:.1f} s")


def launch_two_nodes(tmp_path, values, env=None):
    """msrun --node_rank 0 and --node_rank 1 on 127.0.0.1, one worker each, one master port.

    Node 1 starts once node 0's scheduler listens (a real node 1 has no scheduler; here its
    launcher starts one too, which finds the port served and exits). Returns (outputs, seconds).
    """
    port, env = free_port(), msrun_env(env)
    procs = []
    t0 = time.perf_counter()
    for node in (0, 1):
        cmd = msrun_cmd(
            tmp_path / f"node{node}_logs", port, "train.py", cli_args(values), local_workers=1, node_rank=node
        )
        procs.append(
            subprocess.Popen(
                cmd, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
        deadline = time.monotonic() + 60
        while node == 0 and not is_listening("127.0.0.1", port, timeout=1) and time.monotonic() < deadline:
            time.sleep(0.2)
    try:
        outputs = [p.communicate(timeout=JOB_TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return procs, outputs, time.perf_counter() - t0


def test_two_nodes_on_loopback_form_one_job(tmp_path):
    """Two launchers, one worker each, form one 2-rank job (a model with BatchNorm, shuffled data)."""
    values = dict(
        PLAIN,
        model="vz_tiny_test",
        shuffle="True",
        batch_size="16",
        num_samples="128",
        ckpt_save_dir=str(tmp_path / "ckpt"),
    )
    procs, outputs, _ = launch_two_nodes(tmp_path, values, {"VZ_TEST_DUMP_WEIGHTS": str(tmp_path / "dump")})
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert "global batch 32 (16 per device x 2 devices" in outputs[0]
    assert "digits train shard 1/2: 64 samples" in open(rank_log_path(str(tmp_path / "ckpt"), 1)).read()
    # trainable weights agree; BatchNorm running statistics are each rank's own (rank 0's are saved)
    w0 = weights(tmp_path / "dump" / "rank_0.ckpt", trainable_only=True)
    w1 = weights(tmp_path / "dump" / "rank_1.ckpt", trainable_only=True)
    assert sorted(w0) == sorted(w1) and any("gamma" in k for k in w0)
    for name in w0:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)


def test_failing_rank_stops_every_node_and_names_itself(tmp_path):
    """Rank 1 (node 1) raises at its first epoch while rank 0 (node 0) waits in the gradient all-reduce."""
    values = dict(PLAIN, ckpt_save_dir=str(tmp_path / "ckpt"))
    procs, outputs, _ = launch_two_nodes(tmp_path, values, {"VZ_TEST_FAIL_RANK": "1"})
    assert [p.returncode != 0 for p in procs] == [True, True], "\n".join(o[-2000:] for o in outputs)
    log1 = rank_log_path(str(tmp_path / "ckpt"), 1)
    assert (
        f"error: rank 1 of 2: failed with RuntimeError: test hook: rank 1 fails on purpose (rank log: {log1})"
        in outputs[1]
    ), outputs[1][-3000:]
    assert "RuntimeError: test hook" in open(log1).read()  # the traceback is in the rank's own log
    # node 0 does not hang: the scheduler times the dead node out (MS_NODE_TIMEOUT) and names it
    # (no wall-time bound: JOB_TIMEOUT already fails a job that hangs)
    assert "worker 1 is the first one timed out" in outputs[0], outputs[0][-3000:]
    assert not [f for f in os.listdir(tmp_path / "ckpt") if f.endswith(".ckpt")]


@pytest.mark.parametrize("scale_lr", [False, True])
def test_global_batch_and_scale_lr_follow_the_device_count(tmp_path, scale_lr):
    cfg = load_config(
        None,
        dict(
            PLAIN,
            ckpt_save_dir=str(tmp_path / "ckpt"),
            scale_lr=str(scale_lr),
            tuned_devices="4",
            num_samples="320",
            batch_size="4",
        ),
    )
    plan = Trainer(cfg, ctx=RunContext("CPU", rank=3, group_size=8), dry_run=True).plan()
    assert plan["devices"] == 8 and plan["global_batch"] == 32
    assert plan["train_samples_per_device"] == 40 and plan["steps_per_epoch"] == 10
    assert plan["lr_start"] == pytest.approx(0.05 * 8 / 4 if scale_lr else 0.05)


def test_is_listening_ignores_self_connections():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert is_listening("127.0.0.1", server.getsockname()[1])
    port = free_port()  # unserved and in the ephemeral range, where probes can connect to themselves
    assert not any(is_listening("127.0.0.1", port, timeout=0.5) for _ in range(300))


def test_check_same_weights_names_the_first_parameter_that_differs(monkeypatch):
    """The start-of-training check, with the all-reduce replaced by a stand-in for a second rank."""
    import visionzoo.distributed as dist
    from visionzoo.errors import DeviceError

    network = tiny_model.TinyNet(batch_norm=False)
    ctx = RunContext("CPU", rank=1, group_size=2)
    monkeypatch.setattr(dist, "all_reduce_sum", lambda own, ctx: 2 * own)  # the other rank agrees
    dist.check_same_weights(network, ctx)
    other = [p.asnumpy().copy() for p in network.get_parameters()]
    other[2][0] += 1e-3  # the other rank's third tensor differs in its first slice
    stats = np.asarray(
        [
            s
            for w in other
            for s in (
                w.ravel().sum(dtype=np.float64),
                w.ravel()[::2].sum(dtype=np.float64) - w.ravel()[1::2].sum(dtype=np.float64),
            )
        ]
    )
    monkeypatch.setattr(dist, "all_reduce_sum", lambda own, ctx: own + stats)
    name = list(network.get_parameters())[2].name
    with pytest.raises(DeviceError, match=f"initial weights differ across the 2 ranks \\(first: {name}\\)"):
        dist.check_same_weights(network, ctx)


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Only rank 1 receives SIGTERM (after its 2nd of 4 steps): both ranks stop after step 2, rank 0
    alone writes the mid-epoch checkpoint, once, and says how to resume."""
    from visionzoo.checkpoint import read_training_state, records

    d = tmp_path / "ckpt"
    values = dict(PLAIN, ckpt_save_dir=str(d), epoch_size="2")
    proc, _ = msrun(
        tmp_path, "train.py", cli_args(values), env={"VZ_TEST_SIGNAL_RANK": "1", "VZ_TEST_SIGNAL_STEP": "2"}
    )
    out = proc.stdout
    assert "stopped by SIGTERM at epoch 1 step 2/4" in out, out[-3000:]
    assert sorted(f for f in os.listdir(d) if f.endswith(".ckpt")) == ["vz_tiny_plain-e0001-s0002.ckpt"]
    state = read_training_state(str(d / "vz_tiny_plain-e0001-s0002.ckpt"))
    assert json.loads(state[records.PROGRESS])["step"] == 2
    assert int(state["global_step"].asnumpy().reshape(-1)[0]) == 2
    log0, log1 = (open(rank_log_path(str(d), r)).read() for r in (0, 1))
    assert "SIGTERM received" in log1 and "SIGTERM received" not in log0  # rank 0 stopped on rank 1's vote
