"""Package-wide helpers and contracts: structured errors, the lazy facade, packaged recipes, the
cache root, atomic writes and download-and-verify (against a loopback HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

import visionzoo
from script_utils import script_env
from visionzoo import files, recipes
from visionzoo.cli import format_error
from visionzoo.config import load_config
from visionzoo.errors import CheckpointError, ConfigError, VisionZooError


def test_errors_carry_fields_and_format_them_once():
    e = CheckpointError("checkpoint file not found", path="/x/a.ckpt", hint="pass an existing .ckpt file")
    assert (e.what, e.path, e.hint) == ("checkpoint file not found", "/x/a.ckpt", "pass an existing .ckpt file")
    assert str(e) == "/x/a.ckpt: checkpoint file not found; pass an existing .ckpt file"
    assert format_error(e) == str(e)
    other = e.with_hint("use the recipe it was trained with")
    assert type(other) is CheckpointError and other.path == e.path and other.hint.startswith("use the recipe")
    assert str(ConfigError("plain message")) == "plain message"
    assert format_error(ValueError("a\n  b")) == "a b"  # not ours: its text, on one line


def test_importing_a_submodule_does_not_load_the_rest():
    code = (
        "import sys, visionzoo.config; "
        "print(sorted(m for m in sys.modules if m.startswith('visionzoo.tasks') or m == 'visionzoo.factory'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=script_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in visionzoo.__all__:
        assert getattr(visionzoo, name) is not None
    assert callable(visionzoo.create_model) and visionzoo.Predictor.__name__ == "Predictor"
    with pytest.raises(AttributeError):
        visionzoo.no_such_name  # noqa: B018


def test_recipes_by_name_or_path():
    names = visionzoo.list_recipes()
    assert "vgg11_bn_cifar_digits_cpu" in names and names == sorted(names)
    assert visionzoo.list_recipes("googlenet*") == [n for n in names if n.startswith("googlenet")]
    by_name = recipes.resolve_recipe("vgg11_bn_cifar_digits_cpu")
    assert by_name.endswith(os.path.join("vgg", "vgg11_bn_cifar_digits_cpu.yaml")) and os.path.isfile(by_name)
    assert load_config("vgg11_bn_cifar_digits_cpu") == load_config(by_name)
    with pytest.raises(ConfigError, match="did you mean: vgg11_bn_cifar_digits_cpu"):
        recipes.resolve_recipe("vgg11_bn_cifar_digit_cpu")
    with pytest.raises(ConfigError, match="config file not found"):
        recipes.resolve_recipe("no/such/file.yaml")


def test_repository_configs_folder_is_the_packaged_one():
    repo_configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    assert os.path.realpath(repo_configs) == str(recipes.recipes_dir())


def test_cache_root_follows_visionzoo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VISIONZOO_HOME", str(tmp_path / "home"))
    assert files.cache_root("kernels") == tmp_path / "home" / "kernels"
    from visionzoo import runtime
    from visionzoo.checkpoint import weights_dir

    assert runtime.cache_dir() == str(tmp_path / "home" / "kernels")
    assert weights_dir() == tmp_path / "home" / "checkpoints"
    monkeypatch.delenv("VISIONZOO_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert files.cache_root() == tmp_path / "xdg" / "visionzoo"


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    files.write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left
    files.write_text_atomic(target, "new")
    assert target.read_text() == "new"


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    truncate_to = None  # send fewer bytes than Content-Length says

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: self.truncate_to] if self.truncate_to is not None else self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_url(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/weights.bin"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_download_verified(http_url, tmp_path, monkeypatch):
    payload = os.urandom(3000)
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(_Handler, "payload", payload)
    target = tmp_path / "cache" / "weights.bin"
    assert files.download_verified(http_url, target, digest[:8]) == target  # a published prefix is enough
    assert target.read_bytes() == payload
    target.unlink()
    with pytest.raises(files.DigestMismatch) as err:
        files.download_verified(http_url, target, "0" * 64)
    assert err.value.actual == digest and not target.exists()
    monkeypatch.setattr(_Handler, "truncate_to", 1000)
    with pytest.raises(files.DownloadFailed, match="1000 of 3000 bytes"):
        files.download_verified(http_url, target, digest)
    assert not target.exists() and os.listdir(tmp_path / "cache") == []  # a partial file never takes the name
    with pytest.raises(files.DownloadFailed):
        files.download_verified("http://127.0.0.1:9/none", target, digest)  # nothing listens on port 9


def test_visionzoo_error_is_the_base_of_every_user_error():
    from visionzoo import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), VisionZooError)
