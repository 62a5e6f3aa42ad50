"""One epoch's accounting, the same for the sink loop and the Python step loop.

The step cells add each step's loss and flags to on-device counters
(:class:`~visionzoo.engine.train_step.StepCounters`). The trainer reads them after each *chunk*:
one sink call on Ascend/GPU (``sink_size`` steps), or a number of steps of the Python loop (one by
default; any number in tests, to drive the sink path's arithmetic on the CPU). :class:`EpochAccount`
turns the chunks into the epoch's numbers and decides when a run has diverged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from .train_step import ChunkTotals

__all__ = ["EpochAccount", "MAX_NONFINITE_LOSSES"]

#: With overflowed updates dropped, this many non-finite losses in one epoch stop the run anyway:
#: the forward pass itself keeps failing, so no loss scale can help.
MAX_NONFINITE_LOSSES = 50


@dataclass
class EpochAccount:
    """Sums of one epoch. ``drop_overflow``: overflowed updates are skipped (and counted), not fatal.

    A run resumed inside an epoch starts from the sums its mid-epoch checkpoint stored (:meth:`load_state`).
    """

    drop_overflow: bool
    steps: int = 0
    finite_steps: int = 0
    loss_sum: float = 0.0
    skipped: int = 0
    nonfinite_losses: int = 0
    last_loss: float = 0.0

    def state(self) -> Dict[str, Any]:
        """The sums as a JSON-able dict (a mid-epoch checkpoint stores them; floats round-trip exactly)."""
        return asdict(self)

    def load_state(self, state: Dict[str, Any]) -> None:
        for key, value in state.items():
            if key != "drop_overflow":
                setattr(self, key, value)

    def add(self, chunk: ChunkTotals) -> Optional[str]:
        """Add one chunk; returns why the run must stop (None to go on)."""
        self.steps += chunk.steps
        self.finite_steps += chunk.finite_steps
        self.loss_sum += chunk.loss_sum
        self.nonfinite_losses += chunk.nonfinite_losses
        self.last_loss = chunk.last_loss
        if self.drop_overflow:
            self.skipped += chunk.overflows
            if self.nonfinite_losses > MAX_NONFINITE_LOSSES:
                return f"{self.nonfinite_losses} non-finite losses in this epoch"
            return None
        if chunk.nonfinite_losses:
            return f"loss became {chunk.last_loss if chunk.steps == 1 else 'non-finite'}"
        return None

    def finish(self) -> Optional[str]:
        """Why the epoch as a whole failed (None when it did not)."""
        if self.steps and self.skipped >= self.steps:
            return f"all {self.steps} steps of the epoch overflowed"
        if not self.finite_steps:
            return "no step of the epoch had a finite loss"
        return None

    @property
    def train_loss(self) -> float:
        """Mean of the epoch's finite step losses."""
        return self.loss_sum / self.finite_steps if self.finite_steps else float("nan")
