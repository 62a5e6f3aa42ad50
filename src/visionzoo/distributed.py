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
from typing import Any, Optional

import numpy as np

from .errors import DeviceError

__all__ = [
    "RunContext",
    "setup_context",
    "current_context",
    "all_reduce_sum",
    "launched_by_msrun",
    "rank_log_path",
    "check_same_weights",
    "is_listening",
]

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
    """True in a process started by msrun: a worker, or the scheduler msrun runs the same script as.

    The scheduler (``MS_ROLE=MS_SCHED``) must reach ``init()`` too: that call serves the cluster and
    ends the process when the workers are done, so the scheduler never trains.
    """
    return os.environ.get("MS_ROLE", "") in ("MS_WORKER", "MS_SCHED")


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
            f"its runtime); run with --device_target CPU or install MindSpore for {target}"
        )


def setup_context(cfg: Any, init_comm: bool = True) -> RunContext:
    """Set MindSpore's mode and device, and initialise communication when training data-parallel.

    ``init_comm=False`` (dry runs outside a launcher) plans for one device. Idempotent within a
    process: the first call decides.
    """
    global _CONTEXT
    import mindspore as ms

    # the execution mode follows each recipe (a process may run several, e.g. in tests)
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == 0 else ms.PYNATIVE_MODE)
    if _CONTEXT is not None:
        return _CONTEXT
    _check_device(cfg.device_target)
    try:
        if ms.get_context("device_target") != cfg.device_target:  # once a kernel ran, it may not be set again
            ms.set_device(cfg.device_target)
    except Exception as e:  # noqa: BLE001  MindSpore raises RuntimeError/ValueError with long text
        raise DeviceError(
            f"cannot use device_target {cfg.device_target}: {str(e).splitlines()[0]}; run with --device_target CPU"
        ) from None
    rank, size = 0, 1
    if init_comm and (cfg.distribute or launched_by_msrun()):
        from mindspore.communication import get_group_size, get_rank, init

        scheduler = os.environ.get("MS_ROLE") == "MS_SCHED"
        if scheduler:
            _exit_if_scheduler_running()
        try:
            init()  # msrun's scheduler serves the cluster inside init() and its process ends there
        except Exception as e:  # noqa: BLE001
            if scheduler:
                raise DeviceError(
                    f"msrun scheduler: the distributed job failed ({str(e).splitlines()[0]}); the "
                    "failing rank's log says why: see msrun's --log_dir (worker_<rank>.log) and "
                    "<ckpt_save_dir>/logs/rank_<rank>.log"
                ) from None
            raise DeviceError(
                f"distributed init failed ({str(e).splitlines()[0]}); launch the script with msrun, e.g. "
                "msrun --worker_num 2 --local_worker_num 2 train.py -c ..., or pass --distribute False "
                "to run on one device"
            ) from None
        if scheduler:  # not reached with MindSpore 2.x; never let a scheduler train
            raise SystemExit(0)
        rank, size = get_rank(), get_group_size()
        if size > 1:
            ms.set_auto_parallel_context(
                parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size
            )
        if not cfg.distribute and size > 1:
            _logger.warning(
                "launched by msrun with %d workers: training data-parallel although distribute is False", size
            )
    _CONTEXT = RunContext(device_target=cfg.device_target, rank=rank, group_size=size)
    return _CONTEXT


def is_listening(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when something accepts TCP connections at ``host:port``.

    A connection to an unserved port in the ephemeral range can connect to itself (TCP
    simultaneous open, when the kernel picks the same port as the source); that is not a listener.
    """
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return s.getsockname() != s.getpeername()
    except OSError:
        return False


def _exit_if_scheduler_running() -> None:
    """In msrun's scheduler process: exit quietly when another scheduler already serves this job.

    msrun starts a scheduler wherever ``--master_addr`` is a local address, so several launchers on
    one machine (``--node_rank 0`` and ``--node_rank 1`` emulating two nodes on 127.0.0.1) each start
    one; only the first can serve the port, and a second would fail and fail its launcher.
    """
    host, port = os.environ.get("MS_SCHED_HOST", ""), int(os.environ.get("MS_SCHED_PORT", "0") or 0)
    if not host or not port or not is_listening(host, port):
        return  # nobody serves the port yet: this launcher's scheduler is the job's
    _logger.info(
        "msrun scheduler: %s:%d is already served by a scheduler another launcher started on this "
        "machine (several --node_rank here); this one is not needed",
        host,
        port,
    )
    raise SystemExit(0)


def current_context() -> Optional[RunContext]:
    """The context :func:`setup_context` chose in this process, or None before it ran."""
    return _CONTEXT


def rank_log_path(directory: str, rank: int) -> str:
    """Where rank ``rank`` of a data-parallel run writes its log: ``<directory>/logs/rank_<rank>.log``."""
    return os.path.join(directory, "logs", f"rank_{rank}.log")


def all_reduce_sum(values: np.ndarray, ctx: RunContext) -> np.ndarray:
    """Sum a vector over all ranks; returns float64.

    The CPU all-reduce refuses int32 and float64 is not supported by every backend, so each value
    travels as two float32 numbers, ``hi = float32(x)`` and ``lo = float32(x - hi)``: the sum keeps
    about 48 bits of precision, so counts stay exact far beyond float32's 2**24 and a loss summed
    over shards matches a single-process sum to float64 rounding of the per-rank partial sums.
    """
    values = np.asarray(values, dtype=np.float64)
    if not ctx.distributed:
        return values
    import mindspore as ms
    from mindspore import ops

    hi = values.astype(np.float32)
    lo = (values - hi.astype(np.float64)).astype(np.float32)
    both = ops.AllReduce()(ms.Tensor(np.concatenate([hi, lo]))).asnumpy().astype(np.float64)
    return both[: values.size] + both[values.size :]


def check_same_weights(network: Any, ctx: RunContext) -> None:
    """Raise when the ranks do not start from the same weights (data parallelism would silently drift).

    Every rank builds the model after seeding with the recipe's seed, which gives identical weights
    for MindSpore's initialisers; this checks it cheaply: per parameter, the sum and the
    alternating sum are all-reduced, and each rank compares the total with ``group_size`` times its own.
    """
    if not ctx.distributed:
        return
    stats = []
    for p in network.get_parameters():
        w = p.asnumpy().ravel()  # float64 sums over views: no copy of VGG's 100M-element layers
        stats += [w.sum(dtype=np.float64), w[::2].sum(dtype=np.float64) - w[1::2].sum(dtype=np.float64)]
    own = np.asarray(stats, dtype=np.float64)
    total = all_reduce_sum(own, ctx)
    bad = np.abs(total - ctx.group_size * own) > 1e-5 * (1.0 + np.abs(total))
    if bad.any():
        names = [p.name for p in network.get_parameters()]
        first = names[int(np.flatnonzero(bad)[0]) // 2]
        raise DeviceError(
            f"rank {ctx.rank}: initial weights differ across the {ctx.group_size} ranks (first: {first}); "
            "the model's initialisation is not seeded deterministically, or ranks run different "
            "recipes or code versions; launch every rank with the same recipe and seed"
        )
