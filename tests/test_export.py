"""export.py: ONNX (run in onnxruntime) and MINDIR (reloaded as a GraphCell) give the model's own logits."""

import json
import os

import mindspore as ms
import numpy as np
import onnxruntime as ort
import pytest

import tiny_model  # noqa: F401  registers vz_tiny_test
from ckpt_utils import train_tiny, write_recipe
from script_utils import error_lines, run_script
from visionzoo.errors import ConfigError, DeviceError
from visionzoo.tasks.export import export_checkpoint, export_network
from visionzoo.tasks.validate import load_for_eval

TOL = 1e-4  # max abs logit difference allowed between the exported graph and the network


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    cfg, ckpt = train_tiny(str(root / "ckpt"))
    return {
        "root": root,
        "cfg": cfg.replace(ckpt_path=ckpt),
        "ckpt": ckpt,
        "recipe": write_recipe(str(root / "recipe.yaml"), cfg),
    }


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _onnx_logits(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert list(inp.shape) == list(x.shape)
    return session.run(None, {inp.name: x})[0]


def _mindir_logits(path, x):
    graph = ms.load(path)
    return ms.nn.GraphCell(graph)(ms.Tensor(x)).asnumpy()


def _own_logits(cfg, x):
    net = load_for_eval(cfg, cfg.ckpt_path)
    net.set_train(False)
    return net(ms.Tensor(x)).asnumpy()


def test_cli_onnx_and_mindir_give_the_models_logits(trained, tmp_path):
    out = tmp_path / "deploy"
    x = _inputs((4, 3, 16, 16))
    expected = _own_logits(trained["cfg"], x)
    for fmt, run in (("ONNX", _onnx_logits), ("MINDIR", _mindir_logits)):
        proc = run_script(
            "tests/tiny_run.py",
            [
                "export.py",
                "-c",
                trained["recipe"],
                "--ckpt_path",
                trained["ckpt"],
                "--file_format",
                fmt.lower(),
                "--file_name",
                str(out / "tiny"),
                "--batch_size",
                "4",
            ],
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        ext = ".onnx" if fmt == "ONNX" else ".mindir"
        assert result == {
            "file": str(out / f"tiny{ext}"),
            "file_format": fmt,
            "input_shape": [4, 3, 16, 16],
            "checkpoint": trained["ckpt"],
        }
        got = run(result["file"], x)
        assert got.shape == (4, 10)
        assert np.abs(got - expected).max() < TOL, fmt
    # nothing but the two files: no temporary files left behind
    assert sorted(os.listdir(out)) == ["tiny.mindir", "tiny.onnx"]


def test_default_batch_is_one_and_reexport_replaces_atomically(trained, tmp_path):
    cfg = trained["cfg"]
    first = export_checkpoint(cfg, "ONNX", str(tmp_path / "m.onnx"))  # extension not doubled
    assert first["file"] == str(tmp_path / "m.onnx") and first["input_shape"] == [1, 3, 16, 16]
    x = _inputs((1, 3, 16, 16), seed=1)
    assert np.abs(_onnx_logits(first["file"], x) - _own_logits(cfg, x)).max() < TOL
    # a second export of another shape replaces the first (MindSpore makes the file read-only)
    second = export_checkpoint(cfg, "onnx", str(tmp_path / "m"), batch_size=2)
    assert second["file"] == first["file"] and second["input_shape"] == [2, 3, 16, 16]
    x2 = _inputs((2, 3, 16, 16), seed=2)
    assert np.abs(_onnx_logits(second["file"], x2) - _own_logits(cfg, x2)).max() < TOL
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_exports_a_network_in_eval_mode(trained, tmp_path):
    # a network left in training mode is still exported with BatchNorm's running statistics
    net = load_for_eval(trained["cfg"], trained["ckpt"])
    net.set_train(True)
    path = export_network(net, str(tmp_path / "net"), "MINDIR", (3, 3, 16, 16))
    assert net.training  # the caller's mode is restored
    x = _inputs((3, 3, 16, 16), seed=3)
    assert np.abs(_mindir_logits(path, x) - _own_logits(trained["cfg"], x)).max() < TOL


def test_val_amp_level_o2_exports_a_float16_graph(trained, tmp_path):
    import onnx

    result = export_checkpoint(trained["cfg"].replace(val_amp_level="O2"), "ONNX", str(tmp_path / "half"))
    model = onnx.load(result["file"])
    assert any(node.op_type == "Cast" for node in model.graph.node)  # float16 inside, float32 at the edges
    x = _inputs((1, 3, 16, 16), seed=5)
    half, full = _onnx_logits(result["file"], x), _own_logits(trained["cfg"], x)
    assert half.dtype == np.float32 and np.abs(half - full).max() < 5e-2 and not np.array_equal(half, full)


def test_air_on_cpu_and_bad_formats_are_refused(trained, tmp_path):
    proc = run_script(
        "tests/tiny_run.py",
        [
            "export.py",
            "-c",
            trained["recipe"],
            "--ckpt_path",
            trained["ckpt"],
            "--file_format",
            "AIR",
            "--file_name",
            str(tmp_path / "m"),
        ],
    )
    assert proc.returncode == 2
    errors = error_lines(proc)
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Ascend" in errors[0], proc.stderr
    assert os.listdir(tmp_path) == []
    with pytest.raises(DeviceError, match="AIR needs an Ascend"):
        export_checkpoint(trained["cfg"], "AIR", str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="allowed: MINDIR, ONNX, AIR"):
        export_checkpoint(trained["cfg"], "TFLITE", str(tmp_path / "m"))
    proc = run_script(
        "tests/tiny_run.py",
        ["export.py", "-c", trained["recipe"], "--ckpt_path", str(tmp_path / "missing.ckpt"), "--file_format", "ONNX"],
    )
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "not found" in proc.stderr, proc.stderr


def test_real_model_vgg11_bn_cifar_onnx_and_mindir_parity(tmp_path):
    from visionzoo import create_model
    from visionzoo.config import load_config

    ms.set_seed(0)
    net = create_model("vgg11_bn_cifar", num_classes=10)
    # trained-looking BatchNorm statistics and logits of order 1, so a wrong graph cannot pass by being ~0
    rng = np.random.default_rng(0)
    for p in net.get_parameters():
        shape = p.shape
        if "moving_mean" in p.name or "beta" in p.name:
            p.set_data(ms.Tensor(rng.normal(0, 0.1, shape).astype(np.float32)))
        elif "moving_variance" in p.name or "gamma" in p.name:
            p.set_data(ms.Tensor(rng.uniform(0.5, 1.5, shape).astype(np.float32)))
    ckpt = str(tmp_path / "vgg11_bn_cifar.ckpt")
    ms.save_checkpoint(net, ckpt)
    cfg = load_config(
        None,
        {"model": "vgg11_bn_cifar", "dataset": "cifar10", "num_classes": "10", "image_resize": "32", "ckpt_path": ckpt},
    )
    x = _inputs((2, 3, 32, 32), seed=4)
    expected = _own_logits(cfg, x)
    assert np.abs(expected).max() > 1e-2
    onnx = export_checkpoint(cfg, "ONNX", str(tmp_path / "vgg"), batch_size=2)
    mindir = export_checkpoint(cfg, "MINDIR", str(tmp_path / "vgg"), batch_size=2)
    assert onnx["input_shape"] == mindir["input_shape"] == [2, 3, 32, 32]
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(_onnx_logits(onnx["file"], x) - expected).max() < TOL * scale
    assert np.abs(_mindir_logits(mindir["file"], x) - expected).max() < TOL * scale
