"""Inference engines: ONNX Runtime's logits match the native forward, exports are cached by weights and shape,
a mismatch falls back (auto) or fails (named), validation scores the same through an engine."""

import json
import logging
import os
import time

import numpy as np
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test
from ckpt_utils import train_tiny, write_recipe
from script_utils import error_lines, run_script
from visionzoo import Predictor
from visionzoo.errors import ConfigError
from visionzoo.tasks import engines
from visionzoo.tasks.engines import EngineFailed, InferenceEngine, choose_engine, engine_eval_step
from visionzoo.tasks.validate import run_validation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    cfg, ckpt = train_tiny(str(root / "ckpt"), lr=0.3)
    return {"root": root, "cfg": cfg, "ckpt": ckpt, "recipe": write_recipe(str(root / "recipe.yaml"), cfg)}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _batch(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 16, 16)).astype(np.float32)


@pytest.fixture
def engine_wins(monkeypatch):
    """auto's race per shape, decided for the test: the engine is faster."""
    monkeypatch.setattr(engines, "_race", lambda native, engine: (2.0, 1.0))


def test_auto_is_onnxruntime_and_matches_the_native_forward(trained, home, engine_wins):
    predictor = Predictor(checkpoint_path=trained["ckpt"])
    assert predictor.engine.name == "onnxruntime" == choose_engine("auto")
    for n in (1, 5):
        x = _batch(n, seed=n)
        native = engines.native_logits(predictor.network, x)
        out = predictor.logits_of(x)
        assert out.shape == (n, 10) and out.dtype == np.float32
        assert np.abs(out - native).max() <= 1e-4 * np.abs(native).max()
        assert not np.array_equal(out, native)  # a different library computed it (float rounding differs)
    assert predictor.engine.used() == ["onnxruntime"]
    assert len(os.listdir(home / "onnx")) == 2  # one export per input shape


def test_auto_keeps_mindspore_for_a_shape_where_it_is_faster(trained, home, monkeypatch):
    races = []
    monkeypatch.setattr(
        engines, "_race", lambda native, engine: races.append(1) or (1.0 if len(races) == 2 else 3.0, 2.0)
    )
    predictor = Predictor(checkpoint_path=trained["ckpt"])
    small, large = _batch(1), _batch(4)
    predictor.logits_of(small)
    np.testing.assert_array_equal(predictor.logits_of(large), engines.native_logits(predictor.network, large))
    np.testing.assert_array_equal(predictor.logits_of(large), engines.native_logits(predictor.network, large))
    assert predictor.engine.choices == {small.shape: "onnxruntime", large.shape: "mindspore"} and len(races) == 2
    assert predictor.engine.used() == ["onnxruntime", "mindspore"]


def test_openvino_runs_the_same_export_within_tolerance(trained, home):
    predictor = Predictor(checkpoint_path=trained["ckpt"], engine="openvino")
    x = _batch(3)
    out, native = predictor.logits_of(x), engines.native_logits(predictor.network, x)
    assert np.abs(out - native).max() <= 1e-4 * np.abs(native).max() and not np.array_equal(out, native)
    assert predictor.engine.used() == ["openvino"] and len(os.listdir(home / "onnx")) == 1


def test_the_race_times_both_in_turns():
    calls = []
    native_s, engine_s = engines._race(lambda: calls.append("n"), lambda: calls.append("e") or time.sleep(0.02))
    assert calls == ["n", "e", "n", "e"] and engine_s >= 0.02 > native_s


def test_exports_are_cached_by_weights_and_shape(trained, home, monkeypatch, engine_wins):
    x = _batch(2)
    first = Predictor(checkpoint_path=trained["ckpt"])
    first.logits_of(x)
    files = sorted(os.listdir(home / "onnx"))
    calls = []
    real = engines._SESSIONS["onnxruntime"]
    monkeypatch.setitem(engines._SESSIONS, "onnxruntime", lambda path: calls.append(path) or real(path))
    again = Predictor(checkpoint_path=trained["ckpt"])  # same weights and shape: the same file, no new export
    np.testing.assert_array_equal(again.logits_of(x), first.logits_of(x))
    assert sorted(os.listdir(home / "onnx")) == files and calls == [str(home / "onnx" / files[0])]
    other = Predictor(checkpoint_path=trained["ckpt"])
    for p in other.network.get_parameters():  # other weights: another key
        if p.name.endswith("weight"):
            p.set_data(p * 0.5)
            break
    other.logits_of(x)
    assert len(os.listdir(home / "onnx")) == 2
    assert engines.network_digest(other.network) != engines.network_digest(first.network)


