"""Errors that a user can fix.

Every error raised for bad user input (a config, a path, data, a checkpoint, a device) derives from
:class:`VisionZooError`. The command-line scripts turn these into one line on stderr and exit
status 2; library users can catch them by type.
"""
from __future__ import annotations

__all__ = ["VisionZooError", "ConfigError", "DataError", "CheckpointError", "DeviceError", "ModelError",
           "TrainingDiverged"]


class VisionZooError(Exception):
    """Base class of every error caused by user input. The message says what is wrong and the fix."""


class ConfigError(VisionZooError, ValueError):
    """A recipe key or value is wrong."""


class DataError(VisionZooError, ValueError):
    """A dataset is missing, malformed or disagrees with the recipe."""


class CheckpointError(VisionZooError, ValueError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class DeviceError(VisionZooError, RuntimeError):
    """The requested device (or a feature of it) is not available here."""


class ModelError(VisionZooError, KeyError):
    """An unknown model name or a bad registration."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TrainingDiverged(VisionZooError, RuntimeError):
    """The loss became non-finite; the message names the step and the last good checkpoint."""
