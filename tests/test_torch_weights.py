"""torch checkpoints: the restricted reader, conversion, and exact logit parity with torchvision 0.28.

torchvision's models are built from its own model files (tests/tv_models.py) with random weights
and non-trivial BatchNorm statistics, saved with torch.save, converted by visionzoo, and compared on
the same input in eval mode: every torchvision-sourced tag (GoogLeNet and all nine VGG tags) is
checked on its full logits, the VGGs also stage by stage through ``features_only``. The VGGs are built
on the meta device and filled cheaply, sharing one filled head (the same at every depth), so the nine
VGG cases take ~50 s together on two CPU cores.
"""

import gc
import os
import pickle
import zipfile

import mindspore as ms
import numpy as np
import pytest
import torch

import visionzoo
from tv_models import torchvision_models
from visionzoo import CheckpointError, create_model, get_model_info, list_models
from visionzoo.checkpoint.torch_pth import UnsafeCheckpoint, read_torch_state_dict

TV_VGG, TV_GOOGLENET = torchvision_models()
TV_TAGS = [n for n in list_models(pretrained=True) if get_model_info(n).source == "torchvision"]
VGG_CFG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
TOL = 1e-4  # max abs difference relative to the reference's largest magnitude


def _randomise_bn(model):
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) * 0.4 - 0.2)
    return model.eval()


def _close(got, expected):
    scale = float(np.abs(expected).max())
    assert scale > 0
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL * scale, (np.abs(got - expected).max(), scale)


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_every_torchvision_tag_is_covered_and_its_facts_match_torchvision():
    assert sorted(TV_TAGS) == sorted(
        ["googlenet_bn.tv_in1k"]
        + [f"{v}{bn}.tv_in1k" for v in VGG_CFG for bn in ("", "_bn")]
        + ["vgg16.tv_ssd_features"]
    )
    enums = {
        "googlenet_bn.tv_in1k": TV_GOOGLENET.GoogLeNet_Weights.IMAGENET1K_V1,
        "vgg16.tv_ssd_features": TV_VGG.VGG16_Weights.IMAGENET1K_FEATURES,
    }
    for v in VGG_CFG:
        for bn in ("", "_bn"):
            enums[f"{v}{bn}.tv_in1k"] = getattr(TV_VGG, f"{v.upper()}{bn.upper()}_Weights").IMAGENET1K_V1
    for tag, ref in enums.items():
        info = get_model_info(tag)
        assert info.url == ref.url
        assert info.num_params == ref.meta["num_params"]
        assert os.path.basename(ref.url).rsplit("-", 1)[1].startswith(info.sha256)  # the published prefix
        metrics = ref.meta["_metrics"]["ImageNet-1K"]
        if info.top1 is None:
            assert np.isnan(metrics["acc@1"])
        else:
            assert (info.top1, info.top5) == (metrics["acc@1"], metrics["acc@5"])
        assert info.license and info.preprocessing["image_resize"] == 224


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reader_matches_torch_load_in_both_file_layouts(tmp_path, legacy):
    model = _randomise_bn(TV_GOOGLENET.GoogLeNet(num_classes=10, aux_logits=False, init_weights=False))
    state = model.state_dict()
    state["half"] = torch.arange(6, dtype=torch.float16).reshape(2, 3)
    state["view"] = torch.arange(12.0).reshape(3, 4).t()  # a non-contiguous view
    path = tmp_path / "g.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    got = read_torch_state_dict(path)
    assert set(got) == set(state)
    for k, v in state.items():
        assert got[k].dtype == v.numpy().dtype and np.array_equal(got[k], v.numpy()), k