def test_a_mismatch_falls_back_under_auto_and_fails_when_named(trained, home, monkeypatch, caplog):
    real = engines._SESSIONS["onnxruntime"]

    def off_by_a_bit(path):
        run = real(path)
        return lambda batch: run(batch) + 1e-2

    monkeypatch.setitem(engines._SESSIONS, "onnxruntime", off_by_a_bit)
    x = _batch(3)
    auto = Predictor(checkpoint_path=trained["ckpt"])
    with caplog.at_level(logging.WARNING, logger="visionzoo.tasks.engines"):
        out = auto.logits_of(x)
    assert auto.engine.name == "mindspore"
    np.testing.assert_array_equal(out, engines.native_logits(auto.network, x))
    assert "engine onnxruntime not used, MindSpore runs the network: engine onnxruntime's logits differ" in caplog.text
    named = Predictor(checkpoint_path=trained["ckpt"], engine="onnxruntime")
    with pytest.raises(EngineFailed, match=r"engine onnxruntime's logits differ from MindSpore's by 0\.01"):
        named.logits_of(x)


def test_engine_choice_errors(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine 'tensorrt'; allowed: auto, mindspore, onnxruntime, openvino"):
        choose_engine("tensorrt")
    with pytest.raises(ConfigError, match="engine onnxruntime runs on CPU only, this run uses GPU"):
        choose_engine("onnxruntime", "GPU")
    assert choose_engine("auto", "Ascend") == "mindspore"
    monkeypatch.setattr(engines, "engine_version", lambda name: None if name == "onnxruntime" else "1")
    with pytest.raises(ConfigError) as e:
        choose_engine("onnxruntime")
    assert (e.value.what, e.value.hint) == (
        "engine onnxruntime is not installed",
        "pip install onnxruntime, or use engine auto",
    )
    assert choose_engine("auto") == "mindspore"  # auto takes the next installed engine


def test_validation_scores_the_same_through_onnxruntime(trained, home):
    cfg = trained["cfg"].replace(ckpt_path=trained["ckpt"], eval_batch_size=64)  # 359 samples: a last batch of 39
    native = run_validation(cfg)
    assert run_validation(cfg, eval_step=engine_eval_step("mindspore", "CPU")) == native
    through = run_validation(cfg, eval_step=engine_eval_step("onnxruntime", "CPU"))
    assert native["num_samples"] == through["num_samples"] == 359
    assert (through["top1"], through["top5"]) == (native["top1"], native["top5"])
    assert through["loss"] == pytest.approx(native["loss"], rel=1e-5)
    assert len(os.listdir(home / "onnx")) == 2  # batches of 64 and the last one of 39


def test_cli_engine_flag(trained, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "a.png")
    env = {"VISIONZOO_HOME": str(tmp_path / "home")}
    args = ["--ckpt_path", trained["ckpt"], "--image_path", str(tmp_path / "a.png"), "--json"]
    proc = run_script("tests/tiny_run.py", ["infer.py", *args, "--engine", "mindspore"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"] == "mindspore"
    bad = run_script("tests/tiny_run.py", ["infer.py", *args, "--engine", "tvm"], env=env)
    assert bad.returncode == 2
    assert error_lines(bad) == ["error: unknown engine 'tvm'; allowed: auto, mindspore, onnxruntime, openvino"]
    args = ["validate.py", "-c", trained["recipe"], "--ckpt_path", trained["ckpt"], "--engine", "tvm"]
    bad = run_script("tests/tiny_run.py", args, env=env)
    assert bad.returncode == 2 and error_lines(bad) == [
        "error: unknown engine 'tvm'; allowed: auto, mindspore, onnxruntime, openvino"
    ]


def test_the_native_forward_is_one_compiled_graph_with_the_networks_logits(trained):
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE)  # MindSpore's default context: jit compiles the forward
    predictor = Predictor(checkpoint_path=trained["ckpt"], engine="mindspore")
    forward = predictor.engine.native()
    assert forward is not predictor.network and forward is predictor.engine.native()  # compiled once
    x = _batch(4)
    np.testing.assert_array_equal(predictor.logits_of(x), predictor.network(ms.Tensor(x)).asnumpy())
    ms.set_context(mode=ms.GRAPH_MODE)  # graph mode: the network is already compiled whole
    assert engines.compiled_forward(predictor.network) is predictor.network


def test_a_given_engine_instance_runs_mindspore_natively(trained):
    predictor = Predictor(checkpoint_path=trained["ckpt"], engine="mindspore")
    x = _batch(2)
    runner = InferenceEngine(predictor.network, "mindspore")
    np.testing.assert_array_equal(runner(x), engines.native_logits(predictor.network, x))
    np.testing.assert_array_equal(predictor.logits_of(x), runner(x))
