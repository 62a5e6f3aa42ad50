"""visionzoo-benchmark: rows per task, engine and batch whose numbers agree with their own step times; the host
in the output; peak memory per row; bad options are one line, exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test
from script_utils import error_lines, script_env
from visionzoo.cli import benchmark as cli
from visionzoo.errors import ConfigError
from visionzoo.tasks import benchmark


def test_a_run_measures_every_engine_and_batch_then_training(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--model", "vz_tiny_test", "--num_classes", "10", "--image_resize", "16", "--batch_sizes", "1,3"]
    assert (
        cli.main(args + ["--engines", "mindspore,onnxruntime", "--iters", "3", "--warmup", "1", "--json", str(out)])
        == 0
    )
    table = capsys.readouterr().out
    doc = json.loads(out.read_text())
    host = doc["host"]
    assert host["threads"] >= 1 and host["cpu"] and host["isa_class"] and host["versions"]["onnxruntime"]
    assert table.splitlines()[0].startswith(
        f"vz_tiny_test @ 16, graph mode; host: {host['cpu']}, ISA {host['isa_class']}"
    )
    keys = [(r["task"], r["engine"], r["batch"]) for r in doc["rows"]]
    assert keys == [
        ("infer", "mindspore", 1),
        ("infer", "onnxruntime", 1),
        ("infer", "mindspore", 3),
        ("infer", "onnxruntime", 3),
        ("train", "mindspore", 1),
        ("train", "mindspore", 3),
    ]
    for r in doc["rows"]:
        assert r["error"] is None and r["iters"] == 3 and len(r["times_ms"]) == 3
        assert r["median_ms"] == pytest.approx(float(np.median(r["times_ms"])), abs=1e-3)
        assert r["img_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1e3, rel=1e-3)
        assert r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] and r["peak_rss_mb"] > 50 and r["first_call_s"] > 0
        assert f"| {r['task']} | {r['engine']} | {r['batch']} | {r['img_per_s']:.1f} | {r['median_ms']:.2f} |" in table


def test_time_steps_and_peak_memory_per_row():
    calls = []
    times = benchmark.time_steps(lambda: calls.append(1), iters=4, warmup=2)
    assert len(times) == 4 and len(calls) == 6 and all(t >= 0 for t in times)
    assert benchmark.peak_memory_reset() == "row"
    before = benchmark.peak_memory_mb()
    block = np.ones(200 * 2**20 // 8)  # 200 MiB touched, then freed
    del block
    grown = benchmark.peak_memory_mb()
    assert grown >= before + 190
    benchmark.peak_memory_reset()
    assert benchmark.peak_memory_mb() < grown - 150  # a new window forgets the earlier peak


def test_an_engine_that_fails_is_a_row_with_the_reason(monkeypatch):
    from visionzoo.tasks import engines

    def broken(path):
        raise RuntimeError("cannot compile\nMaxPool")

    monkeypatch.setitem(engines._SESSIONS, "onnxruntime", broken)
    doc = benchmark.run_benchmark("vz_tiny_test", [2], 16, 10, engines=["onnxruntime"], tasks=["infer"], iters=1)
    (row,) = doc["rows"]
    assert row["error"] == "engine onnxruntime failed at input [2, 3, 16, 16]: RuntimeError: cannot compile MaxPool"
    assert "| infer | onnxruntime | 2 | failed: engine onnxruntime failed" in benchmark.format_table(doc)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "benchmark needs --model NAME (a registered model or model.tag; see visionzoo.list_models())"),
        (
            ["--model", "vgg11_bn_cifar", "--batch_sizes", "0,4"],
            "--batch_sizes needs whole numbers >= 1 separated by commas, got '0,4'",
        ),
        (
            ["--model", "vgg11_bn_cifar", "--engines", "tvm"],
            "unknown engine 'tvm'; allowed: auto, mindspore, onnxruntime, openvino",
        ),
        (["--model", "vgg11_bn_cifar", "--tasks", "export"], "unknown task export; allowed: infer, train"),
    ],
)
def test_bad_options(args, message):
    with pytest.raises(ConfigError) as e:
        cli.main(args)
    assert e.value.what == message


def test_command_line_error_is_one_line_exit_2(tmp_path):
    code = "from visionzoo.cli.benchmark import entry; entry()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--model", "vgg11_bn_cifarr"],
        cwd=tmp_path,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith("error: key 'model': unknown model 'vgg11_bn_cifarr'") and "vgg11_bn_cifar" in line
    help_ = subprocess.run([sys.executable, "-c", code, "--help"], env=script_env(), capture_output=True, text=True)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: visionzoo-benchmark --model NAME[.TAG]")


def test_a_command_ends_with_an_idle_thread_pool_alive(tmp_path):
    """An executor never shut down (importing openvino starts one for its telemetry) must not hang the exit."""
    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from visionzoo.cli import run_main\n"
        "pool = ThreadPoolExecutor(1)\n"
        "pool.submit(int).result()\n"
        "run_main(lambda argv: 3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=script_env(), capture_output=True, timeout=60)
    assert proc.returncode == 3
