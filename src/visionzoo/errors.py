"""Errors that a user can fix, carrying their parts as fields.

Every error raised for bad user input (a config, a path, data, a checkpoint, a device, a model
option) derives from :class:`VisionZooError`. An error holds three fields: ``what`` (the problem),
``path`` (the file or folder concerned, if any) and ``hint`` (the likely fix). Code that re-raises
an error with more context changes a field (:meth:`VisionZooError.with_hint`); it never parses the
text. ``str(error)`` is the one-line form the command-line scripts print (then exit status 2).
"""

from __future__ import annotations

from typing import List, NoReturn, Optional, TypeVar

__all__ = [
    "VisionZooError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "DeviceError",
    "ModelError",
    "TrainingDiverged",
    "CheckpointNotFoundError",
]  # the error classes; raise_in_pipeline and pipeline_error below are the input pipeline's plumbing

_E = TypeVar("_E", bound="VisionZooError")


class VisionZooError(Exception):
    """Base class of every error caused by user input.

    Args:
        what: what is wrong, e.g. ``"checkpoint file not found"``.
        path: the file or folder concerned (printed before ``what``, as compilers do).
        hint: the likely fix (printed after a semicolon).
    """

    def __init__(self, what: str, *, path: Optional[str] = None, hint: Optional[str] = None) -> None:
        self.what = str(what)
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self.what)

    def __str__(self) -> str:
        text = self.what if self.path is None else f"{self.path}: {self.what}"
        return f"{text}; {self.hint}" if self.hint else text

    def with_hint(self: _E, hint: Optional[str]) -> _E:
        """A copy of this error with another ``hint`` (same type, ``what`` and ``path``)."""
        return type(self)(self.what, path=self.path, hint=hint)


class ConfigError(VisionZooError, ValueError):
    """A recipe key or value is wrong."""


class DataError(VisionZooError, ValueError):
    """A dataset is missing, malformed or disagrees with the recipe."""


class CheckpointError(VisionZooError, ValueError):
    """A checkpoint is missing, unreadable, damaged or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (catchable as FileNotFoundError or CheckpointError)."""


class DeviceError(VisionZooError, RuntimeError):
    """The requested device (or a feature of it) is not available here."""


class ModelError(VisionZooError, KeyError):
    """An unknown model name, a bad model option or a bad registration."""

    def __str__(self) -> str:  # KeyError would quote the message
        return VisionZooError.__str__(self)


class TrainingDiverged(VisionZooError, RuntimeError):
    """The loss became non-finite; the message names the step and the last good checkpoint."""


_PIPELINE_ERRORS: List[VisionZooError] = []


def raise_in_pipeline(error: VisionZooError) -> NoReturn:
    """Raise a user error from inside a dataset callback (a map or batch function).

    MindSpore reports it to the consumer as its own ``RuntimeError`` with a call stack; the error is
    kept here as well, so that the command-line scripts report it as the one line it is (exit 2)
    instead of that text (:func:`pipeline_error`).
    """
    _PIPELINE_ERRORS.append(error)
    raise error


def pipeline_error() -> Optional[VisionZooError]:
    """The first user error raised inside a dataset callback in this process, if any."""
    return _PIPELINE_ERRORS[0] if _PIPELINE_ERRORS else None
