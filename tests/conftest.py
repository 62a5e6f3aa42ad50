"""Shared test fixtures. visionzoo is imported first: it sets oneDNN's CPU ISA before MindSpore's
first operation (convolutions are 30-100x slower otherwise)."""

import visionzoo  # noqa: F401  isort: skip

import os

import mindspore as ms
import pytest

from visionzoo import registry

ms.set_context(mode=ms.PYNATIVE_MODE)

#: The device MindSpore runs on by default in this build: "CPU" for the CPU wheel, "GPU"/"Ascend" otherwise.
DEFAULT_DEVICE = ms.get_context("device_target")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cpu_only(reason): the test assumes MindSpore's CPU build (device_target CPU by default); "
        "skipped, with its reason, on a GPU or Ascend build",
    )


def pytest_collection_modifyitems(config, items):
    """On a GPU/Ascend build, skip the tests marked cpu_only, saying why; every other test runs."""
    if DEFAULT_DEVICE == "CPU":
        return
    for item in items:
        marker = item.get_closest_marker("cpu_only")
        if marker is not None:
            why = marker.args[0] if marker.args else "assumes the CPU build"
            item.add_marker(
                pytest.mark.skip(reason=f"needs MindSpore's CPU build (this one runs on {DEFAULT_DEVICE}): {why}")
            )


@pytest.fixture
def isolated_registry():
    """Let a test register models and plugins; the registry is restored afterwards."""
    import visionzoo.factory  # noqa: F401  registers the built-in models

    models, tried = dict(registry._MODELS), set(registry._PLUGINS_TRIED)
    yield registry
    registry._MODELS.clear()
    registry._MODELS.update(models)
    registry._PLUGINS_TRIED.clear()
    registry._PLUGINS_TRIED.update(tried)


@pytest.fixture(params=[ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
def mode(request):
    """Run the test once in graph mode and once in PyNative mode (the value is the mode)."""
    old = ms.get_context("mode")
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=old)


@pytest.fixture(autouse=True)
def _pynative_after_each_test():
    """Trainer runs switch to their recipe's mode (graph by default); give the next test PyNative back."""
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


_EXIT_STATUS = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """End the process once pytest has printed its summary.

    MindSpore 2.10's ``Cell.__del__`` raises for every cell still alive when the interpreter tears
    down its modules, printing screens of "Exception ignored in Cell.__del__" after pytest's closing
    line. Nothing is left to clean up here (pytest has finished and flushed), so skip that teardown.
    """
    if "code" in _EXIT_STATUS:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["code"])
