"""The networks evaluation builds (validate.py's, the trainer's second one at val_amp_level) get their
weights from a checkpoint or the training network: they never fetch the published weights first, and
keep the architecture the weight tag selects."""

import mindspore as ms
import numpy as np
import pytest

import tiny_model
from ckpt_utils import tiny_config
from visionzoo.engine.trainer import Trainer
from visionzoo.registry import ModelSpec, WeightSpec, build_model, register_model
from visionzoo.tasks.validate import load_for_eval

TAG = "t_in1k"


@pytest.fixture
def published(isolated_registry, tmp_path, monkeypatch):
    """``vz_tiny_tagged`` with one published tag (whose weights have no BatchNorm, as a tag's options can
    require); every fetch of the published weights is recorded and served from a local file."""
    weight = WeightSpec(
        tag=TAG, url="http://127.0.0.1:9/t.ckpt", sha256="0" * 64, num_classes=10, options=(("batch_norm", False),)
    )

    @register_model(name="vz_tiny_tagged", spec=ModelSpec(num_params=0, num_features=32, weights=(weight,)))
    def vz_tiny_tagged(**kwargs):
        return build_model(tiny_model.TinyNet, "vz_tiny_tagged", **kwargs)

    published_file = str(tmp_path / "published.ckpt")
    ms.save_checkpoint(tiny_model.TinyNet(batch_norm=False), published_file)
    fetched = []

    def resolve(weight, **kwargs):
        fetched.append(weight.tag)
        return published_file

    monkeypatch.setattr("visionzoo.factory.resolve_pretrained", resolve)
    return fetched


def test_scoring_a_fine_tune_reads_only_its_checkpoint(published, tmp_path):
    cfg = tiny_config(tmp_path / "ckpt", model="vz_tiny_tagged", pretrained=True)
    trained = tiny_model.TinyNet(batch_norm=False)  # the tag's architecture, other weights
    path = str(tmp_path / "finetuned.ckpt")
    ms.save_checkpoint(trained, path)
    network = load_for_eval(cfg, path)
    assert published == []  # no download of the published weights
    want = {p.name: p.asnumpy() for p in trained.get_parameters()}
    got = {p.name: p.asnumpy() for p in network.get_parameters()}
    assert sorted(got) == sorted(want)  # no BatchNorm: the tag's architecture
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_the_trainers_second_eval_network_fetches_nothing(published, tmp_path):
    cfg = tiny_config(tmp_path / "ckpt", model="vz_tiny_tagged", pretrained=True, val_while_train=True)
    trainer = Trainer(cfg.replace(val_amp_level="O2")).setup()
    assert trainer.eval_network is not None
    assert published == [TAG]  # once, for the training network
    names = sorted(p.name for p in trainer.eval_network.get_parameters())
    assert names == sorted(p.name for p in trainer.network.get_parameters())
