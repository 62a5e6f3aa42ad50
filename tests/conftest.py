"""Shared test fixtures. visionzoo is imported first: it sets oneDNN's CPU ISA before MindSpore's
first operation (convolutions are 30-100x slower otherwise)."""
import visionzoo  # noqa: F401  isort: skip

import mindspore as ms
import pytest

from visionzoo import registry

ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def isolated_registry():
    """Let a test register models and plugins; the registry is restored afterwards."""
    registry._load_builtins()
    models, tried = dict(registry._MODELS), set(registry._PLUGINS_TRIED)
    yield registry
    registry._MODELS.clear()
    registry._MODELS.update(models)
    registry._PLUGINS_TRIED.clear()
    registry._PLUGINS_TRIED.update(tried)
