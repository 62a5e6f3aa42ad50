"""C++-level tests of the convolution kernel's units (tests/csrc/conv_units_test.cc): the geometry key and
its saved-choice rows, the formulation table, the scratch sets, the chooser, the batched GEMM's grouping.
The driver is compiled with the library's own compiler flags against the units it tests (no oneDNN
needed: those units do not call it) and run; each failed check prints its line."""

import os
import subprocess

import pytest

from visionzoo.ops._build import CSRC, CXXFLAGS, compiler

UNITS = ("scratch.cc", "chooser.cc", "batch_gemm.cc", "dnnl_api.cc", "dnnl_stream.cc")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "conv_units_test.cc")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    cxx = compiler()
    if cxx is None:
        pytest.fail("no C++ compiler: the fast kernels (and this test) need one")
    folder = os.path.join(CSRC, "conv2d_cpu")
    exe = str(tmp_path_factory.mktemp("units") / "conv_units_test")
    flags = [f for f in CXXFLAGS if f != "-shared"]  # the library's flags, for an executable
    cmd = [cxx, *flags, "-Wall", "-Werror", "-Wno-unused-parameter", f"-I{folder}", "-o", exe, DRIVER]
    subprocess.run([*cmd, *(os.path.join(folder, u) for u in UNITS), "-ldl"], check=True, timeout=600)
    return exe


def test_kernel_units(driver):
    """Every check of the driver passes (it prints the failed ones)."""
    result = subprocess.run([driver], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("passed "), result.stdout
