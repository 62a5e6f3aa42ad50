"""Checkpoint integrity: the embedded checksum, verified by every reader of a whole file."""

import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

import tiny_model  # noqa: F401  registers vz_tiny_test
from visionzoo import create_model
from visionzoo.checkpoint import read_checkpoint, read_training_state, records, save_checkpoint
from visionzoo.checkpoint.integrity import content_digest
from visionzoo.errors import CheckpointError


def _saved(tmp_path, name="net.ckpt"):
    net = create_model("vz_tiny_test", num_classes=10)
    path = str(tmp_path / name)
    save_checkpoint(net, path, append_dict={records.EPOCH: 3, records.MODEL: "vz_tiny_test", "_vz_note": 2.5})
    return net, path


def test_the_checksum_is_written_last_and_round_trips(tmp_path):
    net, path = _saved(tmp_path)
    params = read_checkpoint(path)  # verifies
    assert list(ms.load_checkpoint(path))[-1] == records.CHECKSUM
    assert params[records.CHECKSUM] == content_digest(params)
    assert int(read_training_state(path)[records.EPOCH].asnumpy()) == 3
    # the digest covers names, dtypes and values
    changed = dict(params, **{"classifier.bias": Tensor(params["classifier.bias"].asnumpy() + 1)})
    assert content_digest(changed) != content_digest(params)


def _flip_inside_weights(path):
    """Flip one byte in the middle of the largest tensor's data (the file still parses)."""
    params = ms.load_checkpoint(path)
    big = max(params.values(), key=lambda p: p.asnumpy().nbytes if hasattr(p, "asnumpy") else 0).asnumpy()
    raw = bytearray(open(path, "rb").read())
    at = bytes(raw).find(big.tobytes()[:64])
    assert at > 0
    raw[at + 100] ^= 0x40
    open(path, "wb").write(bytes(raw))


def test_a_flipped_byte_is_refused_by_every_reader(tmp_path):
    _, path = _saved(tmp_path)
    _flip_inside_weights(path)
    ms.load_checkpoint(path)  # MindSpore itself reads it happily
    for read in (
        lambda: read_checkpoint(path),
        lambda: read_training_state(path),
        lambda: create_model("vz_tiny_test", num_classes=10, checkpoint_path=path),
    ):
        with pytest.raises(CheckpointError) as err:
            read()
        assert err.value.path == path and "does not match its checksum" in err.value.what


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_a_truncated_file_is_refused(tmp_path, keep):
    _, path = _saved(tmp_path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    with pytest.raises(CheckpointError) as err:
        read_training_state(path)
    assert err.value.path == path


def test_a_file_cut_after_the_weights_keeps_them_but_is_no_resume_point(tmp_path):
    net, path = _saved(tmp_path)
    params = ms.load_checkpoint(path)
    tensors = [{"name": k, "data": v} for k, v in params.items() if not isinstance(v, str)]
    texts = {k: v for k, v in params.items() if isinstance(v, str) and k != records.CHECKSUM}
    ms.save_checkpoint(tensors, path, append_dict=texts)  # what a cut exactly before the last record leaves
    read_checkpoint(path)  # weights: readable (nothing to verify)
    with pytest.raises(CheckpointError, match="has no checksum"):
        read_training_state(path)


def test_resume_auto_falls_back_to_the_newest_intact_checkpoint(tmp_path, caplog):
    from test_trainer import read_metrics, tiny_cfg
    from visionzoo.engine.trainer import Trainer

    run = dict(epoch_size=3, decay_epochs=2, keep_checkpoint_max=3)
    Trainer(tiny_cfg(tmp_path, **run)).fit()
    d = tmp_path / "ckpt"
    reference = read_metrics(d)
    newest, middle = str(d / "vz_tiny_test-e0003.ckpt"), str(d / "vz_tiny_test-e0002.ckpt")
    _flip_inside_weights(newest)
    with open(middle, "r+b") as f:
        f.truncate(os.path.getsize(middle) // 2)
    with caplog.at_level("WARNING"):
        trainer = Trainer(tiny_cfg(tmp_path, resume="auto", **run))
        trainer.fit()
    text = caplog.text
    assert f"skipping {newest}" in text and "does not match its checksum" in text
    assert f"skipping {middle}" in text
    assert "falling back to " + str(d / "vz_tiny_test-e0001.ckpt") in text
    records_ = read_metrics(d)
    assert [r["epoch"] for r in records_] == [1, 2, 3]
    for got, want in zip(records_, reference):  # epochs 2 and 3 retrained from epoch 1's state
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)
    read_training_state(newest)  # rewritten intact


def test_validate_refuses_a_damaged_checkpoint_in_one_line(tmp_path):
    from ckpt_utils import train_tiny, write_recipe
    from script_utils import error_lines, run_script

    cfg, ckpt = train_tiny(tmp_path / "ckpt")
    _flip_inside_weights(ckpt)
    recipe = write_recipe(tmp_path / "recipe.yaml", cfg)
    proc = run_script(os.path.join("tests", "tiny_run.py"), ["validate.py", "-c", recipe, "--ckpt_path", ckpt])
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"error: {ckpt}: checkpoint is damaged"), proc.stderr[-2000:]


# --- memory: MindSpore 2.10 compares a .ckpt's size with the free pages, not the available memory -----


def _free_pages_only(monkeypatch, pages=1):
    """The state of a machine whose page cache holds almost all memory: sysconf reports `pages` free."""
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: pages if name == "SC_AVPHYS_PAGES" else real(name))


def test_a_checkpoint_larger_than_the_free_pages_loads_when_memory_is_available(tmp_path, monkeypatch):
    from mindspore.train import serialization

    net, path = _saved(tmp_path)
    own_check = serialization._get_available_memory
    _free_pages_only(monkeypatch)
    with pytest.raises(ValueError, match="exceeds current available memory"):
        ms.load_checkpoint(path)  # the defect read_checkpoint works around, still present in this MindSpore
    params = read_checkpoint(path)
    assert set(net.parameters_dict()) <= set(params)
    np.testing.assert_array_equal(params["classifier.weight"].asnumpy(), net.classifier.weight.asnumpy())
    assert serialization._get_available_memory is own_check  # the check is MindSpore's own again afterwards


def test_a_checkpoint_larger_than_the_available_memory_is_refused_in_one_line(tmp_path, monkeypatch):
    from visionzoo.checkpoint import io

    _, path = _saved(tmp_path)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:               4 kB\nMemAvailable:          8 kB\n")
    monkeypatch.setattr(io, "_MEMINFO", str(meminfo))
    assert io.available_memory() == 8 * 1024
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert str(e.value) == (
        f"{path}: cannot read checkpoint: the file ({os.path.getsize(path) / 2**20:,.0f} MiB) is "
        "larger than the memory available now (0 MiB); free memory (stop other jobs) or read it "
        "on a machine with more"
    )
