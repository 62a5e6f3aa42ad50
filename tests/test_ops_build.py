"""Building visionzoo's CPU kernels in deployments: one build under a lock, a failure marker, the compile
timeout, ``VISIONZOO_FAST_OPS=require``, the prebuild command and persisted tuning. A fake compiler (a
shell script that records each compilation) keeps most of these cheap; the prebuild and tuning tests
build the real kernels into a fresh cache."""

import glob
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from script_utils import script_env
from visionzoo import runtime
from visionzoo.files import HOME_ENV
from visionzoo.ops import MaxPool2d, pooling
from visionzoo.ops._build import KernelBuildError, build_library, load_once

pytestmark = pytest.mark.cpu_only("builds and loads visionzoo's CPU kernels against the CPU build's libdnnl")


def _fake_compiler(tmp_path, body):
    """A CXX that answers --version / -dumpmachine, appends its pid to tmp_path/calls, then runs `body`
    (with $OUT the -o argument)."""
    script = tmp_path / "fake-cxx"
    script.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in --version) echo fake-cxx 1.0; exit 0;; -dumpmachine) echo x86_64-fake; exit 0;; esac
        echo $$ >> "{tmp_path}/calls"
        OUT=""; prev=""
        for a in "$@"; do [ "$prev" = "-o" ] && OUT="$a"; prev="$a"; done
        {body}
        """)
    )
    script.chmod(0o755)
    return str(script)


def _calls(tmp_path):
    path = tmp_path / "calls"
    return path.read_text().split() if path.exists() else []


def _cache_env():
    """The variable the kernel cache is found by (runtime.cache_dir -> files.cache_root), for subprocesses."""
    return {HOME_ENV: os.environ[HOME_ENV]}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache root for the test ($VISIONZOO_HOME, what files.cache_root reads); the value is the
    kernel directory in it."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(runtime.FAST_OPS_ENV, raising=False)
    kernels = runtime.cache_dir()
    assert kernels == str(tmp_path / "cache" / "kernels")  # the variable set here is the one the code reads
    return kernels


def test_racing_processes_build_once(tmp_path, cache):
    """Two processes starting on an empty cache: one compiles (slowly), the other waits on the lock and
    gets the same library."""
    cxx = _fake_compiler(tmp_path, 'sleep 2; echo built > "$OUT"')
    code = "from visionzoo.ops._build import build_library; print('LIB', build_library('maxpool2d_cpu'))"
    env = script_env({"CXX": cxx, **_cache_env()})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    libs = {line for out, _ in outs for line in out.splitlines() if line.startswith("LIB ")}
    assert len(libs) == 1
    assert len(_calls(tmp_path)) == 1
    assert open(libs.pop()[4:]).read() == "built\n"


def test_failed_build_leaves_a_marker_and_warns_once(tmp_path, cache, monkeypatch, caplog):
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, 'echo "x.cc:1:1: error: broken toolchain" >&2; exit 1'))
    caplog.set_level(logging.DEBUG, logger="visionzoo")
    with pytest.raises(KernelBuildError) as first:
        build_library("maxpool2d_cpu")
    assert first.value.reason == "x.cc:1:1: error: broken toolchain"
    assert first.value.marker and os.path.exists(first.value.marker)
    for _ in range(3):  # later attempts (other processes alike) read the marker instead of compiling
        with pytest.raises(KernelBuildError) as again:
            build_library("maxpool2d_cpu")
        assert again.value.reason == first.value.reason
    assert len(_calls(tmp_path)) == 1
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
    # the prebuild command's retry clears the marker and tries again
    with pytest.raises(KernelBuildError):
        build_library("maxpool2d_cpu", retry=True)
    assert len(_calls(tmp_path)) == 2


def test_compile_timeout(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, 'sleep 30; echo built > "$OUT"'))
    monkeypatch.setenv("VISIONZOO_BUILD_TIMEOUT", "0.5")
    with pytest.raises(KernelBuildError, match="timeout"):
        build_library("maxpool2d_cpu")


def test_cache_key_covers_the_compiler(tmp_path, cache, monkeypatch):
    from visionzoo.ops._build import cache_key, compiler_identity

    a = _fake_compiler(tmp_path, 'echo built > "$OUT"')
    b = tmp_path / "other-cxx"
    b.write_text(open(a).read().replace("fake-cxx 1.0", "fake-cxx 2.0"))
    b.chmod(0o755)
    assert compiler_identity(a) == "fake-cxx 1.0 | x86_64-fake"
    assert cache_key("maxpool2d_cpu", (), a) != cache_key("maxpool2d_cpu", (), str(b))
    assert cache_key("maxpool2d_cpu", (), a) != cache_key("maxpool2d_cpu", ("-ldl",), a)


def test_require_turns_a_fallback_into_an_error(tmp_path, cache, monkeypatch, caplog):
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, "exit 1"))
    broken = load_once(lambda: build_library("maxpool2d_cpu", what="CPU max pooling kernels"))
    monkeypatch.setattr(pooling, "build_cpu_kernels", broken)
    runtime.use_fast_pool(True)
    try:
        caplog.set_level(logging.WARNING, logger="visionzoo")
        assert not MaxPool2d(2, 2).fast  # default: the standard op, with one warning
        assert not MaxPool2d(2, 2).fast
        assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
        monkeypatch.setenv(runtime.FAST_OPS_ENV, "require")
        with pytest.raises(KernelBuildError, match="CPU max pooling kernels are unavailable"):
            MaxPool2d(2, 2)
    finally:
        runtime.use_fast_pool(None)


def _ops_cli(args, cache, **env):
    return subprocess.run(
        [sys.executable, "-m", "visionzoo.ops", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=script_env({**_cache_env(), **env}),
    )


def test_prebuild_command_fails_with_one_line(tmp_path, cache):
    proc = _ops_cli(["build"], cache, CXX=_fake_compiler(tmp_path, 'echo "fatal error: no headers" >&2; exit 1'))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: visionzoo's CPU max pooling kernels are unavailable")
    assert "fatal error: no headers" in lines[0]


# Tunes one convolution geometry, then reports its kernel's choice for it before and after, and a hash
# of the 15 calls' outputs.
_TUNE = """
import ctypes, hashlib, json, numpy as np, mindspore as ms, visionzoo
from visionzoo import runtime
from visionzoo.ops.conv import Conv2d, build_conv_kernels
ms.set_context(mode=ms.PYNATIVE_MODE)
runtime.use_fast_conv(True)
conv = Conv2d(5, 7, 3, stride=2, pad_mode="same")
conv.set_train(False)
lib = ctypes.CDLL(build_conv_kernels())
g = [np.array(v, dtype=d) for v, d in (((4, 5, 11, 11), np.int64), ((7, 5, 3, 3), np.int64),
                                       ((4, 7, 6, 6), np.int64), ((2, 2, 1, 1, 1, 1), np.int32))]