def test_googlenet_tv_logits_match_torchvision(tmp_path):
    torch.manual_seed(0)
    ref = _randomise_bn(
        TV_GOOGLENET.GoogLeNet(num_classes=1000, aux_logits=False, transform_input=True, init_weights=False)
    )
    path = tmp_path / "googlenet.pth"
    torch.save(ref.state_dict(), path)
    x = _input((1, 3, 224, 224))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    # the init is irrelevant (every parameter is loaded); XavierUniform is the quickest to draw
    model = create_model("googlenet_bn.tv_in1k", checkpoint_path=str(path), init_mode="XavierUniform")
    assert sum(int(np.prod(p.shape)) for p in model.trainable_params()) == 6_624_904
    model.set_train(False)
    _close(model(ms.Tensor(x)).asnumpy(), expected)
    # the same weights through the features path: stage 3 is the trunk's output
    trunk = create_model(
        "googlenet_bn.tv_in1k", features_only=True, checkpoint_path=str(path), init_mode="XavierUniform"
    )
    trunk.set_train(False)
    maps = trunk(ms.Tensor(x))
    assert [m.shape[1] for m in maps] == [f["num_chs"] for f in trunk.feature_info] == [192, 480, 832, 1024]
    _close(maps[-1].asnumpy(), model.forward_features(ms.Tensor(x)).asnumpy())


def _fill(module, seed):
    """Cheap random weights with activations of a sane scale: He-uniform weights, small non-zero
    biases, zero buffers (the BatchNorm statistics are drawn by :func:`_randomise_bn`)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            bound = (6.0 / (p[0].numel())) ** 0.5 if p.dim() > 1 else 0.1
            p.uniform_(-bound, bound, generator=gen)
        for b in module.buffers():
            b.zero_()
    return module


@pytest.fixture(scope="module")
def tv_vgg_head():
    """torchvision's VGG head (25088 -> 4096 -> 4096 -> 1000: the same at every depth, 102M of a VGG's
    ~135M parameters), built on the meta device and filled once for all the VGG tags."""
    with torch.device("meta"):
        head = TV_VGG.VGG(torch.nn.Sequential(), init_weights=False).classifier
    return _fill(head.to_empty(device="cpu"), seed=2)


def _tv_vgg(cfg, batch_norm, head, seed):
    """torchvision's VGG with trunk ``cfg`` and the shared ``head``: built without its (slow) default
    init, then filled, with non-trivial BatchNorm statistics."""
    with torch.device("meta"):
        model = TV_VGG.VGG(TV_VGG.make_layers(TV_VGG.cfgs[cfg], batch_norm=batch_norm), init_weights=False)
    model = model.to_empty(device="cpu")
    _fill(model.features, seed)
    model.classifier = head
    return _randomise_bn(model)


@pytest.mark.parametrize("tag", sorted(t for t in TV_TAGS if t.startswith("vgg")))
def test_vgg_tv_logits_and_stages_match_torchvision(tmp_path, tv_vgg_head, tag):
    """Every torchvision VGG tag: the whole model (conv biases, BatchNorm, AdaptiveAvgPool2d((7, 7)),
    the 25088 -> 4096 -> 4096 -> 1000 head) gives torchvision's logits, and ``features_only`` from
    the same file gives its five stage outputs. The file is in the legacy (non-zip) layout
    torchvision's published VGG files use; ``vgg16.tv_ssd_features`` has vgg16's layout (its
    published head holds NaN placeholders, a finite one here checks the head's conversion too)."""
    base = tag.split(".")[0]
    bn = base.endswith("_bn")
    ref = _tv_vgg(VGG_CFG[base.replace("_bn", "")], bn, tv_vgg_head, seed=sorted(TV_TAGS).index(tag))
    path = tmp_path / f"{base}.pth"
    torch.save(ref.state_dict(), path, _use_new_zipfile_serialization=False)
    x = _input((1, 3, 64, 64))  # 64: the adaptive pool takes 2x2 -> 7x7 (at 224 it is the identity)
    stages = []
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
        h = torch.from_numpy(x)
        for layer in ref.features:
            h = layer(h)
            if isinstance(layer, torch.nn.MaxPool2d):
                stages.append(h.numpy())
    del ref
    model = create_model(tag, checkpoint_path=str(path), init_mode="XavierUniform")  # init: all is loaded
    model.set_train(False)
    got = model(ms.Tensor(x)).asnumpy()
    assert got.shape == (1, 1000)
    _close(got, expected)
    del model
    gc.collect()
    trunk = create_model(tag, features_only=True, checkpoint_path=str(path))
    trunk.set_train(False)
    maps = trunk(ms.Tensor(x))
    assert len(maps) == len(stages) == 5
    for got, want in zip(maps, stages):
        _close(got.asnumpy(), want)


# --- the restricted unpickler ---------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``exec`` (in an unrestricted unpickler), which would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.mark.parametrize("layout", ["zip", "plain"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, layout):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    if layout == "zip":
        torch.save({"conv.weight": torch.zeros(2), "evil": _Payload(marker)}, path)  # the payload goes into data.pkl
        assert zipfile.is_zipfile(path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"conv.weight": [0.0, 0.0], "evil": _Payload(marker)}, f)
    with pytest.raises(UnsafeCheckpoint) as err:
        read_torch_state_dict(path)
    assert ".exec" in str(err.value) and "\n" not in str(err.value)  # builtins.exec (__builtin__ in protocol 2)
    assert str(path) in str(err.value)
    with pytest.raises(CheckpointError):
        create_model("googlenet_bn", checkpoint_path=str(path))
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is real: an ordinary unpickler runs it
    assert marker.exists()


