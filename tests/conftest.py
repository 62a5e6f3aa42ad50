"""Shared test fixtures. visionzoo is imported first: it sets oneDNN's CPU ISA before MindSpore's
first operation (convolutions are 30-100x slower otherwise)."""
import visionzoo  # noqa: F401  isort: skip

import os

import mindspore as ms
import pytest

from visionzoo import registry

ms.set_context(mode=ms.PYNATIVE_MODE)


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
