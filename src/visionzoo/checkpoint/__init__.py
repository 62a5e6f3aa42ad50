"""Checkpoints: one record schema, one reader, one atomic writer, weight loading with a report,
a run folder's rotation, and published weights (cache and verified download)."""

from ..errors import CheckpointError, CheckpointNotFoundError
from . import records
from .io import read_checkpoint, read_meta, save_checkpoint
from .load import MISFIT_HINT, LoadReport, load_checkpoint
from .pretrained import resolve_pretrained, weights_dir
from .records import TRAINING_STATE_NAMES, TRAINING_STATE_PREFIXES, is_training_state
from .store import (
    BEST_SUFFIX,
    best_checkpoint,
    checkpoint_name,
    keep_top_k,
    latest_checkpoint,
    list_epoch_checkpoints,
    list_resume_points,
    prune,
    read_training_state,
    remove_stop_checkpoints,
    stop_checkpoint_name,
    top_k_epochs,
)

__all__ = [
    "records",
    "read_checkpoint",
    "read_meta",
    "save_checkpoint",
    "LoadReport",
    "load_checkpoint",
    "MISFIT_HINT",
    "resolve_pretrained",
    "weights_dir",
    "TRAINING_STATE_NAMES",
    "TRAINING_STATE_PREFIXES",
    "is_training_state",
    "BEST_SUFFIX",
    "best_checkpoint",
    "checkpoint_name",
    "latest_checkpoint",
    "list_epoch_checkpoints",
    "list_resume_points",
    "remove_stop_checkpoints",
    "stop_checkpoint_name",
    "prune",
    "keep_top_k",
    "top_k_epochs",
    "read_training_state",
    "CheckpointError",
    "CheckpointNotFoundError",
]
