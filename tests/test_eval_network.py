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


def _ema_checkpoint(path):
    """A TinyNet checkpoint with EMA averages (weights + 1) and the update counter, as training saves it."""
    from visionzoo.engine.ema import EMA

    net = tiny_model.TinyNet()
    ema = EMA(net, 0.9)
    for average in ema.averages:
        average.set_data(ms.Tensor(average.asnumpy() + 1))
    ms.save_checkpoint([*net.get_parameters(), *ema.averages, ema.updates], path)
    return {p.name: p.asnumpy() + 1 for p in net.get_parameters()}


def test_scoring_ema_weights_reads_the_checkpoint_once(tmp_path, monkeypatch):
    path = str(tmp_path / "ema.ckpt")
    averages = _ema_checkpoint(path)
    reads = []
    real = ms.load_checkpoint
    monkeypatch.setattr(ms, "load_checkpoint", lambda f, *a, **k: reads.append(f) or real(f, *a, **k))
    network = load_for_eval(tiny_config(tmp_path / "ckpt", ema=True), path)
    assert reads == [path]  # one read: such a file holds the weights twice (and the optimizer state)
    for p in network.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), averages[p.name], err_msg=p.name)


def test_ema_true_on_a_checkpoint_without_averages_is_one_error(tmp_path):
    from visionzoo.errors import CheckpointError

    path = str(tmp_path / "plain.ckpt")
    ms.save_checkpoint(tiny_model.TinyNet(), path)
    with pytest.raises(CheckpointError) as e:
        load_for_eval(tiny_config(tmp_path / "ckpt", ema=True), path)
    assert str(e.value) == (
        f"{path}: ema True, but the checkpoint holds no EMA weights (ema.<name>); "
        "load it with ema False, or pick a checkpoint trained with ema True"
    )