def test_torch_module_pickle_and_damaged_file_are_refused(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole module, not a state dict
    with pytest.raises(UnsafeCheckpoint, match="torch.nn.modules.linear.Linear"):
        read_torch_state_dict(path)
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(1000)}, good, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_torch_state_dict(cut)


def test_conversion_misfit_is_reported_strictly(tmp_path):
    ref = TV_GOOGLENET.GoogLeNet(num_classes=10, aux_logits=False, init_weights=False)
    path = tmp_path / "g.pth"
    torch.save(ref.state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit"):
        create_model("googlenet", num_classes=10, checkpoint_path=str(path))  # the MindCV flavour: no BN
    report = visionzoo.checkpoint.load_checkpoint(create_model("googlenet_bn.tv_in1k", num_classes=10), str(path))
    assert report.ok and "conv1.bn.num_batches_tracked" in report.stripped
    assert "conv1.bn.gamma" in report.loaded and "inception3a.b1.conv.weight" in report.loaded


# --- python -m visionzoo.convert ------------------------------------------------------------------


def test_convert_cli_writes_a_ckpt_that_loads_and_gives_torchvision_logits(tmp_path):
    import json
    import subprocess
    import sys

    from script_utils import script_env

    torch.manual_seed(0)
    ref = _randomise_bn(
        TV_GOOGLENET.GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=False)
    )
    src = tmp_path / "googlenet.pth"
    torch.save(ref.state_dict(), src)
    out = tmp_path / "out" / "googlenet_tv.ckpt"
    cmd = [
        sys.executable,
        "-m",
        "visionzoo.convert",
        str(src),
        "--model",
        "googlenet_bn.tv_in1k",
        "-o",
        str(out),
        "--num_classes",
        "10",
    ]
    proc = subprocess.run(cmd, env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    counters = sum(k.endswith("num_batches_tracked") for k in ref.state_dict())
    assert result["file"] == str(out) and result["loaded"] == len(ref.state_dict()) - counters
    assert result["ignored"] == counters
    x = _input((1, 3, 224, 224))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    model = create_model("googlenet_bn.tv_in1k", num_classes=10, checkpoint_path=str(out), init_mode="XavierUniform")
    model.set_train(False)
    _close(model(ms.Tensor(x)).asnumpy(), expected)
    # a head of another size is a misfit here: one line, exit status 2, saying what to pass (a command
    # ends its process itself, visionzoo.shutdown, so it runs in a subprocess here)
    proc = subprocess.run(cmd[:-1] + ["7"], env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "does not fit" in errors[0] and "--num_classes 7" in errors[0]
