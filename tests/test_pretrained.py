"""Published weights end to end, offline: downloads from a loopback HTTP server (a good file, a wrong
hash, a truncated transfer, no server at all), files placed in the cache, ``pretrained_file=PATH``,
and ``pretrained=True`` for every registered tag.

The real published files are 28-550 MB and out of reach here, so the per-tag test places small
stand-in files made in the tag's own format (a MindSpore ``.ckpt`` for MindCV tags, a torch ``.pth``
with torch's names for torchvision tags) in the cache and registers their sha256 in place of the
published one; the cache lookup, hash check, torch reader, conversion and strict load are the real
ones. GoogLeNet stand-ins are whole models; VGG stand-ins hold the first stage, loaded with
``features_only=True, out_indices=(0,)`` (a 500 MB head per tag would be the only difference).
"""

import dataclasses
import http.server
import os
import re
import socket
import threading

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn

import visionzoo
from visionzoo import CheckpointError, create_model, list_models
from visionzoo.files import file_digest
from visionzoo.registry import ModelSpec, WeightSpec, build_model, register_model


class Tiny(nn.Cell):
    def __init__(self, num_classes=5, in_channels=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, has_bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.classifier = nn.Dense(4, num_classes)

    def construct(self, x):
        return self.classifier(self.bn(self.conv(x)).mean((2, 3)))


def _params(model):
    return {p.name: p.asnumpy() for p in model.get_parameters()}


class _Server:
    """A loopback HTTP server: ``files[path] = bytes``; ``truncate[path] = n`` sends only n bytes of
    the announced length, then closes. ``hits`` counts requests per path."""

    def __init__(self):
        self.files, self.truncate, self.hits = {}, {}, {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: outer.truncate.get(self.path, len(body))])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VISIONZOO_OFFLINE", raising=False)
    return tmp_path / "home" / "checkpoints"


def _tiny_file(tmp_path):
    reference = Tiny()
    path = tmp_path / "tiny-weights.ckpt"
    ms.save_checkpoint(reference, str(path))
    return reference, path


def _register(url, sha256):
    weight = WeightSpec(tag="net_in1k", url=url, sha256=sha256, num_classes=5, source="test")
    spec = ModelSpec(num_params=0, num_features=4, first_conv="conv", weights=(weight,))

    @register_model(name="tiny_dl", spec=spec)
    def tiny_dl(**kwargs):
        return build_model(Tiny, "tiny_dl", **kwargs)


def _closed_port_url():
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny-weights.ckpt"


def test_download_verifies_and_caches_then_works_offline(tmp_path, home, server, isolated_registry, monkeypatch):
    reference, path = _tiny_file(tmp_path)
    server.files["/w/tiny-weights.ckpt"] = path.read_bytes()
    _register(server.url + "/w/tiny-weights.ckpt", file_digest(path)[:8])  # a published 8-digit prefix
    model = create_model("tiny_dl.net_in1k", pretrained=True, num_classes=5)
    assert server.hits["/w/tiny-weights.ckpt"] == 1
    assert sorted(os.listdir(home)) == ["tiny-weights.ckpt"]  # no temporary file left behind
    assert all(np.array_equal(a, b) for a, b in zip(_params(model).values(), _params(reference).values()))
    server.close()
    monkeypatch.setenv("VISIONZOO_OFFLINE", "1")
    again = create_model("tiny_dl", pretrained=True, num_classes=5)  # the default tag, from the cache
    assert np.array_equal(_params(again)["conv.weight"], _params(reference)["conv.weight"])


def test_download_with_wrong_hash_is_deleted_and_said_in_one_line(tmp_path, home, server, isolated_registry):
    _, path = _tiny_file(tmp_path)
    server.files["/tiny-weights.ckpt"] = path.read_bytes()
    _register(server.url + "/tiny-weights.ckpt", "deadbeef")
    with pytest.raises(CheckpointError) as err:
        create_model("tiny_dl", pretrained=True, num_classes=5)
    text = str(err.value)
    assert "\n" not in text
    assert f"have sha256 {file_digest(path)}, expected deadbeef" in text and "the file was deleted" in text
    assert server.url + "/tiny-weights.ckpt" in text and str(home / "tiny-weights.ckpt") in text
    assert not home.exists() or os.listdir(home) == []


