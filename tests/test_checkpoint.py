"""Checkpoint loading: reports, strictness, training-state stripping, head re-initialisation,
pretrained-weight cache, and parity with MindCV checkpoints."""

import gc
import importlib
import logging

import mindcv
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import visionzoo
from visionzoo import CheckpointError, create_model
from visionzoo.checkpoint import (
    TRAINING_STATE_NAMES,
    TRAINING_STATE_PREFIXES,
    CheckpointNotFoundError,
    is_training_state,
    load_checkpoint,
)
from visionzoo.files import file_digest as file_sha256
from visionzoo.registry import ModelSpec, WeightSpec, build_model, register_model

SMALL = "googlenet_cifar"  # the fastest model to build


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 10-class googlenet_cifar and its checkpoint."""
    model = create_model(SMALL, num_classes=10)
    path = tmp_path_factory.mktemp("ckpt") / "net.ckpt"
    ms.save_checkpoint(model, str(path))
    return model, path


def _params(model):
    return {p.name: p.asnumpy() for p in model.get_parameters()}


def _save_dict(entries, path):
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in entries.items()], str(path))
    return path


def test_round_trip_loads_every_parameter(saved):
    model, path = saved
    fresh = create_model(SMALL, num_classes=10)
    report = load_checkpoint(fresh, path)
    assert report.ok and not (report.missing or report.unexpected or report.mismatched or report.dropped_classifier)
    assert set(report.loaded) == {p.name for p in model.get_parameters()}
    expected, got = _params(model), _params(fresh)
    assert all(np.array_equal(expected[k], got[k]) for k in expected)


def test_missing_file_is_file_not_found_and_checkpoint_error(tmp_path):
    path = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        create_model(SMALL, num_classes=10, checkpoint_path=str(path))
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(create_model(SMALL, num_classes=10), path)
    assert issubclass(CheckpointNotFoundError, visionzoo.VisionZooError)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="broken.ckpt.*damaged"):
        load_checkpoint(create_model(SMALL, num_classes=10), path)


def test_mismatches_are_reported_and_strict_refuses(saved, tmp_path):
    model, _ = saved
    entries = _params(model)
    del entries["inception5b.b1.conv.weight"]  # missing
    entries["extra_head.weight"] = np.zeros((2, 2), np.float32)  # unexpected
    entries["conv1.conv.weight"] = np.zeros((192, 1, 3, 3), np.float32)  # another shape
    path = _save_dict(entries, tmp_path / "odd.ckpt")
    target = create_model(SMALL, num_classes=10)
    before = _params(target)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(target, path, strict=True)
    message = str(err.value)
    for text in (
        "1 missing",
        "inception5b.b1.conv.weight",
        "1 unexpected",
        "extra_head.weight",
        "1 of another shape",
        "conv1.conv.weight (model [192, 3, 3, 3], checkpoint [192, 1, 3, 3])",
        "strict=False",
    ):
        assert text in message
    assert all(np.array_equal(before[k], v) for k, v in _params(target).items())  # nothing changed

    report = load_checkpoint(target, path, strict=False)
    assert report.missing == ("inception5b.b1.conv.weight",)
    assert report.unexpected == ("extra_head.weight",)
    assert report.mismatched == (("conv1.conv.weight", (192, 3, 3, 3), (192, 1, 3, 3)),)
    after = _params(target)
    assert np.array_equal(after["inception3a.b1.conv.weight"], entries["inception3a.b1.conv.weight"])
    assert np.array_equal(after["conv1.conv.weight"], before["conv1.conv.weight"])


def test_error_lists_only_the_first_names(saved, tmp_path):
    model, _ = saved
    entries = {k: v for k, v in _params(model).items() if not k.startswith("inception")}
    path = _save_dict(entries, tmp_path / "partial.ckpt")
    with pytest.raises(CheckpointError, match=r"missing in checkpoint: .*\(\d+ more\)"):
        load_checkpoint(create_model(SMALL, num_classes=10), path)


def test_training_state_is_stripped(saved, tmp_path):
    model, _ = saved
    entries = _params(model)
    weights = dict(entries)
    for name in list(weights)[:3]:
        entries["moments." + name] = np.ones_like(weights[name])
        entries["adam_m." + name] = np.ones_like(weights[name])
        entries["ema." + name] = weights[name] + 1.0
    for name in (
        "learning_rate",
        "global_step",
        "momentum",
        "epoch_num",
        "step_num",
        "scale_sense",
        "current_iterator_step",
        "last_overflow_iterator_step",
        "_vz_best_acc",
        "_vz_epoch",
    ):
        entries[name] = np.array([1.0], np.float32)
    path = _save_dict(entries, tmp_path / "train_state.ckpt")
    target = create_model(SMALL, num_classes=10)
    report = load_checkpoint(target, path)
    assert report.ok and report.unexpected == ()
    assert "learning_rate" in report.stripped and "_vz_epoch" in report.stripped and len(report.stripped) == 19
    first = list(weights)[0]
    assert np.array_equal(_params(target)[first], weights[first])
    # ema=True loads the EMA copies instead (only three here: the rest is reported missing)
    report = load_checkpoint(target, path, ema=True, strict=False)
    assert len(report.loaded) == 3 and np.array_equal(_params(target)[first], weights[first] + 1.0)
    with pytest.raises(CheckpointError, match="no EMA weights"):
        load_checkpoint(target, saved[1], ema=True)


def test_training_state_list_lives_in_one_place():
    for name in TRAINING_STATE_NAMES:
        assert is_training_state(name)
    for prefix in TRAINING_STATE_PREFIXES:
        assert is_training_state(prefix + "conv1.conv.weight")
    assert not is_training_state("conv1.conv.weight") and not is_training_state("classifier.bias")


def test_classifier_of_another_size_is_reinitialised(saved, caplog):
    model, path = saved
    target = create_model(SMALL, num_classes=7)
    fresh_head = _params(target)["classifier.weight"]
    with caplog.at_level(logging.WARNING, logger="visionzoo.checkpoint"):
        target2 = create_model(SMALL, num_classes=7, checkpoint_path=str(path))
    assert "classifier.weight" in caplog.text and "freshly" in caplog.text
    report = load_checkpoint(target, path)
    assert report.dropped_classifier == ("classifier.weight", "classifier.bias")
    assert report.ok and not report.mismatched
    got, expected = _params(target), _params(model)
    assert np.array_equal(got["classifier.weight"], fresh_head)
    assert np.array_equal(got["conv1.conv.weight"], expected["conv1.conv.weight"])
    assert np.array_equal(_params(target2)["inception5b.b4.1.conv.weight"], expected["inception5b.b4.1.conv.weight"])


def test_googlenet_without_aux_loads_weights_trained_with_aux(tmp_path):
    trained = create_model("googlenet", num_classes=4, aux_logits=True)
    path = tmp_path / "aux.ckpt"
    ms.save_checkpoint(trained, str(path))
    report = load_checkpoint(create_model("googlenet", num_classes=4), path)
    assert report.ok and report.unexpected == ()
    assert "aux1.fc2.weight" in report.stripped and "aux2.conv.conv.weight" in report.stripped
    with pytest.raises(CheckpointError, match="aux1.conv.conv.weight"):  # the other way round: missing
        load_checkpoint(
            create_model("googlenet", num_classes=4, aux_logits=True),
            _save_dict(
                {k: v for k, v in _params(trained).items() if not k.startswith("aux1")}, tmp_path / "no_aux1.ckpt"
            ),
        )


# --- pretrained weights ------------------------------------------------------------------------


class TinyNet(nn.Cell):
    def __init__(self, num_classes=1000, in_channels=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3)
        self.classifier = nn.Dense(4, num_classes)

    def construct(self, x):
        return self.classifier(self.conv(x).mean((2, 3)))


def _register_tiny(registry, sha256, filename="tiny-test.ckpt"):
    weight = WeightSpec(
        tag="test", url="http://127.0.0.1:9/tiny-test.ckpt", sha256=sha256, filename=filename, num_classes=5
    )
    spec = ModelSpec(num_params=0, num_features=4, classifier="classifier", first_conv="conv", weights=(weight,))

    @register_model(name="tiny_test", spec=spec)
    def tiny_test(**kwargs):
        return build_model(TinyNet, "tiny_test", **kwargs)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONZOO_HOME", str(tmp_path))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    reference = TinyNet(num_classes=5)
    ms.save_checkpoint(reference, str(folder / "tiny-test.ckpt"))
    return folder, reference


def test_pretrained_cache_hit(cache, isolated_registry):
    folder, reference = cache
    _register_tiny(isolated_registry, file_sha256(folder / "tiny-test.ckpt"))
    assert "tiny_test.test" in visionzoo.list_models(pretrained=True)
    assert visionzoo.get_model_info("tiny_test").pretrained == ("test",)
    model = create_model("tiny_test", pretrained=True, num_classes=5)
    assert all(np.array_equal(a, b) for a, b in zip(_params(model).values(), _params(reference).values()))
    model = create_model("tiny_test", pretrained="test", num_classes=3)  # fine-tuning: fresh 3-class head
    assert np.array_equal(_params(model)["conv.weight"], _params(reference)["conv.weight"])
    with pytest.raises(CheckpointError, match="no weights tagged 'other'.*test"):
        create_model("tiny_test", pretrained="other")


def test_pretrained_wrong_sha256(cache, isolated_registry):
    folder, _ = cache
    _register_tiny(isolated_registry, "0" * 64)
    with pytest.raises(
        CheckpointError, match="tiny-test.ckpt: cached weights 'test' have sha256 .*expected 0000.*the file was deleted"
    ):
        create_model("tiny_test", pretrained=True)
    assert not (folder / "tiny-test.ckpt").exists()


def test_pretrained_missing_without_network_says_where_to_put_it(cache, isolated_registry, monkeypatch):
    folder, _ = cache
    _register_tiny(isolated_registry, "0" * 64, filename="absent.ckpt")
    with pytest.raises(CheckpointError) as err:  # 127.0.0.1:9 refuses the connection at once
        create_model("tiny_test", pretrained=True)
    assert str(folder / "absent.ckpt") in str(err.value) and "http://127.0.0.1:9/tiny-test.ckpt" in str(err.value)
    monkeypatch.setenv("VISIONZOO_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="VISIONZOO_OFFLINE.*absent.ckpt"):
        create_model("tiny_test", pretrained=True)


def test_model_without_published_weights():
    with pytest.raises(
        CheckpointError, match="no pretrained weights are published for model 'googlenet_cifar'.*checkpoint_path"
    ):
        create_model("googlenet_cifar", pretrained=True)
    with pytest.raises(CheckpointError, match="not both"):
        create_model("googlenet", pretrained=True, checkpoint_path="x.ckpt")


# --- MindCV parity -----------------------------------------------------------------------------


def test_every_mindcv_tag_is_a_mindcv_architecture_covered_below():
    tags = [n for n in visionzoo.list_models(pretrained=True) if visionzoo.get_model_info(n).source == "MindCV"]
    assert len(tags) == 8
    for tag in tags:
        weight = visionzoo.get_model_info(tag).weight
        assert weight.options == ()  # MindCV's architecture is the model's default: the parity test below covers it
        assert tag.split(".")[0] in ("googlenet", "vgg11", "vgg13", "vgg16", "vgg19")
        assert weight.url.startswith("https://download") and weight.file_name.split("-")[1].startswith(weight.sha256)
        if weight.tag == "mindcv_in1k":  # the URL MindCV 0.3.0 itself loads
            module = importlib.import_module(f"mindcv.models.{'vgg' if tag.startswith('vgg') else 'googlenet'}")
            assert weight.url == module.default_cfgs[tag.split(".")[0]]["url"]


@pytest.mark.parametrize(
    "name, options",
    [
        ("googlenet.mindcv_in1k", {}),
        ("googlenet", {"aux_logits": True}),
        ("vgg11.mindcv_in1k", {}),
        ("vgg13.mindcv_in1k", {}),
        ("vgg16.mindcv_in1k", {}),
        ("vgg19.mindcv_in1k", {}),
    ],
)
def test_mindcv_checkpoint_gives_same_logits(name, options, tmp_path):
    """Every MindCV tag's architecture (the tag name builds it) gives MindCV's logits from MindCV's weights."""
    reference = mindcv.create_model(name.split(".")[0], num_classes=3, **options)
    path = tmp_path / f"{name}.ckpt"
    ms.save_checkpoint(reference, str(path))
    model = create_model(name, num_classes=3, checkpoint_path=str(path), **options)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    reference.set_train(False)
    model.set_train(False)
    expected, got = reference(x).asnumpy(), model(x).asnumpy()
    del reference, model
    gc.collect()  # two VGGs and a checkpoint: free them before the next depth
    assert got.shape == (1, 3)
    assert np.abs(expected - got).max() < 1e-5