ptrs = [a.ctypes.data_as(ctypes.c_void_p) for a in g]
before = lib.VzConvChosenCandidate(1, *ptrs)
ms.set_seed(0)
conv.weight.set_data(ms.Tensor(np.random.default_rng(1).standard_normal((7, 5, 3, 3)).astype(np.float32)))
x = ms.Tensor(np.random.default_rng(2).standard_normal((4, 5, 11, 11)).astype(np.float32))
outputs = hashlib.md5()
for _ in range(15):
    outputs.update(conv(x).asnumpy().tobytes())
print("CHOICE", json.dumps([before, lib.VzConvChosenCandidate(1, *ptrs), outputs.hexdigest()]))
"""


def test_prebuild_then_tuning_choices_persist(cache):
    """The prebuild command builds everything into an empty cache; a tuned choice is saved at exit and the
    next process starts with it (same host, ISA and threads), so timings cannot change it between runs
    and the run that tuned computed the same outputs, bit for bit, as the one that did not; ``clear``
    forgets everything."""
    built = _ops_cli(["build"], cache)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "convolution kernels:" in built.stdout and "max pooling kernels:" in built.stdout
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", _TUNE],
            capture_output=True,
            text=True,
            timeout=300,
            env=script_env(_cache_env()),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.split("CHOICE ")[1]))
    assert runs[0][0] == -1 and runs[0][1] >= 0  # tuned from scratch
    assert runs[1][:2] == [runs[0][1], runs[0][1]]  # started with the saved choice
    assert runs[1][2] == runs[0][2]  # the tuning run's outputs were the kept formulation's
    stores = glob.glob(os.path.join(cache, "conv2d_cpu_*.tuning.json"))
    assert len(stores) == 1
    cleared = _ops_cli(["clear"], cache)
    assert cleared.returncode == 0
    assert not glob.glob(os.path.join(cache, "conv2d_cpu_*")) and not glob.glob(os.path.join(cache, "libdnnl_vz_*"))