def test_truncated_transfer_never_becomes_a_cache_entry(tmp_path, home, server, isolated_registry):
    _, path = _tiny_file(tmp_path)
    body = path.read_bytes()
    server.files["/tiny-weights.ckpt"] = body
    server.truncate["/tiny-weights.ckpt"] = len(body) // 2
    _register(server.url + "/tiny-weights.ckpt", file_digest(path))
    with pytest.raises(
        CheckpointError,
        match=r"cannot download .*\(transfer ended after \d+ of \d+ bytes\); "
        r"nothing was cached",
    ):
        create_model("tiny_dl", pretrained=True, num_classes=5)
    assert not home.exists() or os.listdir(home) == []


def test_no_network_names_url_cache_path_and_how_to_place_the_file(tmp_path, home, isolated_registry, monkeypatch):
    reference, path = _tiny_file(tmp_path)
    url = _closed_port_url()
    _register(url, file_digest(path))
    with pytest.raises(CheckpointError) as err:
        create_model("tiny_dl", pretrained=True, num_classes=5)
    text = str(err.value)
    assert url in text and str(home / "tiny-weights.ckpt") in text and "pretrained_file" in text
    monkeypatch.setenv("VISIONZOO_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="VISIONZOO_OFFLINE"):
        create_model("tiny_dl", pretrained=True, num_classes=5)
    # a copy of the published file works with no network, and is checked
    model = create_model("tiny_dl", pretrained_file=str(path), num_classes=5)
    assert np.array_equal(_params(model)["bn.gamma"], _params(reference)["bn.gamma"])
    other = tmp_path / "other.ckpt"
    ms.save_checkpoint(Tiny(), str(other))
    with pytest.raises(CheckpointError, match="other.ckpt: sha256 is .*not the published 'net_in1k' weights"):
        create_model("tiny_dl", pretrained_file=str(other), num_classes=5)
    assert other.exists()  # the user's own file is never deleted
    # placed in the cache by hand: works offline
    home.mkdir(parents=True, exist_ok=True)
    (home / "tiny-weights.ckpt").write_bytes(path.read_bytes())
    model = create_model("tiny_dl", pretrained=True, num_classes=3)  # and fine-tunes: a fresh 3-class head
    assert np.array_equal(_params(model)["conv.weight"], _params(reference)["conv.weight"])
    assert _params(model)["classifier.weight"].shape == (3, 4)


# --- every registered tag, offline from the cache ------------------------------------------------


def _torch_names(name, renames):
    """visionzoo name -> torch name (the inverse of the documented conversion, written out here)."""
    name = re.sub(r"\.gamma$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    name = name.replace("moving_mean", "running_mean").replace("moving_variance", "running_var")
    if renames:  # GoogLeNet: b1..b4 -> branch1..4, classifier -> fc
        name = re.sub(r"\.b(\d)\.", r".branch\1.", name)
        name = re.sub(r"^classifier\.", "fc.", name)
    return name


@pytest.mark.parametrize("tag", list_models(pretrained=True))
def test_pretrained_true_works_offline_for_every_tag_from_a_file_placed_in_the_cache(
    tag, tmp_path, home, isolated_registry, monkeypatch
):
    base, _ = tag.split(".")
    spec = visionzoo.registry.get_model_spec(base)
    weight = spec.get_weight(tag.split(".")[1])
    options = {} if base.startswith("googlenet") else {"features_only": True, "out_indices": (0,)}
    reference = create_model(tag, **options)  # the tag's architecture, random weights
    state = _params(reference)
    home.mkdir(parents=True, exist_ok=True)
    target = home / weight.file_name
    if weight.file_name.endswith(".pth"):
        torch.save(
            {_torch_names(k, spec.torch_renames): torch.from_numpy(v) for k, v in state.items()},
            target,
            _use_new_zipfile_serialization=False,
        )  # torchvision's published files use this layout
    else:
        ms.save_checkpoint(reference, str(target))
    entry = isolated_registry._MODELS[base]
    stand_in = dataclasses.replace(weight, sha256=file_digest(target))
    weights = tuple(stand_in if w.tag == weight.tag else w for w in spec.weights)
    monkeypatch.setitem(
        isolated_registry._MODELS,
        base,
        dataclasses.replace(entry, spec=dataclasses.replace(entry.spec, weights=weights)),
    )
    monkeypatch.setenv("VISIONZOO_OFFLINE", "1")
    model = create_model(tag, pretrained=True, **options)
    loaded = _params(model)
    assert loaded.keys() == state.keys()
    assert all(np.array_equal(loaded[k], state[k]) for k in state)
    assert model.pretrained_tag == weight.tag
    torchvision = weight.source == "torchvision"  # the tag's architecture options were applied
    if base.startswith("vgg"):
        assert ("features.0.bias" in state) == torchvision
    else:
        assert model.transform_input == torchvision
