"""visionzoo: GoogLeNet and VGG model zoo for MindSpore with faithful recipes and one trainer.

The public names below are loaded on first use, so ``import visionzoo.config`` (or any other
submodule) does not pull in the model, checkpoint or prediction stacks.
"""

# runtime must come first: it sets oneDNN's environment before MindSpore's first operation.
from . import runtime as _runtime  # noqa: F401  isort: skip

import importlib
from typing import Any

from .errors import CheckpointError, ConfigError, DataError, DeviceError, ModelError, VisionZooError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "create_model": "factory",
    "list_models": "factory",
    "get_model_info": "factory",
    "is_model": "factory",
    "register_model": "registry",
    "list_recipes": "recipes",
    "Predictor": "tasks.predict",
    "Prediction": "tasks.predict",
    "predict": "tasks.predict",
}

__all__ = list(_LAZY) + ["VisionZooError", "ConfigError", "DataError", "CheckpointError", "DeviceError", "ModelError"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'visionzoo' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
