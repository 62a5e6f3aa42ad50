"""Device selection and data-parallel set-up.

Rank and group size always come from :mod:`mindspore.communication` after ``init()``; msrun sets
``MS_*`` variables but not RANK_SIZE or DEVICE_ID, so those are never read. A process started by
msrun (``MS_ROLE`` is set by the launcher) always initialises communication and trains
data-parallel when there is more than one worker, whatever ``distribute`` says: otherwise N
processes would each train the full dataset and overwrite each other's checkpoints.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DeviceError

__all__ = ["RunContext", "setup_context", "all_reduce_sum", "launched_by_msrun"]

_logger = logging.getLogger(__name__)
_CONTEXT = None


@dataclass(frozen=True)
class RunContext:
    """Where this process runs: device, its rank and the number of data-parallel ranks."""

    device_target: str
    rank: int = 0
    group_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.group_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_msrun() -> bool:
    """True in a worker started by msrun (the launcher sets MS_ROLE)."""
    return os.environ.get("MS_ROLE", "") == "MS_WORKER"


def _check_device(target: str) -> None:
    import mindspore as ms

    if target == "CPU":
        return
    try:
        from mindspore import hal

        available = bool(hal.is_available(target))
    except Exception:  # noqa: BLE001  older builds without hal: let set_device decide
        available = True
    if not available:
        raise DeviceError(
            f"device_target {target} is not available here (MindSpore {ms.__version__} found no {target} device or "
            f"its runtime); run with --device_target CPU or install MindSpore for {target}")


def setup_context(cfg: Any, init_comm: bool = True) -> RunContext:
    """Set MindSpore's mode and device, and initialise communication when training data-parallel.

    ``init_comm=False`` (dry runs outside a launcher) plans for one device. Idempotent within a
    process: the first call decides.
    """
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    import mindspore as ms

    _check_device(cfg.device_target)
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == 0 else ms.PYNATIVE_MODE)
    try:
        ms.set_device(cfg.device_target)
    except Exception as e:  # noqa: BLE001  MindSpore raises RuntimeError/ValueError with long text
        raise DeviceError(f"cannot use device_target {cfg.device_target}: {str(e).splitlines()[0]}; "
                          "run with --device_target CPU") from None
    rank, size = 0, 1
    if init_comm and (cfg.distribute or launched_by_msrun()):
        from mindspore.communication import get_group_size, get_rank, init

        try:
            init()
        except Exception as e:  # noqa: BLE001
            raise DeviceError(f"distributed init failed ({str(e).splitlines()[0]}); launch the script with msrun, e.g. "
                              "msrun --worker_num 2 --local_worker_num 2 python train.py -c ...") from None
        rank, size = get_rank(), get_group_size()
        if size > 1:
            ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                         device_num=size)
        if not cfg.distribute and size > 1:
            _logger.warning("launched by msrun with %d workers: training data-parallel although distribute is False", size)
    _CONTEXT = RunContext(device_target=cfg.device_target, rank=rank, group_size=size)
    return _CONTEXT


def all_reduce_sum(values: np.ndarray, ctx: RunContext) -> np.ndarray:
    """Sum a float vector over all ranks (float32: the CPU all-reduce refuses int32)."""
    values = np.asarray(values, dtype=np.float32)
    if not ctx.distributed:
        return values
    import mindspore as ms
    from mindspore import ops

    return ops.AllReduce()(ms.Tensor(values)).asnumpy()
