"""The record schema of visionzoo checkpoints: the names of the non-weight entries, defined once.

A training checkpoint holds the train step's parameters (weights, optimizer state with its
``global_step``, loss-scale state) plus these ``_vz_*`` records. Loaders for weights ignore every
training-state entry (:func:`is_training_state`), so one file serves resume, fine-tuning,
validation and prediction.
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple, TypeVar

_V = TypeVar("_V")

__all__ = [
    "PREFIX",
    "EPOCH",
    "MODEL",
    "NUM_CLASSES",
    "CLASSES",
    "CONFIG",
    "LOSS_SCALE",
    "GOOD_STEPS",
    "SKIPPED_STEPS",
    "PROGRESS",
    "CHECKSUM",
    "ACCUM_PREFIX",
    "EMA_PREFIX",
    "EMA_UPDATES",
    "ema_entries",
    "TRAINING_STATE_PREFIXES",
    "TRAINING_STATE_NAMES",
    "is_training_state",
    "is_record",
    "is_lr_table",
]

PREFIX = "_vz_"
EPOCH = PREFIX + "epoch"  # int32: epochs completed
MODEL = PREFIX + "model"  # str: registered model name
NUM_CLASSES = PREFIX + "num_classes"  # int32
CLASSES = PREFIX + "classes"  # str: JSON list of class names
CONFIG = PREFIX + "config"  # str: the resolved recipe as YAML
LOSS_SCALE = PREFIX + "loss_scale"  # float32 parameter of the train step
GOOD_STEPS = PREFIX + "good_steps"  # int32 parameter of the train step (dynamic loss scale)
SKIPPED_STEPS = PREFIX + "skipped_steps"  # int32: overflowed (dropped) updates over the whole run
PROGRESS = PREFIX + "progress"  # str: JSON position inside an epoch of a mid-epoch (stop) checkpoint
CHECKSUM = PREFIX + "checksum"  # str: SHA-256 of every other entry (checkpoint/integrity.py), written last
ACCUM_PREFIX = PREFIX + "accum"  # gradient-accumulation buffers (prefix of a ParameterTuple clone)
EMA_PREFIX = "ema."  # the EMA's average of weight <name> is saved as ema.<name> (engine/ema.py), as MindCV does
EMA_UPDATES = EMA_PREFIX + "updates"  # float32: the EMA's update counter

# Training-checkpoint entries that are not model weights: the trainer's own records above and
# MindSpore optimizers' state.
TRAINING_STATE_PREFIXES: Tuple[str, ...] = (
    "moments.",  # Momentum
    "accum.",  # Adagrad / accumulation
    "adam_m.",
    "adam_v.",  # Adam, AdamWeightDecay
    "moment1.",
    "moment2.",
    "vhat.",  # AdamWeightDecay variants, AMSGrad
    EMA_PREFIX,  # EMA copies of the weights (loaded instead with ema=True)
    "accumulated_grads.",
    "grad_accum.",  # gradient accumulation buffers
    "learning_rate_group_",  # per-group LR tables (backbone_lr_scale)
    PREFIX,  # visionzoo trainer state
)
TRAINING_STATE_NAMES = frozenset(
    {
        "learning_rate",
        "global_step",
        "momentum",
        "beta1_power",
        "beta2_power",
        "weight_decay",
        "epoch_num",
        "step_num",
        "scale_sense",
        "loss_scale",
        "current_iterator_step",
        "last_overflow_iterator_step",
    }
)


def is_record(name: str) -> bool:
    """True for visionzoo's own ``_vz_*`` entries."""
    return name.startswith(PREFIX)


def is_training_state(name: str) -> bool:
    """True for optimizer state, EMA copies and counters that a training checkpoint stores."""
    return name in TRAINING_STATE_NAMES or name.startswith(TRAINING_STATE_PREFIXES)


def is_lr_table(name: str) -> bool:
    """True for an optimizer's LR table (``learning_rate``, or ``learning_rate_group_<i>`` with
    parameter groups): a resumed run recomputes these from its recipe."""
    return name == "learning_rate" or name.startswith("learning_rate_group_")


def ema_entries(params: Mapping[str, _V]) -> Dict[str, _V]:
    """The EMA averages of a checkpoint's entries under the network's own names ({} if none)."""
    return {k[len(EMA_PREFIX) :]: v for k, v in params.items() if k.startswith(EMA_PREFIX) and k != EMA_UPDATES}
