"""torchvision's VGG and GoogLeNet definitions, for parity tests, without ``import torchvision``.

The installed torchvision 0.28 wheel's C++ ops were built for another torch, so ``import
torchvision`` fails ("operator torchvision::nms does not exist") while its model files are plain
Python over torch. :func:`torchvision_models` registers empty stand-ins for the packages
``torchvision``, ``torchvision.models`` and ``torchvision.transforms`` (their ``__path__`` points at
the real folders, but their ``__init__.py``, which loads the C++ ops, is not run) and for
``torchvision.transforms._presets`` (the model files only name its ``ImageClassification`` in their
weights metadata), imports the two model modules from their files, then removes every ``torchvision*`` entry it added to
``sys.modules`` so nothing else in the test session sees the stand-ins.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Tuple


def torchvision_models() -> Tuple[types.ModuleType, types.ModuleType]:
    """(torchvision.models.vgg, torchvision.models.googlenet) as modules."""
    spec = importlib.util.find_spec("torchvision")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchvision is not installed (pip install -e .[test])")
    root = list(spec.submodule_search_locations)[0]
    before = {k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")}
    try:
        for name, folder in (
            ("torchvision", root),
            ("torchvision.models", os.path.join(root, "models")),
            ("torchvision.transforms", os.path.join(root, "transforms")),
        ):
            if name not in sys.modules:
                package = types.ModuleType(name)
                package.__path__ = [folder]
                package.__package__ = name
                sys.modules[name] = package
        if "torchvision.transforms._presets" not in sys.modules:
            presets = types.ModuleType("torchvision.transforms._presets")
            presets.ImageClassification = type("ImageClassification", (), {})  # metadata only, never called here
            sys.modules["torchvision.transforms._presets"] = presets
        vgg = importlib.import_module("torchvision.models.vgg")
        googlenet = importlib.import_module("torchvision.models.googlenet")
    finally:
        for name in [
            k for k in sys.modules if (k == "torchvision" or k.startswith("torchvision.")) and k not in before
        ]:
            del sys.modules[name]
    return vgg, googlenet
