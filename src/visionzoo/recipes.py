"""The recipes that ship inside the package (``visionzoo/configs/<family>/<name>.yaml``).

The repository's top-level ``configs/`` is the same folder (a link), so the files users read on
GitHub and the ones an installed wheel carries are one copy. A recipe is named by its file name
without ``.yaml`` (``vgg11_bn_cifar_digits_cpu``); :func:`resolve_recipe` turns a name or a path into
a file path, so ``-c NAME`` works wherever visionzoo is installed.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import yaml

from .errors import ConfigError

__all__ = ["recipes_dir", "list_recipes", "recipe_path", "resolve_recipe", "find_recipes"]

_logger = logging.getLogger(__name__)


def recipes_dir() -> Path:
    """The packaged recipe folder."""
    return Path(__file__).resolve().parent / "configs"


def _index() -> Dict[str, Path]:
    return {p.stem: p for p in sorted(recipes_dir().rglob("*.yaml"))}


def list_recipes(filter: str = "") -> List[str]:
    """Sorted names of the packaged recipes, optionally filtered by a shell-style wildcard
    (``list_recipes("googlenet*")``)."""
    return sorted(n for n in _index() if not filter or fnmatch.fnmatchcase(n, filter))


def recipe_path(name: str) -> Path:
    """The file of packaged recipe ``name`` (ConfigError with suggestions if there is none)."""
    index = _index()
    if name in index:
        return index[name]
    from .registry import suggest

    close = suggest(name, list(index))
    hint = f"did you mean: {', '.join(close)}?" if close else "see visionzoo.list_recipes() for the packaged ones"
    raise ConfigError(f"no recipe file or packaged recipe named {name!r}", hint=hint)


def resolve_recipe(name_or_path: Union[str, "os.PathLike[str]"]) -> str:
    """A recipe file path: ``name_or_path`` itself when it is an existing file, else the packaged
    recipe of that name (``.yaml`` and folders may be given: ``vgg/vgg11_bn_cifar_digits_cpu.yaml``)."""
    text = os.fspath(name_or_path)
    if os.path.isfile(text):
        return text
    stem = Path(text).name
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    if os.sep in text or "/" in text or text.endswith(".yaml"):
        if stem not in _index():
            raise ConfigError(
                "config file not found",
                path=text,
                hint="pass an existing recipe file or a packaged recipe name, "
                "e.g. -c vgg11_bn_cifar_digits_cpu (visionzoo.list_recipes() lists them)",
            )
    return str(recipe_path(stem))


def _model_of(path: Path) -> Optional[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:  # a broken recipe is reported by the recipe tests, not here
        _logger.debug("skipping %s: %s", path, e)
        return None
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict):  # grouped layout: ``model: {model: name, ...}``
        model = model.get("model")
    return model if isinstance(model, str) else None


def find_recipes(model: str) -> Tuple[str, ...]:
    """Names of the packaged recipes whose ``model:`` key is ``model``."""
    return tuple(name for name, path in _index().items() if _model_of(path) == model)
