"""CIFAR-10 download: served from a local HTTP server on 127.0.0.1; checksum and archive safety."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import tarfile
import threading

import pytest

import data_utils as du
import visionzoo  # noqa: F401  sets the CPU runtime defaults before MindSpore runs
from visionzoo.config import Config
from visionzoo.data import build_dataset
from visionzoo.data import download as dl
from visionzoo.errors import DataError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL) of an HTTP server bound to loopback only."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a proxy set in the environment must not intercept
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_download_verifies_and_extracts_official_layout(server, tmp_path):
    root, base = server
    archive = du.cifar10_archive(str(root / "cifar-10-binary.tar.gz"), per_file=(2, 2, 2, 2, 2), n_test=3)
    data_dir = tmp_path / "data"
    folder = dl.download_cifar10(str(data_dir), url=f"{base}/cifar-10-binary.tar.gz", md5=_md5(archive))
    assert folder == str(data_dir / "cifar-10-batches-bin")
    assert sorted(os.listdir(folder)) == [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    assert os.listdir(data_dir) == ["cifar-10-batches-bin"]  # no temporary files left


def test_build_dataset_downloads_when_asked(server, tmp_path, monkeypatch):
    root, base = server
    archive = du.cifar10_archive(str(root / "c10.tar.gz"), per_file=(1, 2, 3, 1, 1), n_test=5)
    monkeypatch.setattr(dl, "CIFAR10_URL", f"{base}/c10.tar.gz")
    monkeypatch.setattr(dl, "CIFAR10_MD5", _md5(archive))
    data_dir = str(tmp_path / "data")
    cfg = Config(
        dataset="cifar10", data_dir=data_dir, num_classes=10, batch_size=4, image_resize=32, dataset_download=True
    )
    assert build_dataset(cfg, "train").num_samples == 8
    assert build_dataset(cfg, "val").num_samples == 5
    cfg.dataset_download = False  # already there: no download needed
    assert build_dataset(cfg, "val").num_samples == 5


def test_wrong_checksum_refuses_and_leaves_nothing(server, tmp_path):
    root, base = server
    du.cifar10_archive(str(root / "cifar-10-binary.tar.gz"))
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as err:
        dl.download_cifar10(str(data_dir), url=f"{base}/cifar-10-binary.tar.gz", md5="0" * 32)
    msg = str(err.value)
    assert msg.startswith(f"{base}/cifar-10-binary.tar.gz: md5 ") and "does not match the expected " + "0" * 32 in msg
    assert "nothing was extracted" in msg and os.listdir(data_dir) == []


def _escaping(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "member,reason",
    [
        (_escaping("cifar-10-batches-bin/../../evil.txt"), "its path leaves the extraction folder"),
        (_escaping("/tmp/evil_absolute.txt"), "its path leaves the extraction folder"),
        (_link("cifar-10-batches-bin/passwd", "/etc/passwd"), "links and special files are not extracted"),
        (
            _link("cifar-10-batches-bin/hard", "/etc/passwd", tarfile.LNKTYPE),
            "links and special files are not extracted",
        ),
    ],
)
def test_unsafe_archive_is_refused_and_leaves_nothing(server, tmp_path, member, reason):
    root, base = server
    archive = du.cifar10_archive(str(root / "bad.tar.gz"), extra=[member])
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as err:
        dl.download_cifar10(str(data_dir), url=f"{base}/bad.tar.gz", md5=_md5(archive))
    assert f"refused member {member.name!r}: {reason}" in str(err.value)
    assert os.listdir(data_dir) == []
    assert not (tmp_path / "evil.txt").exists() and not os.path.exists("/tmp/evil_absolute.txt")


def test_missing_url_is_a_data_error(server, tmp_path):
    _, base = server
    with pytest.raises(DataError, match=r"/nope\.tar\.gz: download failed .*download it by hand"):
        dl.download_cifar10(str(tmp_path / "data"), url=f"{base}/nope.tar.gz", md5="0" * 32)
    assert os.listdir(tmp_path / "data") == []


def test_archive_without_the_cifar_folder_is_refused(server, tmp_path):
    root, base = server
    path = root / "other.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(__file__, arcname="something/else.py")
    with pytest.raises(DataError, match=r"the archive has no cifar-10-batches-bin/ folder"):
        dl.download_cifar10(str(tmp_path / "data"), url=f"{base}/other.tar.gz", md5=_md5(path))
    assert os.listdir(tmp_path / "data") == []


def test_official_url_and_checksum():
    assert dl.CIFAR10_URL.endswith("/cifar-10-binary.tar.gz") and dl.CIFAR10_URL.startswith("https://")
    assert dl.CIFAR10_MD5 == "c32a1d4ab5d03f1284b67883e8d87530"
